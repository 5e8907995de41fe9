package redrive

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/tracing"

	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/kafkalog"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/resolution"
)

// ErrInterrupted is returned (wrapping the context's error) when a run
// stopped because its context ended; everything acknowledged before is
// recorded, and a rerun continues.
var ErrInterrupted = errors.New("interrupted")

// Outcome is what happened to one letter.
type Outcome string

// The outcomes a Result reports.
const (
	Redriven Outcome = "redriven"
	Refused  Outcome = "refused"
)

// Result reports one letter.
type Result struct {
	Letter  deadletter.Letter
	Outcome Outcome
	// Target is where the copy landed (Redriven).
	Target kafkalog.Coord
	// RedriveCount is the copy's x-dlq-redrive-count (Redriven).
	RedriveCount int
	// Why is the reason of a refusal (Refused).
	Why error
}

// Report counts the outcomes of a run.
type Report struct {
	Redriven int
	Refused  int
}

// Defaults of Engine.
const (
	DefaultBatchSize    = 1000
	DefaultWriteTimeout = 30 * time.Second
)

// Engine redrives letters. Fill the fields, then call Run; an Engine is not
// safe for concurrent use (the State and Cursor it updates are not).
type Engine struct {
	Log   *kafkalog.Log
	Store resolution.Store
	// State is updated with the entries the run writes.
	State *resolution.State
	// Cursor must have observed every record from the group's offset on;
	// it computes the offsets the run commits.
	Cursor *resolution.Cursor
	// To and RetryTopic say where copies go.
	To         Target
	RetryTopic string
	// MaxRedrives is the loop guard's limit; <= 0 disables it.
	MaxRedrives int
	// Limiter spaces the records; nil means as fast as the broker takes
	// them.
	Limiter *rate.Limiter
	// BatchSize bounds the records written per round trip; 0 means
	// DefaultBatchSize.
	BatchSize int
	// WriteTimeout bounds the three writes of one batch, which an
	// interruption does not cancel; 0 means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// By is written into the resolution entries: who redrove.
	By string
	// Continue, if set, is asked before each batch; an error stops the run
	// and is returned (the health gate closing, for example).
	Continue func() error
	// OnResult, if set, is called for every letter, in order, once its
	// outcome is final.
	OnResult func(Result)
	// Tracing, when set, gives each copy a redrive span linked to its
	// dead letter's (tracing.Redrive), whose context the copy carries to
	// the pipeline. nil: no spans; the copy keeps the letter's
	// traceparent.
	Tracing trace.TracerProvider
}

// NewLimiter returns the Limiter of a run limited to perSecond records. Its
// burst of a tenth of a second lets a fast run send batches while keeping
// every second within the rate (plus that burst).
func NewLimiter(perSecond float64) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(perSecond), max(1, int(perSecond/10)))
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Engine) report(r Result) {
	if e.OnResult != nil {
		e.OnResult(r)
	}
}

// Run redrives letters (they should be pending: Run does not look at the
// resolution log) and returns how many were redriven and refused. It stops
// early with ErrInterrupted when ctx ends, or with Continue's error.
//
// Batches go through a short pipeline: while the entries of batch n are
// written to the log, the copies of batch n+1 are already being published.
// The order per batch stays publish, then record, then commit, and a batch
// that was formed is always finished (see write's comment), so an
// interruption costs nothing; a hard kill may leave the copies of up to two
// batches without entries, which a rerun publishes again.
func (e *Engine) Run(ctx context.Context, letters []deadletter.Letter) (Report, error) {
	var rep Report
	movable := make([]deadletter.Letter, 0, len(letters))
	for _, l := range letters {
		if why := Check(l, e.To, e.MaxRedrives); why != nil {
			rep.Refused++
			e.report(Result{Letter: l, Outcome: Refused, Why: why})
			continue
		}
		movable = append(movable, l)
	}

	// Unbuffered hand-over to the recorder: at most two batches are ever
	// published and not yet recorded (the one being recorded and the one
	// waiting for it), which bounds what a hard kill can duplicate.
	formed := make(chan *batch, 1)
	published := make(chan *batch)
	go func() {
		defer close(published)
		for b := range formed {
			e.publish(ctx, b)
			published <- b
		}
	}()
	var (
		failed    atomic.Bool
		recordErr error
		recorded  = make(chan struct{})
	)
	go func() {
		defer close(recorded)
		for b := range published {
			done, err := e.record(ctx, b)
			rep.Redriven += len(done)
			for _, r := range done {
				e.report(r)
			}
			if err != nil && recordErr == nil {
				recordErr = err
				failed.Store(true)
			}
		}
	}()

	stopErr := e.form(ctx, movable, formed, &failed)
	close(formed)
	<-recorded
	if recordErr != nil {
		return rep, recordErr
	}
	return rep, stopErr
}

// form cuts movable into batches, at the limiter's pace, and hands them to
// the pipeline until they are all formed or the run must stop.
func (e *Engine) form(ctx context.Context, movable []deadletter.Letter, formed chan<- *batch, failed *atomic.Bool) error {
	size := e.BatchSize
	if size <= 0 {
		size = DefaultBatchSize
	}
	for i := 0; i < len(movable); {
		if failed.Load() {
			return nil // the pipeline's error is returned
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%w: %w", ErrInterrupted, err)
		}
		if e.Continue != nil {
			if err := e.Continue(); err != nil {
				return err
			}
		}
		start := i
		var waitErr error
		for i-start < size && i < len(movable) {
			if e.Limiter != nil {
				// Send what is ready before sleeping for the next token, so
				// a limited run sends records evenly rather than in bursts.
				if i > start && e.Limiter.Tokens() < 1 {
					break
				}
				if waitErr = e.Limiter.Wait(ctx); waitErr != nil {
					break
				}
			}
			i++
		}
		if i > start {
			formed <- e.prepare(movable[start:i], resolution.Redriven, false)
		}
		if waitErr != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%w: %w", ErrInterrupted, ctx.Err())
			}
			return fmt.Errorf("rate limiter: %w", waitErr)
		}
	}
	return nil
}

