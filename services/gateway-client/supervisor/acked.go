package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventgate/eventgate/protos/gateways"
)

// AckHandler takes one event of the named source, like Handler, and reports its fate by
// calling ack once, at any time and from any goroutine: OUTCOME_DELIVERED once every sensor
// took it, OUTCOME_DROPPED when it is dropped for good. An event whose ack is not called
// before its call ends is to be retried (the client tells the server so when it stops).
type AckHandler func(ctx context.Context, source string, ev *gateways.Event, ack func(gateways.Ack_Outcome)) error

// DefaultAckWindow is the unacknowledged events one StreamEventSource call holds when
// Options.AckWindow is 0.
const DefaultAckWindow = 256

// stopAckTimeout bounds the last acknowledgements of a stopping source.
const stopAckTimeout = 5 * time.Second

// Acknowledgements are coalesced: each Ack message costs a gRPC write and flush here and a
// read and a wake-up at the server, which at one per event was most of acknowledged
// delivery's cost. An ack with other events of the call in flight waits up to
// Options.AckLinger (DefaultAckLinger) for theirs to share its message, up to ackBatchMax
// seqs; an ack with nothing else in flight goes at once, so that an idle source's events
// are answered without delay.
const (
	DefaultAckLinger = 200 * time.Microsecond
	ackBatchMax      = 128
	// busyAckLinger is the linger while more than half of the call's window is
	// unacknowledged: the source is then ahead of the sensors (a broker's backlog, not a
	// caller waiting for its answer) and has the other half of the window to go on with,
	// so acks may wait longer to share a message. Measured on the Kafka path (one partition,
	// delivered in order): 2ms gave about 1.2x the events/s of 200µs.
	busyAckLinger = 2 * time.Millisecond
)

// ackLinger is how long an ack may wait for others with outstanding events of the call
// unacknowledged out of window (set is Options.AckLinger).
func ackLinger(set time.Duration, outstanding, window int) time.Duration {
	if set < 0 || outstanding*2 <= window {
		return set
	}
	return max(set, busyAckLinger)
}

// NoAckLinger as Options.AckLinger sends each ack with the acks already waiting, no more.
const NoAckLinger time.Duration = -1

var errUnimplemented = errors.New("StreamEventSource not implemented")

// handleUnacked hands an event of a StartEventSource call, which has nothing to acknowledge.
func (s *Supervisor) handleUnacked(ctx context.Context, source string, ev *gateways.Event) error {
	if s.opts.AckHandler != nil {
		return s.opts.AckHandler(ctx, source, ev, func(gateways.Ack_Outcome) {})
	}
	return s.handle(ctx, source, ev)
}

type ackMsg struct {
	seq     uint64
	outcome gateways.Ack_Outcome
}

