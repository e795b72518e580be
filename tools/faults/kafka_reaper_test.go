package faults

import (
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// memberReaper does for kfake what Kafka's session timeout does: a group member that has
// not spoken to the group for longer than its session timeout is removed. kfake arms a
// member's session timer only when a reply reaches it, so a gateway server killed while its
// JoinGroup waited (a kill just after a broker restart) stays a member for ever, the
// rebalance gives it partitions, and nobody consumes them (seed 600465108: partition 1
// held by a dead member for over a minute). The reaper notes when each member last sent a
// join, sync, heartbeat or commit, and makes one silent past reapAfter leave the group.
type memberReaper struct {
	t    *testing.T
	addr func() string // the broker's, known once it first started

	mu   sync.Mutex
	seen map[string]time.Time // member id -> last request
}

// reapAfter is the gateway's session timeout (sarama's default, 10s) and a margin: kfake
// expires the members it does track by then, so the reaper only ever finds the ones it
// lost; a live member heartbeats every 3s and rejoins within its rebalance timeout (10s).
const reapAfter = 15 * time.Second

func newMemberReaper(t *testing.T, addr func() string) *memberReaper {
	return &memberReaper{t: t, addr: addr, seen: map[string]time.Time{}}
}

// watch notes the group requests c handles; call it for each start of the broker.
func (r *memberReaper) watch(c *kfake.Cluster) {
	note := func(key kmsg.Key, member func(kmsg.Request) string) {
		c.ControlKey(int16(key), func(req kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			if id := member(req); id != "" {
				r.mu.Lock()
				r.seen[id] = time.Now()
				r.mu.Unlock()
			}
			return nil, nil, false // observed only: the broker handles it
		})
	}
	note(kmsg.JoinGroup, func(req kmsg.Request) string { return req.(*kmsg.JoinGroupRequest).MemberID })
	note(kmsg.SyncGroup, func(req kmsg.Request) string { return req.(*kmsg.SyncGroupRequest).MemberID })
	note(kmsg.Heartbeat, func(req kmsg.Request) string { return req.(*kmsg.HeartbeatRequest).MemberID })
	note(kmsg.OffsetCommit, func(req kmsg.Request) string { return req.(*kmsg.OffsetCommitRequest).MemberID })
}

// run reaps every second until stop is closed.
func (r *memberReaper) run(stop <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			r.reap()
		}
	}
}

// reap makes the members silent past reapAfter leave the group. A member the broker no
// longer has (it expired it) answers UNKNOWN_MEMBER_ID, which is the common case.
func (r *memberReaper) reap() {
	r.mu.Lock()
	var silent []string
	for id, last := range r.seen {
		if time.Since(last) > reapAfter {
			silent = append(silent, id)
			delete(r.seen, id)
		}
	}
	r.mu.Unlock()
	if len(silent) == 0 {
		return
	}
	client, err := sarama.NewClient([]string{r.addr()}, kafkaConfig())
	if err != nil {
		return // the broker is down: its restart expires what it restores
	}
	defer client.Close()
	coordinator, err := client.Coordinator(kafkaGroup)
	if err != nil {
		return
	}
	for _, id := range silent {
		resp, err := coordinator.LeaveGroup(&sarama.LeaveGroupRequest{GroupId: kafkaGroup, MemberId: id})
		if err == nil && resp.Err == sarama.ErrNoError {
			r.t.Logf("kafka: member %s silent for over %s made to leave the group, as Kafka would have expired it (kfake kept it)", id, reapAfter)
		}
	}
}
