package mqttenv

import (
	"path/filepath"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage/bolt"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.etcd.io/bbolt"

	"github.com/eventgate/eventgate/pkg/testenv"
)

// mochi frees a packet identifier (PUBACK) before it runs OnQosComplete: a message
// published in between takes the identifier and is stored under the same key. The
// completion of the old message must not delete the new one's record, or a restart loses
// it (CI saw TestBrokerRestartWithStorageLosesNothing fail so). This plays that order
// out on the hook itself, which no timing can make flaky.
func TestCompletionKeepsTheRecordOfAMessageThatReusedItsPacketID(t *testing.T) {
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: testenv.Logger(t)})
	h := &storageHook{Hook: new(bolt.Hook)}
	err := srv.AddHook(h, &bolt.Options{
		Path:    filepath.Join(t.TempDir(), "mochi.db"),
		Options: &bbolt.Options{Timeout: 5 * time.Second, NoSync: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Stop() })
	cl := srv.NewClient(nil, "tcp", "kept", false)
	publish := func(payload string) packets.Packet {
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: "kept", Payload: []byte(payload), PacketID: 7}
		cl.State.Inflight.Set(pk)
		h.OnQosPublish(cl, pk, 0, 0)
		return pk
	}
	stored := func() []string {
		t.Helper()
		msgs, err := h.StoredInflightMessages()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range msgs {
			out = append(out, string(m.Payload))
			if m.PacketID != 7 {
				t.Errorf("stored %q with packet identifier %d, want 7", m.Payload, m.PacketID)
			}
		}
		return out
	}

	old := publish("old")
	cl.State.Inflight.Delete(old.PacketID) // the PUBACK frees 7 ...
	publish("new")                         // ... a new message takes it and is stored ...
	h.OnQosComplete(cl, old)               // ... and only then the old one completes
	if got := stored(); len(got) != 1 || got[0] != "new" {
		t.Fatalf("stored after the old message's completion: %q, want the new message's record", got)
	}

	// Without reuse a completion deletes the record.
	cl.State.Inflight.Delete(7)
	h.OnQosComplete(cl, old)
	if got := stored(); len(got) != 0 {
		t.Fatalf("stored after the new message's completion: %q, want nothing", got)
	}
}
