package v1alpha1

import "testing"

func TestNodeIDDependsOnBothNamesOnly(t *testing.T) {
	id := NodeID("gw", "a")
	if id != NodeID("gw", "a") {
		t.Fatal("NodeID is not stable")
	}
	for _, other := range [][2]string{{"gw", "b"}, {"gw2", "a"}, {"gw/a", ""}} {
		if NodeID(other[0], other[1]) == id {
			t.Errorf("NodeID%v == NodeID(gw, a) = %s", other, id)
		}
	}
}
