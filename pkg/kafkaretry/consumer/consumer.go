package consumer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/offsets"
)

// Reader is the part of *kafka.Reader that Run uses. The reader must belong
// to a consumer group (ReaderConfig.GroupID) and should commit synchronously
// (ReaderConfig.CommitInterval 0, the default): Run already batches commits.
type Reader interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
}

var _ Reader = (*kafka.Reader)(nil)

// Handler processes one record. It returns nil once the record's outcome is
// acknowledged (its events written, or its retry or dead-letter record
// written), which allows its offset to be committed. A non-nil error means the
// hand-off itself failed (say the broker is unreachable): Run calls the
// handler again for the same record, with a short capped backoff, until it
// succeeds or the drain timeout ends it, and never commits past it.
//
// Business failures are not errors here: a handler that cannot allocate a
// reefer hands the record to the retry topic and returns nil.
//
// Records may be delivered more than once (after a crash or a rebalance), so
// a handler must be idempotent.
type Handler func(ctx context.Context, msg kafka.Message) error

// Defaults for Config.
const (
	DefaultMaxInFlight     = 64
	DefaultCommitInterval  = 200 * time.Millisecond
	DefaultCommitTimeout   = 5 * time.Second
	DefaultDrainTimeout    = 10 * time.Second
	DefaultRetryMinBackoff = 100 * time.Millisecond
	DefaultRetryMaxBackoff = 5 * time.Second
	// DefaultMaxPendingBytes is the default byte bound of held records:
	// room for 10,000 retry records of about 3 KB each (a CloudEvent and
	// its retry headers, plus RecordOverhead), so that a scheduler holding
	// them still fetches the records due soonest. At 8 MiB it held about
	// 4,400 of bench case 6's 10,000 and started the rest up to 2 s late.
	DefaultMaxPendingBytes = 32 << 20
)

// Config configures Run. Reader and Handler are required; every other field
// has a default (a zero duration or count means "use the default").
type Config struct {
	Reader  Reader
	Handler Handler

	// Dispatcher runs the records. Default: NewKeyLanes(MaxInFlight, 0),
	// concurrent with per-key order. A scheduler.Scheduler runs each record
	// at its due time instead. A Dispatcher serves one Run.
	Dispatcher Dispatcher
	// MaxInFlight is the number of lanes of the default dispatcher, i.e. how
	// many records run at the same time. Default 64.
	MaxInFlight int
	// MaxPendingBytes bounds the memory of the records Run holds: fetched
	// and not yet finished (waiting in the dispatcher, for a lane or for a
	// due time, or running), plus the offset tracker's window. Each record
	// counts RecordSize(msg) from its fetch until it finished and left the
	// window. When the bound is reached the fetch loop waits for records to
	// finish (back-pressure); it never drops one. A record larger than the
	// whole bound is taken when nothing else is held, so it runs alone
	// rather than never. Default 8 MiB. The dispatcher's own count bound
	// (lanes, scheduler.Config.MaxPending) still applies: whichever is
	// reached first pauses the fetch loop.
	MaxPendingBytes int64

	// CommitInterval is how often finished offsets are committed. A shorter
	// interval means fewer re-deliveries after a crash and more commit
	// requests. Default 200ms.
	CommitInterval time.Duration
	// CommitTimeout bounds every CommitMessages call (a kafka-go commit with
	// a context that never ends can block forever). Default 5s.
	CommitTimeout time.Duration
	// DrainTimeout bounds how long running handlers may take to finish after
	// ctx is cancelled; then their context is cancelled and Run waits for
	// them to return, so handlers must honour ctx. Default 10s. Keep it,
	// plus CommitTimeout, below the orchestrator's grace period (Kubernetes:
	// 30s).
	DrainTimeout time.Duration
	// RetryMinBackoff and RetryMaxBackoff bound the wait between calls of a
	// handler that returned an error. Defaults 100ms and 5s.
	RetryMinBackoff time.Duration
	RetryMaxBackoff time.Duration

	// CommitBeforeProcessing reproduces the naive "commit first, then
	// process" approach, for teaching only: each record's offset is committed
	// as soon as it is fetched (what kafka-go's ReadMessage does), before its
	// handler runs. Its loss window runs from that commit until the record's
	// hand-off is acknowledged, and covers every fetched record, including
	// those still queued behind a slow one: if the process dies inside it,
	// the group has already moved past records nobody finished, and they are
	// lost. The default (false) commits only finished records.
	CommitBeforeProcessing bool

	// Log receives warnings (handler failures, failed commits) and the
	// shutdown summary. Default: discard.
	Log *slog.Logger

	// Hooks for metrics; each may be nil. They are called from Run's
	// goroutines and must be quick and safe for concurrent use.
	//
	// OnFetched is called for every fetched record. OnCommitted is called
	// after a successful commit with the offset as Kafka stores it: the next
	// offset to read, i.e. the last finished record's offset + 1. (It takes
	// no topic: with a multi-topic reader, wrap it per topic yourself.)
	// OnHandlerError is called for every failed handler call.
	OnFetched      func(msg kafka.Message)
	OnCommitted    func(partition int, offset int64)
	OnHandlerError func(msg kafka.Message, err error)
}

