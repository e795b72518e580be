package main

import (
	"slices"
	"sync"

	"github.com/eventgate/eventgate/pkg/server"
)

// maxTracked bounds the records one claimed partition keeps track of: handed over and not
// yet part of the committed prefix. The server's window bounds the unacknowledged ones;
// this also bounds the acknowledged ones held behind an old unacknowledged record, so one
// record the client never settles stops the partition instead of growing the list.
const maxTracked = server.MaxWindow

// partitionAcks is the bookkeeping of one claimed partition in one group session: the
// offsets handed over, in order, from the oldest that is not yet settled, and the offset
// to commit, which only ever covers records that are all settled (acknowledged delivered
// or dropped). Acks come in any order, on the framework's goroutine: settle only updates
// the list and signals; the claim's marker goroutine does the marking.
type partitionAcks struct {
	mu      sync.Mutex
	pending []tracked // offsets in increasing order (a topic's offsets may have gaps)
	next    int64     // the offset to commit: every record below it is settled; -1: none yet

	// settled receives a signal whenever next moves, for the marker; room whenever pending
	// shrank, for a claim that waits to track more.
	settled, room chan struct{}
}

type tracked struct {
	offset  int64
	settled bool
}

func newPartitionAcks() *partitionAcks {
	return &partitionAcks{next: -1, settled: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

// track records that the record at offset is being handed over. It returns false when
// maxTracked records are tracked already: the caller waits for room and tries again.
func (p *partitionAcks) track(offset int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) >= maxTracked {
		return false
	}
	p.pending = append(p.pending, tracked{offset: offset})
	return true
}

// settle records the fate of the record at offset and reports whether it must come again
// (Retry or Lost): such a record stays unsettled, so nothing at or after it is committed in
// this session. It never blocks.
func (p *partitionAcks) settle(offset int64, f server.Fate) (again bool) {
	if f == server.FateRetry || f == server.FateLost {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	i, found := slices.BinarySearchFunc(p.pending, offset, func(t tracked, o int64) int {
		switch {
		case t.offset < o:
			return -1
		case t.offset > o:
			return 1
		}
		return 0
	})
	if !found {
		return false
	}
	p.pending[i].settled = true
	if i > 0 {
		return false // behind a record not settled (yet, or ever in this session)
	}
	n := 0
	for n < len(p.pending) && p.pending[n].settled {
		n++
	}
	p.next = p.pending[n-1].offset + 1
	p.pending = p.pending[n:]
	signal(p.settled)
	signal(p.room)
	return false
}

// committable is the offset to mark (Kafka's "next offset to read"), -1 when there is none.
func (p *partitionAcks) committable() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.next
}

// markSettled marks the committable offset with mark whenever it moves, until stop is
// closed, and once more then, so that the session's last commit carries everything
// settled by the time the claim ends.
func (p *partitionAcks) markSettled(stop <-chan struct{}, mark func(offset int64)) {
	marked := int64(-1)
	markNew := func() {
		if next := p.committable(); next > marked {
			mark(next)
			marked = next
		}
	}
	for {
		select {
		case <-p.settled:
			markNew()
		case <-stop:
			markNew()
			return
		}
	}
}

// signal wakes the one waiter of c, if it is not awake already.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