// runAcked runs src on srv's StreamEventSource until the call ends: events go to the
// AckHandler as they come, their acknowledgements back coalesced (see DefaultAckLinger). When
// ctx ends, the events not acknowledged yet are reported to be retried and the call is
// half-closed. It returns errUnimplemented when the server does not offer the call.
func (s *Supervisor) runAcked(ctx context.Context, src Source, srv *gwServer) (delivered bool, err error) {
	es := src.proto()
	// The call outlives ctx by the last acknowledgements; it ends when runAcked returns.
	callCtx, cancelCall := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelCall()
	stream, err := srv.client.StreamEventSource(callCtx)
	if err != nil {
		return false, fmt.Errorf("start on %s: %w", srv.Name, err)
	}
	start := &gateways.SourceControl{Control: &gateways.SourceControl_Start{Start: &gateways.StartSource{Source: es, Window: s.opts.AckWindow}}}
	if err := stream.Send(start); err != nil {
		// The call's status comes with Recv.
		_, err = stream.Recv()
		return false, s.callError(srv, err, false)
	}
	s.update(es.GetId(), func(st *Status) {
		st.Phase, st.Message, st.Server, st.Invalid = PhaseRunning, "running on "+srv.Name, srv.Name, false
		st.StartedAt = time.Now()
	})

	window := int(s.opts.AckWindow)
	acks := make(chan ackMsg, window)
	// ended is closed when the call is over: acks after it are dropped (the server has
	// the events for redelivery).
	ended := make(chan struct{})
	var mu sync.Mutex
	outstanding := map[uint64]struct{}{}
	recvDone := make(chan error, 1)
	var got atomic.Bool
	// The handler's context also ends with the call, so that a handler held back by a full
	// queue lets the receiver go.
	hctx, cancelHandler := context.WithCancel(ctx)
	defer cancelHandler()
	go func() {
		for {
			ev, err := stream.Recv()
			if err != nil {
				recvDone <- err
				return
			}
			got.Store(true)
			seq := ev.GetSeq()
			mu.Lock()
			outstanding[seq] = struct{}{}
			mu.Unlock()
			var once sync.Once
			ack := func(o gateways.Ack_Outcome) {
				once.Do(func() {
					select {
					case acks <- ackMsg{seq: seq, outcome: o}:
					case <-ended:
					}
				})
			}
			if err := s.opts.AckHandler(hctx, src.Name, ev, ack); err != nil {
				recvDone <- fmt.Errorf("handle event: %w", err)
				return
			}
		}
	}()
	finish := func() {
		close(ended)
		cancelCall()
		cancelHandler()
	}
	batch := make(map[gateways.Ack_Outcome][]uint64)
	n := 0 // seqs in batch
	add := func(a ackMsg) {
		batch[a.outcome] = append(batch[a.outcome], a.seq)
		n++
	}
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	// unacked counts the events in flight, those in batch included.
	unacked := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(outstanding)
	}
	// gather fills batch with first and the acks waiting; with wait, also with those that
	// come within the linger while other events are in flight, until none is left out.
	gather := func(first ackMsg, wait bool) {
		for outcome, seqs := range batch {
			batch[outcome] = seqs[:0]
		}
		n = 0
		add(first)
		for n < ackBatchMax && len(acks) > 0 {
			add(<-acks)
		}
		if !wait || n >= ackBatchMax || s.opts.AckLinger < 0 {
			return
		}
		inFlight := unacked()
		if inFlight <= n {
			return
		}
		linger.Reset(ackLinger(s.opts.AckLinger, inFlight, window))
		defer linger.Stop()
		for n < ackBatchMax {
			select {
			case a := <-acks:
				add(a)
				// Once every event in flight is in the batch, lingering on only delays the
				// answers: at a low rate most lingers end this way, well before the timer.
				if unacked() <= n {
					return
				}
			case <-linger.C:
				return
			case <-ctx.Done():
				return
			}
		}
	}
	send := func(first ackMsg, wait bool) error {
		gather(first, wait)
		for outcome, seqs := range batch {
			if len(seqs) == 0 {
				continue
			}
			mu.Lock()
			for _, seq := range seqs {
				delete(outstanding, seq)
			}
			mu.Unlock()
			if err := stream.Send(&gateways.SourceControl{Control: &gateways.SourceControl_Ack{Ack: &gateways.Ack{Seqs: seqs, Outcome: outcome}}}); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		select {
		case a := <-acks:
			if err := send(a, true); err != nil {
				// The call is over: Recv says why.
				finish()
				err := <-recvDone
				return got.Load(), s.callError(srv, err, got.Load())
			}
		case err := <-recvDone:
			finish()
			return got.Load(), s.callError(srv, err, got.Load())
		case <-ctx.Done():
			// Stopping: what was acknowledged goes out, the rest is to be retried; a server
			// that does not read them within stopAckTimeout does not hold the stop up.
			bound := time.AfterFunc(stopAckTimeout, cancelCall)
			defer bound.Stop()
			var err error
			for err == nil && len(acks) > 0 {
				err = send(<-acks, false)
			}
			if err == nil {
				mu.Lock()
				retry := make([]uint64, 0, len(outstanding))
				for seq := range outstanding {
					retry = append(retry, seq)
				}
				mu.Unlock()
				if len(retry) > 0 {
					stream.Send(&gateways.SourceControl{Control: &gateways.SourceControl_Ack{Ack: &gateways.Ack{Seqs: retry, Outcome: gateways.Ack_OUTCOME_RETRY}}})
				}
				stream.CloseSend()
			}
			finish()
			<-recvDone
			return got.Load(), ctx.Err()
		}
	}
}

// callError turns the end of a StreamEventSource call into runOnce's errors.
func (s *Supervisor) callError(srv *gwServer, err error, got bool) error {
	switch {
	case err == io.EOF:
		return io.EOF
	case status.Code(err) == codes.Unimplemented && !got:
		return errUnimplemented
	case status.Code(err) == codes.InvalidArgument:
		return &invalidError{reason: status.Convert(err).Message()}
	}
	return fmt.Errorf("stream from %s: %w", srv.Name, err)
}