func (c Config) withDefaults() (Config, error) {
	if c.Reader == nil {
		return c, errors.New("consumer config: Reader is nil")
	}
	if c.Handler == nil {
		return c, errors.New("consumer config: Handler is nil")
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"CommitInterval", &c.CommitInterval, DefaultCommitInterval},
		{"CommitTimeout", &c.CommitTimeout, DefaultCommitTimeout},
		{"DrainTimeout", &c.DrainTimeout, DefaultDrainTimeout},
		{"RetryMinBackoff", &c.RetryMinBackoff, DefaultRetryMinBackoff},
		{"RetryMaxBackoff", &c.RetryMaxBackoff, DefaultRetryMaxBackoff},
	} {
		if *d.v < 0 {
			return c, fmt.Errorf("consumer config: %s is %v, want a positive duration (or 0 for the default %v)", d.name, *d.v, d.def)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.RetryMaxBackoff < c.RetryMinBackoff {
		return c, fmt.Errorf("consumer config: RetryMaxBackoff %v is below RetryMinBackoff %v", c.RetryMaxBackoff, c.RetryMinBackoff)
	}
	if c.MaxInFlight < 0 {
		return c, fmt.Errorf("consumer config: MaxInFlight is %d, want a positive count (or 0 for the default %d)", c.MaxInFlight, DefaultMaxInFlight)
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxPendingBytes < 0 {
		return c, fmt.Errorf("consumer config: MaxPendingBytes is %d, want a positive size (or 0 for the default %d)", c.MaxPendingBytes, DefaultMaxPendingBytes)
	}
	if c.MaxPendingBytes == 0 {
		c.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if c.Dispatcher == nil {
		c.Dispatcher = NewKeyLanes(c.MaxInFlight, 0)
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.OnFetched == nil {
		c.OnFetched = func(kafka.Message) {}
	}
	if c.OnCommitted == nil {
		c.OnCommitted = func(int, int64) {}
	}
	if c.OnHandlerError == nil {
		c.OnHandlerError = func(kafka.Message, error) {}
	}
	return c, nil
}

// Run fetches records from cfg.Reader, hands them to cfg.Dispatcher and
// commits, per partition, the contiguous prefix of records whose handler
// succeeded, every CommitInterval. It returns nil after a shutdown requested
// by cancelling ctx, or an error when the configuration is invalid, fetching
// fails, or the dispatcher stops on its own.
//
// Shutdown, in order: stop fetching; close the dispatcher (records that have
// not started are dropped and will be re-delivered); let running handlers
// finish, with a context that is not cancelled by ctx but only when
// DrainTimeout expires; commit what finished, with CommitTimeout; return.
// Close the kafka-go Reader only after Run returned: a commit racing with
// Reader.Close can block forever.
func Run(ctx context.Context, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	l := &loop{
		cfg:      cfg,
		log:      cfg.Log,
		trackers: make(map[string]*offsets.Tracker),
		pending:  make(map[topicPartition]int64),
		budget:   newBudget(cfg.MaxPendingBytes),
	}
	return l.run(ctx)
}

type topicPartition struct {
	topic     string
	partition int
}

type loop struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex // guards trackers
	trackers map[string]*offsets.Tracker

	// pending holds offsets taken from the trackers but not yet committed
	// successfully; only the committer goroutine touches it.
	pending map[topicPartition]int64

	// budget bounds the bytes of held records (MaxPendingBytes).
	budget *budget
}

func (l *loop) run(ctx context.Context) error {
	// Handlers get a context that outlives the shutdown signal, so that a
	// hand-off in progress can complete; it ends only at the drain timeout.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	// A dispatcher that stops on its own must also stop the fetch loop, or
	// Dispatch would block forever.
	fetchCtx, stopFetch := context.WithCancel(ctx)
	defer stopFetch()

	dispatcherDone := make(chan error, 1)
	go func() {
		err := l.cfg.Dispatcher.Run(workCtx)
		stopFetch()
		dispatcherDone <- err
	}()

	stopCommitter := make(chan struct{})
	committerDone := make(chan struct{})
	if l.cfg.CommitBeforeProcessing {
		close(committerDone) // each record is committed in the fetch loop
	} else {
		go l.commitLoop(context.WithoutCancel(ctx), stopCommitter, committerDone)
	}

	fetchErr := l.fetchLoop(fetchCtx)

	l.cfg.Dispatcher.Close()
	dispatchErr := l.drain(dispatcherDone, cancelWork)
	if dispatchErr == nil && fetchErr == nil && ctx.Err() == nil {
		dispatchErr = errors.New("dispatcher stopped before shutdown")
	}
	close(stopCommitter)
	<-committerDone
	l.log.Info("consumer stopped; unfinished records will be re-delivered", "unfinished", l.inFlight())
	return errors.Join(fetchErr, dispatchErr)
}

func (l *loop) fetchLoop(ctx context.Context) error {
	for {
		msg, err := l.cfg.Reader.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("fetch: %w", err)
		}
		l.cfg.OnFetched(msg)
		// The record may be held for minutes: keep it in few allocations.
		msg = compact(msg)
		// Back-pressure in bytes: wait until the record fits. The record is
		// already in memory, so the bound is MaxPendingBytes plus one record.
		size := RecordSize(msg)
		if err := l.budget.acquire(ctx, size); err != nil {
			return nil // only ctx ends the wait: shutting down
		}

		var tr *offsets.Tracker
		if l.cfg.CommitBeforeProcessing {
			if err := l.commitBeforeProcessing(ctx, msg); err != nil {
				return nil // only ctx ends the commit retries: shutting down
			}
		} else {
			// Begin before Dispatch: a record must be tracked before it can
			// possibly finish.
			tr = l.tracker(msg.Topic)
			// A re-delivery reset empties the partition's window.
			l.budget.release(int64(tr.Begin(msg.Partition, msg.Offset)) * windowEntryBytes)
		}

		if err := l.cfg.Dispatcher.Dispatch(ctx, msg, l.work(msg, tr, size)); err != nil {
			if ctx.Err() != nil || errors.Is(err, ErrClosed) {
				return nil
			}
			return fmt.Errorf("dispatch %s/%d@%d: %w", msg.Topic, msg.Partition, msg.Offset, err)
		}
	}
}

func (l *loop) tracker(topic string) *offsets.Tracker {
	l.mu.Lock()
	defer l.mu.Unlock()
	tr, ok := l.trackers[topic]
	if !ok {
		tr = offsets.NewTracker()
		l.trackers[topic] = tr
	}
	return tr
}

func (l *loop) inFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, tr := range l.trackers {
		n += tr.InFlight()
	}
	return n
}

// work wraps the handler for one record: call it until it succeeds, then mark
// the offset done (tr is nil in commit-before-processing mode) and give its
// bytes back, except its window entry, which is given back when it leaves
// the window (here, when it completes the finished prefix, or later).
func (l *loop) work(msg kafka.Message, tr *offsets.Tracker, size int64) Work {
	return func(ctx context.Context) {
		ok := l.handle(ctx, msg)
		if tr == nil {
			l.budget.release(size)
			return
		}
		folded := 0
		if ok {
			folded = tr.Done(msg.Partition, msg.Offset)
		}
		l.budget.release(size - windowEntryBytes + int64(folded)*windowEntryBytes)
	}
}

// handle calls the handler until it returns nil (true) or ctx ends (false).
func (l *loop) handle(ctx context.Context, msg kafka.Message) bool {
	delay := l.cfg.RetryMinBackoff
	for attempt := 1; ; attempt++ {
		err := l.cfg.Handler(ctx, msg)
		if err == nil {
			return true
		}
		l.cfg.OnHandlerError(msg, err)
		if ctx.Err() != nil {
			l.log.Warn("handler stopped by the drain timeout; the record stays uncommitted and will be re-delivered",
				recordAttrs(msg, "attempt", attempt, "error", err)...)
			return false
		}
		l.log.Warn("hand-off failed; retrying the same record",
			recordAttrs(msg, "attempt", attempt, "retry_in", delay, "error", err)...)
		if !sleep(ctx, delay) {
			return false
		}
		delay = min(2*delay, l.cfg.RetryMaxBackoff)
	}
}

// commitBeforeProcessing commits msg itself, retrying until it succeeds or
// ctx ends.
func (l *loop) commitBeforeProcessing(ctx context.Context, msg kafka.Message) error {
	delay := l.cfg.RetryMinBackoff
	for {
		cctx, cancel := context.WithTimeout(ctx, l.cfg.CommitTimeout)
		err := l.cfg.Reader.CommitMessages(cctx, msg)
		cancel()
		if err == nil {
			l.cfg.OnCommitted(msg.Partition, msg.Offset+1)
			return nil
		}
		l.log.Warn("commit before processing failed; retrying", recordAttrs(msg, "error", err)...)
		if !sleep(ctx, delay) {
			return ctx.Err()
		}
		delay = min(2*delay, l.cfg.RetryMaxBackoff)
	}
}

// drain waits for the closed dispatcher to finish its running work; at the
// drain timeout it cancels the work's context and waits for the handlers to
// return.
func (l *loop) drain(dispatcherDone <-chan error, cancelWork context.CancelFunc) error {
	timer := time.NewTimer(l.cfg.DrainTimeout)
	defer timer.Stop()
	select {
	case err := <-dispatcherDone:
		return err
	case <-timer.C:
		l.log.Warn("drain timeout: cancelling running handlers; their records stay uncommitted and will be re-delivered",
			"drain_timeout", l.cfg.DrainTimeout)
		cancelWork()
		return <-dispatcherDone
	}
}

func (l *loop) commitLoop(ctx context.Context, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	ticker := time.NewTicker(l.cfg.CommitInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			if err := l.commitFinished(ctx); err != nil {
				l.log.Warn("commit failed; retrying at the next interval", "error", err)
			}
		case <-stop:
			if err := l.commitFinished(ctx); err != nil {
				l.log.Error("final commit failed; records after the last successful commit will be re-delivered", "error", err)
			}
			return
		}
	}
}

