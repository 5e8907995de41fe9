package scheduler

import (
	"container/heap"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/consumer"
)

// Clock is the time source of a Scheduler: the current time and timers.
// clockwork.NewRealClock() is the real one (the default) and
// clockwork.NewFakeClock() a fake for tests, advanced by hand.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) clockwork.Timer
}

// Defaults for Config.
const (
	DefaultMaxPending = 10000
	DefaultWorkers    = 32
)

// Config configures a Scheduler. DueAt is required.
type Config struct {
	// Clock defaults to the real clock.
	Clock Clock
	// MaxPending bounds the records the scheduler holds, waiting or running.
	// When it is reached, Add and Dispatch block (and with them the fetch
	// loop) until a record finishes. Default 10,000. Size it from the record
	// size: 10,000 records of 2 KiB hold about 20 MiB.
	MaxPending int
	// Workers is how many records run at the same time. Default 32.
	Workers int
	// DueAt tells when a record becomes due. The retry service passes one
	// that reads the x-retry-due-at header. A record with a due time in the
	// past (or the zero time) is due at once, so a DueAt that cannot parse
	// the header should return the zero time and leave it to the work to
	// dead-letter the record. Treat a due time implausibly far ahead (beyond
	// the largest backoff) the same way: a record that waits for ever holds
	// a slot and holds back its partition's commits.
	DueAt func(msg kafka.Message) time.Time
	// Run is the work for records given with Add. Records given with
	// Dispatch (by consumer.Run) carry their own work and do not use it.
	Run func(ctx context.Context, msg kafka.Message)
	// OnStart is called just before a record's work starts, with how late it
	// starts (actual start - due time; never negative, since no record starts
	// early): the metric that shows whether the scheduler keeps its promise.
	// May be nil.
	OnStart func(msg kafka.Message, lateness time.Duration)
	// Log receives the shutdown summary. Default: discard.
	Log *slog.Logger
}

// ErrClosed is returned by Add and Dispatch after Close (the same error as
// consumer.ErrClosed, so consumer.Run recognises it).
var ErrClosed = consumer.ErrClosed

// Scheduler runs each record at or after its due time, on a bounded pool of
// workers. See the package documentation.
type Scheduler struct {
	cfg    Config
	cfgErr error

	slots     chan struct{} // one per held record: the MaxPending bound
	wake      chan struct{} // a record was added: re-check the earliest due time
	closed    chan struct{}
	closeOnce sync.Once
	running   atomic.Bool

	mu      sync.Mutex
	queue   dueHeap
	seq     uint64
	waiting int // accepted, not started (in the heap or being handed to a worker)
	active  int // started, not finished
}

var _ consumer.Dispatcher = (*Scheduler)(nil)

// New returns a Scheduler. Call Run to start it. A configuration error (no
// DueAt) is returned by Run, Add and Dispatch.
func New(cfg Config) *Scheduler {
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{
		cfg:    cfg,
		slots:  make(chan struct{}, cfg.MaxPending),
		wake:   make(chan struct{}, 1),
		closed: make(chan struct{}),
	}
	if cfg.DueAt == nil {
		s.cfgErr = errors.New("scheduler config: DueAt is nil")
	}
	return s
}

// Add schedules msg to be given to Config.Run when it is due. It blocks while
// MaxPending records are held, until one finishes or ctx ends.
func (s *Scheduler) Add(ctx context.Context, msg kafka.Message) error {
	if s.cfg.Run == nil {
		return errors.New("scheduler: Add needs Config.Run")
	}
	return s.Dispatch(ctx, msg, func(ctx context.Context) { s.cfg.Run(ctx, msg) })
}

// Dispatch schedules work to run when msg is due. It blocks while MaxPending
// records are held, until one finishes or ctx ends. It implements
// consumer.Dispatcher.
func (s *Scheduler) Dispatch(ctx context.Context, msg kafka.Message, work consumer.Work) error {
	if s.cfgErr != nil {
		return s.cfgErr
	}
	select {
	case <-s.closed:
		return ErrClosed
	default:
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
		return ErrClosed
	}
	due := s.cfg.DueAt(msg)

	s.mu.Lock()
	s.seq++
	heap.Push(&s.queue, &item{due: due, seq: s.seq, msg: msg, work: work})
	s.waiting++
	s.mu.Unlock()

	select {
	case s.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
	return nil
}

// Pending returns the number of records waiting to start.
func (s *Scheduler) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting
}

