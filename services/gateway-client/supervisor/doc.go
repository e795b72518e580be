// Package supervisor keeps a gateway server's event sources running: it diffs the configured
// sources against the running ones, validates and starts new ones, cancels stale ones, and
// restarts a source whose stream or server broke, with backoff, until its config changes.
package supervisor
