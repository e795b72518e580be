package program

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// releaseStartPages drops the process's mappings of its binary's read-only pages
// (madvise MADV_DONTNEED) and returns how many KiB of them were resident.
func releaseStartPages() (int64, error) {
	var exe syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &exe); err != nil {
		return 0, err
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	spans, err := releasable(f, exe.Ino)
	f.Close()
	if err != nil {
		return 0, err
	}
	var kib int64
	for _, s := range spans {
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, s.start, s.end-s.start, syscall.MADV_DONTNEED); errno != 0 {
			return kib, fmt.Errorf("madvise %#x-%#x: %w", s.start, s.end, errno)
		}
		kib += s.rssKiB
	}
	return kib, nil
}

// span is one mapping of /proc/self/smaps.
type span struct {
	start, end uintptr
	rssKiB     int64
}

// releasable reads smaps and returns the mappings of the file with inode ino that are not
// writable and hold no anonymous (copied-on-write) pages: dropping one of those loses
// nothing, since each of its pages reads back from the file as it was.
func releasable(smaps io.Reader, ino uint64) ([]span, error) {
	var out []span
	var cur span
	var ok bool // cur is a read-only mapping of the binary, so far without private pages
	flush := func() {
		if ok {
			out = append(out, cur)
		}
		ok = false
	}
	sc := bufio.NewScanner(smaps)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if !strings.HasSuffix(fields[0], ":") {
			// A mapping's first line: range, perms, offset, dev, inode, path.
			flush()
			if len(fields) < 5 {
				return nil, fmt.Errorf("smaps: unexpected line %q", sc.Text())
			}
			lo, hi, _ := strings.Cut(fields[0], "-")
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			inode, err3 := strconv.ParseUint(fields[4], 10, 64)
			if err1 != nil || err2 != nil || err3 != nil {
				return nil, fmt.Errorf("smaps: unexpected line %q", sc.Text())
			}
			cur = span{start: uintptr(start), end: uintptr(end)}
			ok = inode == ino && !strings.Contains(fields[1], "w")
			continue
		}
		if !ok || len(fields) < 2 {
			continue
		}
		kib, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "Rss:":
			cur.rssKiB = kib
		case "Anonymous:", "Locked:":
			if kib != 0 {
				ok = false
			}
		}
	}
	flush()
	return out, sc.Err()
}