// Running returns the number of records whose work is running.
func (s *Scheduler) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// Run starts the timer loop and the workers. It returns after Close was
// called or ctx ended, once every started record has finished. Each record's
// work gets ctx. Records still waiting are dropped then: their offsets were
// never marked done, so the group re-delivers them after a restart, and
// because the due time travels in the record's header they are still
// scheduled at the right moment.
func (s *Scheduler) Run(ctx context.Context) error {
	if s.cfgErr != nil {
		return s.cfgErr
	}
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("scheduler: Run called twice")
	}

	ready := make(chan *item) // unbuffered: a record leaves the heap only for an idle worker
	var wg sync.WaitGroup
	wg.Go(func() { s.timerLoop(ctx, ready) })
	for range s.cfg.Workers {
		wg.Go(func() { s.work(ctx, ready) })
	}
	wg.Wait()
	s.Close() // when ctx ended Run: later Dispatch calls fail instead of blocking

	s.mu.Lock()
	dropped := s.waiting
	s.queue, s.waiting = nil, 0
	s.mu.Unlock()
	s.cfg.Log.Info("scheduler stopped; waiting records dropped, they will be re-delivered", "dropped", dropped)
	return nil
}

// Close stops accepting records and stops the workers after their current
// record. It may be called more than once.
func (s *Scheduler) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
}

// timerLoop sleeps until the earliest record is due and hands due records,
// earliest first, to idle workers.
func (s *Scheduler) timerLoop(ctx context.Context, ready chan<- *item) {
	var timer clockwork.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		s.mu.Lock()
		now := s.cfg.Clock.Now()
		var next *item
		var due time.Time
		if len(s.queue) > 0 {
			if s.queue[0].due.After(now) {
				due = s.queue[0].due
			} else {
				next = heap.Pop(&s.queue).(*item)
			}
		}
		s.mu.Unlock()

		if next != nil {
			select {
			case ready <- next:
				continue
			case <-s.closed:
				return
			case <-ctx.Done():
				return
			}
		}

		if timer != nil {
			timer.Stop()
			timer = nil
		}
		var fired <-chan time.Time
		if !due.IsZero() {
			timer = s.cfg.Clock.NewTimer(due.Sub(now))
			// The clock may have moved between reading now and arming the
			// timer (a fake clock advanced by a test, or a slow scheduler):
			// re-check rather than sleep past the due time.
			if !s.cfg.Clock.Now().Before(due) {
				continue
			}
			fired = timer.Chan()
		}
		select {
		case <-fired:
		case <-s.wake:
		case <-s.closed:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (s *Scheduler) work(ctx context.Context, ready <-chan *item) {
	for {
		select {
		case <-s.closed:
			return
		case <-ctx.Done():
			return
		case it := <-ready:
			// select picks at random among ready cases: re-check so that no
			// record starts after Close.
			select {
			case <-s.closed:
				return
			default:
			}
			s.start(ctx, it)
		}
	}
}

func (s *Scheduler) start(ctx context.Context, it *item) {
	s.mu.Lock()
	s.waiting--
	s.active++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.active--
		s.mu.Unlock()
		<-s.slots
	}()

	if s.cfg.OnStart != nil {
		s.cfg.OnStart(it.msg, s.cfg.Clock.Now().Sub(it.due))
	}
	it.work(ctx)
}

// item is one held record.
type item struct {
	due  time.Time
	seq  uint64 // fetch order: breaks ties between equal due times
	msg  kafka.Message
	work consumer.Work
}

// dueHeap is a min-heap by (due, seq), for container/heap.
type dueHeap []*item

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h dueHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)   { *h = append(*h, x.(*item)) }
func (h *dueHeap) Pop() any {
	old := *h
	n := len(old)
	it := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return it
}
