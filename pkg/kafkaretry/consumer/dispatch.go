package consumer

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"

	"github.com/segmentio/kafka-go"
)

// ErrClosed is returned by Dispatch after the dispatcher was closed.
var ErrClosed = errors.New("dispatcher closed")

// Work is what a dispatcher runs for one record: [Run] passes the handler
// wrapped with its retry loop and the offset bookkeeping. The context is the
// one given to the dispatcher's Run.
type Work func(ctx context.Context)

// Dispatcher decides when and on which goroutine each fetched record is
// processed. [Run] calls Dispatch from its single fetch loop, in fetch order.
//
// The contract, which [KeyLanes] and scheduler.Scheduler both follow:
//   - Run starts the workers and returns after Close was called (or ctx
//     ended) and every started Work has returned. Every Work gets Run's ctx.
//   - Dispatch accepts a record or blocks until there is room (backpressure:
//     the fetch loop pauses); it never drops an accepted record while open.
//     It returns an error wrapping ctx.Err() if ctx ends first, and
//     ErrClosed after Close.
//   - Close stops accepting records and drops the ones that have not
//     started. Dropping is safe because their offsets were never marked done,
//     so they are never committed and the group re-delivers them.
type Dispatcher interface {
	Run(ctx context.Context) error
	Dispatch(ctx context.Context, msg kafka.Message, work Work) error
	Close()
}

// DefaultLaneQueue is the number of records per lane that may wait in
// [KeyLanes] while workers are busy: the shared budget is lanes × this.
const DefaultLaneQueue = 8

// maxLaneBacklog caps how much of the shared budget one lane may hold, so
// the channel buffers stay small (lanes × this × one pointer) however many
// lanes there are.
const maxLaneBacklog = 1024

// KeyLanes runs records concurrently while keeping the order of records with
// the same key. It has n lanes, each a FIFO queue with one worker: a record
// goes to lane hash(key) mod n, so records with the same key run one after
// the other in fetch order, and records with different keys run in parallel
// (up to n at a time). Records without a key carry no order to keep and are
// spread round-robin.
//
// The waiting records share one budget of n*queue slots. One slow key (a
// call hanging until its timeout) therefore does not stop the fetch loop
// while the other lanes have work to do: its lane may hold many waiting
// records (up to the budget, at most maxLaneBacklog) before Dispatch
// blocks. Dispatch blocks, and with it the fetch loop, only when the whole
// budget is taken: memory stays bounded at n*queue waiting records plus n
// running ones.
type KeyLanes struct {
	lanes     []chan Work
	budget    chan struct{} // one token per waiting record
	next      atomic.Uint64
	closed    chan struct{}
	closeOnce sync.Once
	running   atomic.Bool
}

var _ Dispatcher = (*KeyLanes)(nil)

// NewKeyLanes returns a KeyLanes with n lanes (at least 1) and room for queue
// waiting records per lane (DefaultLaneQueue if queue <= 0).
func NewKeyLanes(n, queue int) *KeyLanes {
	n = max(n, 1)
	if queue <= 0 {
		queue = DefaultLaneQueue
	}
	total := n * queue
	k := &KeyLanes{lanes: make([]chan Work, n), budget: make(chan struct{}, total), closed: make(chan struct{})}
	for i := range k.lanes {
		k.lanes[i] = make(chan Work, min(total, maxLaneBacklog))
	}
	return k
}

// Lane returns the lane a record with this key goes to, or -1 for a record
// without a key (those are spread round-robin).
func (k *KeyLanes) Lane(key []byte) int {
	if len(key) == 0 {
		return -1
	}
	h := fnv.New32a()
	h.Write(key) // never fails
	return int(h.Sum32() % uint32(len(k.lanes)))
}

// Run starts one worker per lane and returns when Close was called or ctx
// ended, after every started record has finished. It returns an error only
// when called twice.
func (k *KeyLanes) Run(ctx context.Context) error {
	if !k.running.CompareAndSwap(false, true) {
		return errors.New("key lanes: Run called twice")
	}
	var wg sync.WaitGroup
	for _, lane := range k.lanes {
		wg.Go(func() { k.serve(ctx, lane) })
	}
	wg.Wait()
	k.Close() // when ctx ended Run: later Dispatch calls fail instead of blocking
	return nil
}

func (k *KeyLanes) serve(ctx context.Context, lane <-chan Work) {
	for {
		select {
		case <-k.closed:
			return
		case <-ctx.Done():
			return
		case work := <-lane:
			<-k.budget // the record no longer waits: give its slot back
			// select picks at random among ready cases: re-check so that a
			// record queued before Close is dropped, not started.
			select {
			case <-k.closed:
				return
			default:
			}
			work(ctx)
		}
	}
}

// Dispatch queues msg on its lane, blocking while the shared budget (or the
// lane's own backlog cap) is full.
func (k *KeyLanes) Dispatch(ctx context.Context, msg kafka.Message, work Work) error {
	i := k.Lane(msg.Key)
	if i < 0 {
		i = int(k.next.Add(1) % uint64(len(k.lanes)))
	}
	select {
	case <-k.closed:
		return ErrClosed
	default:
	}
	select {
	case k.budget <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("dispatch %s/%d@%d: %w", msg.Topic, msg.Partition, msg.Offset, ctx.Err())
	case <-k.closed:
		return ErrClosed
	}
	select {
	case k.lanes[i] <- work:
		return nil
	case <-ctx.Done():
		<-k.budget
		return fmt.Errorf("dispatch %s/%d@%d: %w", msg.Topic, msg.Partition, msg.Offset, ctx.Err())
	case <-k.closed:
		<-k.budget
		return ErrClosed
	}
}

// Close stops accepting records; records still queued are dropped, running
// ones finish. Close may be called more than once.
func (k *KeyLanes) Close() {
	k.closeOnce.Do(func() { close(k.closed) })
}