// batch is one round of the pipeline: letters, their copies, and where the
// copies landed.
type batch struct {
	letters []deadletter.Letter
	copies  []kafka.Message
	action  resolution.Action
	at      time.Time
	coords  []kafkalog.Coord // Offset -1: not published
	pubErr  error
}

// prepare builds the copies of a batch. An edited batch carries corrected
// values: its copies name their dead letter in x-dlq-edited-from and are
// recorded as edited.
func (e *Engine) prepare(letters []deadletter.Letter, action resolution.Action, edited bool) *batch {
	b := &batch{letters: letters, action: action, at: e.now(), copies: make([]kafka.Message, len(letters))}
	for i, l := range letters {
		from := ""
		if edited {
			from = EditedFrom(l)
		}
		b.copies[i] = Copy(l, e.To, e.RetryTopic, b.at, from)
	}
	return b
}

// writeContext is the context of a batch's writes: the caller's
// cancellation does not reach it (bounded by WriteTimeout), so a batch is
// either not started or finished, and an interrupted run never leaves a
// copy without its resolution entry.
func (e *Engine) writeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	timeout := e.WriteTimeout
	if timeout <= 0 {
		timeout = DefaultWriteTimeout
	}
	return context.WithTimeout(context.WithoutCancel(ctx), timeout)
}

// publish writes the copies of a batch and waits for the acknowledgements.
func (e *Engine) publish(ctx context.Context, b *batch) {
	wctx, cancel := e.writeContext(ctx)
	defer cancel()
	byTopic := map[string][]int{}
	for i, m := range b.copies {
		byTopic[m.Topic] = append(byTopic[m.Topic], i)
	}
	b.coords = make([]kafkalog.Coord, len(b.copies))
	var errs []error
	for topic, idx := range byTopic {
		msgs := make([]kafka.Message, len(idx))
		ends := make([]func(error), len(idx))
		for n, i := range idx {
			msgs[n] = b.copies[i]
			ends[n] = tracing.Redrive(wctx, e.Tracing, &msgs[n], b.letters[i].Headers)
		}
		got, err := e.Log.Append(wctx, topic, msgs)
		for _, end := range ends {
			end(err)
		}
		for n, i := range idx {
			b.coords[i] = got[n]
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("publish to %s: %w", topic, err))
		}
	}
	b.pubErr = errors.Join(errs...)
}

// record writes the resolution entries of what a batch published (even
// when part of it failed), then commits the watermark.
func (e *Engine) record(ctx context.Context, b *batch) ([]Result, error) {
	wctx, cancel := e.writeContext(ctx)
	defer cancel()
	entries := make([]resolution.Entry, 0, len(b.letters))
	written := make([]int, 0, len(b.letters))
	for i, l := range b.letters {
		if b.coords[i].Offset < 0 {
			continue
		}
		target := b.coords[i]
		entries = append(entries, resolution.Entry{
			DeadLetter:   l.Coord,
			Action:       b.action,
			At:           b.at.UTC(),
			By:           e.By,
			Target:       &target,
			RedriveCount: l.Meta.RedriveCount + 1,
			Identity:     l.Identity(),
		})
		written = append(written, i)
	}
	errs := []error{b.pubErr}
	if len(entries) > 0 {
		if err := e.Store.Record(wctx, e.State, entries); err != nil {
			// The copies are published but not recorded: a rerun would
			// redrive them again. Say so, precisely.
			return nil, errors.Join(append(errs, fmt.Errorf("%d records were published but their resolution entries were not written (a rerun redrives them again): %w", len(entries), err))...)
		}
	}
	done := make([]Result, len(written))
	for n, i := range written {
		e.Cursor.Resolve(b.letters[i].Position())
		done[n] = Result{Letter: b.letters[i], Outcome: Redriven, Target: b.coords[i], RedriveCount: entries[n].RedriveCount}
	}
	if err := e.Store.Commit(wctx, e.State, e.Cursor.Offsets()); err != nil {
		// Harmless for correctness (the log has the entries); a rerun scans
		// a little more.
		errs = append(errs, fmt.Errorf("commit the watermark of group %s: %w", e.Store.Group, err))
	}
	return done, errors.Join(errs...)
}

// Edit publishes a corrected copy of one dead letter: value replaces the
// letter's value, x-dlq-edited-from names the letter, and the letter is
// recorded as edited (resolved). The loop guard does not apply: a person
// changed the data, which is what the guard waits for.
func (e *Engine) Edit(ctx context.Context, l deadletter.Letter, value []byte) (Result, error) {
	if l.Malformed != "" {
		return Result{}, fmt.Errorf("malformed headers (%s): dlq edit changes the value only; close it with dlq resolve and publish a new record instead", l.Malformed)
	}
	if err := Check(l, e.To, 0); err != nil {
		return Result{}, err
	}
	corrected := l
	corrected.Value = value
	b := e.prepare([]deadletter.Letter{corrected}, resolution.Edited, true)
	e.publish(ctx, b)
	done, err := e.record(ctx, b)
	if len(done) == 0 {
		return Result{}, err
	}
	return done[0], err
}
