package program

import (
	"log/slog"
	"time"
)

// ReleaseStartPages lets go of the pages of the process's own binary that are mapped so
// far, unless getenv("EVENTGATE_RELEASE_PAGES") is "0". A command calls it once its start is
// behind it.
//
// Why: a Go binary's package inits are spread over the whole of its code, and the kernel
// maps file pages 64 KiB at a time around each one touched (fault-around). So by main, a
// gateway-client has most of its 23 MB of code and tables resident, though it runs a
// fraction of them again: 15.5 MiB of its binary against 12 MiB once released (the webhook
// gateway: 10.4 against 9 MiB). The pages stay in the page cache, shared and clean; only
// this process's mapping of them goes, and what runs again is mapped again by minor faults.
// Measured by tools/bench on 2 cores: gateway + client peak RSS under load 38.6 against 42.9
// MiB, events/s and CPU per event within the runs' spread.
//
// Only read-only mappings of the binary with no private copies in them are released: their
// every page is the file's, so mapping it again gives back the same bytes.
func ReleaseStartPages(getenv func(string) string, log *slog.Logger) {
	if getenv("EVENTGATE_RELEASE_PAGES") == "0" {
		return
	}
	start := time.Now()
	kib, err := releaseStartPages()
	if err != nil {
		log.Debug("the binary's start pages were not released", "error", err)
		return
	}
	log.Debug("released the binary's start pages", "KiB", kib, "took", time.Since(start))
}
