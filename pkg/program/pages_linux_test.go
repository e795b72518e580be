package program

import (
	"encoding/json"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

const smapsSample = `00400000-00aaa000 r-xp 00000000 fe:00 42                            /bin/gw
Size:               6824 kB
Rss:                6184 kB
Anonymous:             0 kB
Locked:                0 kB
VmFlags: rd ex mr mw me
00aaa000-0125d000 r--p 006aa000 fe:00 42                            /bin/gw (deleted)
Rss:                5568 kB
Anonymous:             0 kB
0125d000-0125e000 r--p 00e5d000 fe:00 42                            /bin/gw
Rss:                   4 kB
Anonymous:             4 kB
0125e000-012d3000 rw-p 00e5e000 fe:00 42                            /bin/gw
Rss:                 344 kB
Anonymous:           120 kB
7f0000000000-7f0000001000 r--p 00000000 fe:00 7                             /lib/libc.so.6
Rss:                   4 kB
Anonymous:             0 kB
7f0000002000-7f0000003000 r-xp 00000000 fe:00 42                            /bin/gw
Rss:                   4 kB
Locked:                4 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                             [stack]
Rss:                  24 kB
Anonymous:            24 kB
`

func TestReleasableKeepsWhatCannotBeReadBack(t *testing.T) {
	spans, err := releasable(strings.NewReader(smapsSample), 42)
	if err != nil {
		t.Fatal(err)
	}
	// The code and the read-only data of inode 42 (even under a "(deleted)" path); not its
	// read-only page with a private copy (relocated by the loader), its writable data, a
	// locked mapping, another file or the stack.
	want := []span{{0x400000, 0xaaa000, 6184}, {0xaaa000, 0x125d000, 5568}}
	if len(spans) != len(want) {
		t.Fatalf("releasable = %+v, want %+v", spans, want)
	}
	for i := range want {
		if spans[i] != want[i] {
			t.Errorf("span %d = %+v, want %+v", i, spans[i], want[i])
		}
	}
	if _, err := releasable(strings.NewReader("garbage line\n"), 42); err == nil {
		t.Error("a line that is neither a mapping nor a field: no error")
	}
}

// residentBinaryKiB is how much of the test binary is mapped in, by smaps.
func residentBinaryKiB(t *testing.T) int64 {
	t.Helper()
	var exe syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &exe); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	spans, err := releasable(f, exe.Ino)
	if err != nil {
		t.Fatal(err)
	}
	var kib int64
	for _, s := range spans {
		kib += s.rssKiB
	}
	return kib
}

func TestReleaseStartPagesShrinksTheResidentBinary(t *testing.T) {
	// Touch code the test has not run yet, so that it is resident before the release too.
	regexp.MustCompile(`^a+b*$`).MatchString("aab")
	before := residentBinaryKiB(t)
	ReleaseStartPages(os.Getenv, slog.New(slog.DiscardHandler))
	after := residentBinaryKiB(t)
	t.Logf("the test binary's resident read-only pages: %d KiB before, %d KiB after", before, after)
	if before < 1024 || after > before/2 {
		t.Errorf("resident read-only pages of the binary: %d KiB before the release, %d after; want at least 1 MiB, then less than half", before, after)
	}
	// What was let go maps in again when run: the same code and tables still work.
	if !regexp.MustCompile(`^a+b*$`).MatchString("aab") {
		t.Error("regexp after the release: no match")
	}
	if b, err := json.Marshal(map[string]int{"a": 1}); err != nil || string(b) != `{"a":1}` {
		t.Errorf("json after the release: %s, %v", b, err)
	}
}

func TestReleaseStartPagesCanBeTurnedOff(t *testing.T) {
	regexp.MustCompile(`^c+$`).MatchString("cc")
	before := residentBinaryKiB(t)
	ReleaseStartPages(func(k string) string {
		if k == "EVENTGATE_RELEASE_PAGES" {
			return "0"
		}
		return ""
	}, slog.New(slog.DiscardHandler))
	if after := residentBinaryKiB(t); after < before*9/10 {
		t.Errorf("EVENTGATE_RELEASE_PAGES=0: resident read-only pages of the binary went from %d to %d KiB", before, after)
	}
}
