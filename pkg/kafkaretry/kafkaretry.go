// Package kafkaretry is the retry and dead-letter pattern for Kafka
// consumers, as a small library: write a [Handler] for one record, give it
// a [Stage], and every failure is handed off by its class.
//
//	handler returns     the record goes to                         then
//	nil                 nowhere (the handler did its work)          committed
//	transient error     the retry topic, due after a back-off      committed
//	                    (dead letter, max-attempts, once used up)
//	permanent error     the dead-letter topic, permanent-error      committed
//	Poison(err)         the dead-letter topic, poison               committed
//
// A record is committed only once its hand-off is acknowledged by the
// broker ("commit after hand-off"): a crash in between processes it again,
// so a handler must be idempotent. Errors are classified by package
// failure: failure.NewPermanent marks a failure retrying cannot fix; an
// error nobody classified is transient.
//
// Run two stages: one reading the input topic (Retries false), one reading
// the retry topic (Retries true), which waits until each record's
// x-retry-due-at before it calls the same handler. Both share a
// handoff.Router that names the retry and dead-letter topics and the
// back-off. The parts are packages of their own, each with a doc that
// explains its idea: consumer (fetch, lanes, commit point), offsets,
// scheduler (due times), backoff, failure, retrymeta (the headers) and
// handoff (the router).
package kafkaretry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/consumer"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/scheduler"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/tracing"
)

// Handler processes one record. A nil error means the record is done; an
// error is handed off by its class (see the package documentation).
// Honour ctx: it ends when the stage shuts down, and a failure that
// happens because ctx ended is not counted as an attempt.
type Handler func(ctx context.Context, msg kafka.Message) error

// Middleware wraps a Handler: logging, metrics, tracing.
type Middleware func(Handler) Handler

// Chain returns h wrapped by mws, the first outermost.
func Chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// Poison marks err as a record that cannot be processed at all (its value
// does not decode): the record is dead-lettered at once with reason poison.
func Poison(err error) error { return &poisonError{err} }

type poisonError struct{ err error }

func (e *poisonError) Error() string { return e.err.Error() }
func (e *poisonError) Unwrap() error { return e.err }

// DefaultMaxDueAhead is Stage.MaxDueAhead's default.
const DefaultMaxDueAhead = time.Hour

// Stage consumes one topic with a Handler and hands its failures off.
// Create it with a struct literal; Reader, Handler and Router are
// required. Run it once.
type Stage struct {
	// Reader reads the stage's topic as a member of a consumer group: a
	// *kafka.Reader with GroupID set and CommitInterval 0.
	Reader consumer.Reader
	// Handler processes each record.
	Handler Handler
	// Router writes the retries and dead letters (see handoff.Router).
	Router *handoff.Router

	// Retries makes this the retry stage: it reads Router.Topics.Retry,
	// holds each record until its x-retry-due-at, and dead-letters as
	// poison a record whose retry headers cannot be read. The input stage
	// (false) runs records as they come, in per-key order.
	Retries bool
	// MaxInFlight is how many records run at the same time. Default 64.
	MaxInFlight int
	// MaxDueAhead is how far ahead an x-retry-due-at may lie (Retries
	// only); a record due later is dead-lettered as poison rather than held
	// for ever. It must exceed the Router's largest back-off. Default 1h.
	MaxDueAhead time.Duration
	// DrainTimeout bounds the records still running at shutdown; see
	// consumer.Config. Default 10s.
	DrainTimeout time.Duration
	// Log receives the consumer's warnings. Default: discard.
	Log *slog.Logger
	// OnDecision, when set, learns where each record went, for metrics
	// and logs (RouteDone for a nil error).
	OnDecision func(msg kafka.Message, d handoff.Decision)
	// Tracing, when set, runs each record in a consumer span that
	// continues the trace of its traceparent (see package tracing); set
	// the Router's Tracing too, so that its writes carry it on. nil: no
	// spans.
	Tracing trace.TracerProvider
}

