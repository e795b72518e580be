package v1alpha1

import (
	"fmt"
	"hash/fnv"
)

// NodeID is the key of an event source's node in GatewayStatus.Nodes. It depends on the
// names only, not on the source's config, so that a node keeps its key across edits of the
// source and restarts of the client.
func NodeID(gateway, eventSource string) string {
	h := fnv.New32a()
	h.Write([]byte(gateway + "/" + eventSource))
	return fmt.Sprintf("%s-%d", gateway, h.Sum32())
}
