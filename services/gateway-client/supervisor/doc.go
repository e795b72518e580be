// Package supervisor keeps event sources running on one or more gateway servers: it diffs
// the configured sources against the running ones, places each new one on the first server
// that validates it, cancels stale ones, and restarts a source whose stream or server broke,
// with backoff, until its config changes.
package supervisor