// Run consumes until ctx ends, then drains and commits what finished. It
// returns nil after a shutdown through ctx.
func (s *Stage) Run(ctx context.Context) error {
	if s.Reader == nil || s.Handler == nil || s.Router == nil {
		return errors.New("kafkaretry stage: Reader, Handler and Router are required")
	}
	if err := s.Router.Validate(); err != nil {
		return fmt.Errorf("kafkaretry stage: %w", err)
	}
	group := ""
	if r, ok := s.Reader.(*kafka.Reader); ok {
		group = r.Config().GroupID
	}
	cfg := consumer.Config{
		Reader:       s.Reader,
		Handler:      tracing.Process(s.Tracing, group, consumer.Handler(s.handle)),
		MaxInFlight:  s.MaxInFlight,
		DrainTimeout: s.DrainTimeout,
		Log:          s.Log,
	}
	if s.Retries {
		maxAhead := s.MaxDueAhead
		if maxAhead <= 0 {
			maxAhead = DefaultMaxDueAhead
		}
		cfg.Dispatcher = scheduler.New(scheduler.Config{
			Workers: orDefault(s.MaxInFlight, consumer.DefaultMaxInFlight),
			DueAt:   ReleaseAt(maxAhead, time.Now),
			Log:     s.Log,
		})
	}
	return consumer.Run(ctx, cfg)
}

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// handle runs one record and hands its failure off; it returns an error
// only when the hand-off did not happen, so that the record is not
// committed.
func (s *Stage) handle(ctx context.Context, msg kafka.Message) error {
	prev, err := s.readHeaders(msg)
	var d handoff.Decision
	switch {
	case err != nil:
		d, err = s.Router.Poison(ctx, msg, prev, err)
	default:
		herr := s.Handler(ctx, msg)
		var poison *poisonError
		switch {
		case herr == nil:
			d = handoff.Decision{Route: handoff.RouteDone}
			tracing.Route(ctx, string(d.Route))
		case ctx.Err() != nil:
			// Shutting down: the failure is ours, not the record's.
			return fmt.Errorf("record %s interrupted: %w", handoff.Coordinates(msg), herr)
		case errors.As(herr, &poison):
			d, err = s.Router.Poison(ctx, msg, prev, poison.err)
		default:
			d, err = s.Router.Fail(ctx, msg, prev, herr)
		}
	}
	if err != nil {
		return err
	}
	if s.OnDecision != nil {
		s.OnDecision(msg, d)
	}
	return nil
}

// readHeaders is the retry metadata the record arrived with: none on the
// input topic (what retrymeta.FirstAttempt keeps), a complete set that has
// come due on the retry topic.
func (s *Stage) readHeaders(msg kafka.Message) (retrymeta.Meta, error) {
	if !s.Retries {
		return retrymeta.FirstAttempt(msg.Headers)
	}
	meta, err := retrymeta.ParseRetry(msg.Headers)
	if err != nil {
		return retrymeta.Meta{}, fmt.Errorf("read retry headers of %s: %w", handoff.Coordinates(msg), err)
	}
	if ahead := time.Until(meta.DueAt); ahead > 0 {
		// Released early by ReleaseAt: due beyond MaxDueAhead.
		return meta, fmt.Errorf("read retry headers of %s: %s is %s ahead, beyond MaxDueAhead", handoff.Coordinates(msg), retrymeta.HeaderDueAt, ahead.Round(time.Second))
	}
	return meta, nil
}

// DueAt reads a record's x-retry-due-at alone, by the same rules as
// retrymeta.Parse. ok is false when it is missing or unreadable.
func DueAt(msg kafka.Message) (due time.Time, ok bool) {
	v, ok := retrymeta.Get(msg.Headers, retrymeta.HeaderDueAt)
	if !ok {
		return time.Time{}, false
	}
	m, err := retrymeta.Parse([]kafka.Header{{Key: retrymeta.HeaderDueAt, Value: []byte(v)}})
	if err != nil {
		return time.Time{}, false
	}
	return m.DueAt, true
}

// ReleaseAt is the scheduler's DueAt for a retry stage: a record runs at
// its x-retry-due-at; one whose due time is missing, unreadable or further
// ahead than maxDueAhead runs at once, so that its handler dead-letters it
// as poison instead of holding a pending slot, and its partition's
// commits, for ever.
func ReleaseAt(maxDueAhead time.Duration, now func() time.Time) func(kafka.Message) time.Time {
	return func(msg kafka.Message) time.Time {
		due, ok := DueAt(msg)
		if !ok || due.Sub(now()) > maxDueAhead {
			return time.Time{}
		}
		return due
	}
}
