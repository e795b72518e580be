package kubeenv

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// CacheDir is where tools/testservers/build.sh keeps the servers and tools it builds, one
// folder per name and version.
func CacheDir() string {
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "eventgate", "testservers")
}

// Find returns the path the environment variable env names, else the most recently built
// path that one of patterns matches and ok accepts (a relative pattern is in CacheDir), else "".
func Find(env string, ok func(string) bool, patterns ...string) string {
	if p := os.Getenv(env); p != "" {
		return p
	}
	var newest string
	var newestTime int64
	for _, pattern := range patterns {
		if !filepath.IsAbs(pattern) {
			pattern = filepath.Join(CacheDir(), pattern)
		}
		found, _ := filepath.Glob(pattern)
		for _, p := range found {
			st, err := os.Stat(p)
			if err != nil || !ok(p) {
				continue
			}
			if mt := st.ModTime().UnixNano(); newest == "" || mt > newestTime {
				newest, newestTime = p, mt
			}
		}
		if newest != "" {
			return newest // an earlier pattern wins over a later one
		}
	}
	return ""
}

// Executable accepts a file anyone may run, for Find.
func Executable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// Missing ends a test that needs what is missing: it skips with a loud message under a plain
// go test, and fails under the README's test command (EVENTGATE_REQUIRE_TEST_SERVERS=1), where
// every test server must be there.
func Missing(t testing.TB, what, why string) {
	t.Helper()
	msg := fmt.Sprintf("\n*** SKIPPING: no %s: %s"+
		"\n*** run tools/testservers/build.sh (minutes the first time), or the README's test command\n", what, why)
	if os.Getenv("EVENTGATE_REQUIRE_TEST_SERVERS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
