// Package testenv starts real servers for tests (gateway servers on loopback ports, and
// later brokers and API servers) and waits on conditions with deadlines instead of sleeps.
package testenv
