// Package faults is the fault suite of acknowledged delivery (issue 12): under steady load
// it kills the gateway-client and the gateway server, stops the sensor and restarts the
// broker at random points, and checks that nothing acknowledged upstream is lost and that
// ordered sources stay in order. The suite is its tests; this package has no code.
package faults