// commitFinished commits the finished prefix of every partition that
// advanced, plus whatever a failed earlier commit left pending.
func (l *loop) commitFinished(ctx context.Context) error {
	l.mu.Lock()
	for topic, tr := range l.trackers {
		for p, off := range tr.Committable() {
			l.pending[topicPartition{topic, p}] = off
		}
	}
	l.mu.Unlock()
	if len(l.pending) == 0 {
		return nil
	}

	msgs := make([]kafka.Message, 0, len(l.pending))
	for tp, off := range l.pending {
		// Offset is the last finished record: kafka-go commits Offset+1.
		msgs = append(msgs, kafka.Message{Topic: tp.topic, Partition: tp.partition, Offset: off})
	}
	slices.SortFunc(msgs, func(a, b kafka.Message) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})

	cctx, cancel := context.WithTimeout(ctx, l.cfg.CommitTimeout)
	defer cancel()
	if err := l.cfg.Reader.CommitMessages(cctx, msgs...); err != nil {
		return fmt.Errorf("commit offsets of %d partitions: %w", len(msgs), err)
	}
	for _, m := range msgs {
		delete(l.pending, topicPartition{m.Topic, m.Partition})
		l.cfg.OnCommitted(m.Partition, m.Offset+1)
		l.log.Debug("committed", "topic", m.Topic, "partition", m.Partition, "next_offset", m.Offset+1)
	}
	return nil
}

func recordAttrs(msg kafka.Message, more ...any) []any {
	return append([]any{"topic", msg.Topic, "partition", msg.Partition, "offset", msg.Offset}, more...)
}

// sleep waits for d or until ctx ends; it reports whether the full d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
