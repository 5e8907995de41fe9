package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/consumer"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/grouplag"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/opsserver"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocbatch"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/inventory"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
)

// EventSource is the CloudEvents source of the events this service emits.
const EventSource = "/reefer-dlq/reefer-manager"

// Run starts the service and blocks until ctx ends, then shuts it down.
// It starts, in this order: the reefer store (open, migrate, seed), the
// inventory client, the Kafka writer, the orders reader, the ops server
// (/healthz, /readyz, /metrics), and the consumer loop. Shutdown runs in
// reverse: the consumer stops fetching, drains in-flight records and
// commits what finished; then the ops server, reader, writer and store
// close, each within cfg.ShutdownTimeout.
//
// Run returns nil after a shutdown requested through ctx, and an error
// when a dependency cannot start or the consumer fails.
func Run(ctx context.Context, log *slog.Logger, cfg Config) (err error) {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log.Info("starting reefer-manager", "config", cfg)

	// Each started dependency pushes its stop step; they run in reverse
	// order when Run returns, whatever the reason.
	var stops shutdown
	defer func() { err = errors.Join(err, stops.run(log, cfg.ShutdownTimeout)) }()

	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		return err
	}

	// (2) The reefer database.
	store, err := reeferstore.Open(ctx, cfg.DatabaseURL, log.With("component", "reeferstore"))
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	stops.push("database", func(context.Context) error { return store.Close() })
	if err := store.Migrate(ctx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if err := store.SeedFleet(ctx, cfg.FleetSize); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	// Concurrent records share database statements (see pkg/allocbatch):
	// allocations, and the marks of allocated orders. The batchers
	// outlive the consumer: they stop after the drain.
	batcher := allocbatch.NewAllocator(store, allocbatch.DefaultMaxBatch)
	ledger := allocbatch.NewLedger(store, allocbatch.DefaultMaxBatch)
	batchCtx, stopBatchers := context.WithCancel(context.WithoutCancel(ctx))
	go batcher.Run(batchCtx)
	go ledger.Run(batchCtx)
	stops.push("batchers", func(ctx context.Context) error {
		stopBatchers()
		for _, done := range []<-chan struct{}{batcher.Done(), ledger.Done()} {
			select {
			case <-done:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})

	// (3) The legacy inventory, behind a circuit breaker.
	inv, err := inventory.New(inventory.Config{
		BaseURL:       cfg.InventoryURL,
		Timeout:       cfg.InventoryTimeout,
		OnStateChange: func(from, to string) { m.setBreakerState(to) },
	})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}

	// (4) and (5), and the hand-off: one writer for the orders, containers
	// and retry topics, one for the dead letters (whose topic takes larger
	// records), each batching no more than its topics take.
	writer, dlqWriter, err := cfg.NewHandoffWriters()
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	stops.push("kafka writers", func(context.Context) error { return errors.Join(writer.Close(), dlqWriter.Close()) })
	hm := &m.handoff
	hm.Init(cfg.Topics()...)
	// A topic the hand-off cannot write to for a reason retrying cannot
	// fix stops its partitions: an ERROR log, the handoff_blocked gauge
	// and a failing readiness check say so.
	blockage := hm.Blockage(log.With("component", "handoff"))

	// (1) The orders.
	reader, err := cfg.Kafka.NewReader(cfg.Group.ReaderConfig(cfg.ConsumerGroup, cfg.OrdersTopic))
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	// Closed only after the consumer loop returned (kafka-go: a commit
	// racing with Close can block forever); the stop order guarantees it.
	stops.push("kafka reader", func(context.Context) error { return reader.Close() })
	lag, err := grouplag.New(grouplag.Config{Kafka: cfg.Kafka, Group: cfg.ConsumerGroup, Topic: cfg.OrdersTopic,
		Desc: lagDesc, Log: log.With("component", "grouplag")})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	stops.push("lag collector", func(context.Context) error { lag.Close(); return nil })
	if err := reg.Register(lag); err != nil {
		return fmt.Errorf("start: register lag metric: %w", err)
	}

	ops := opsserver.New(opsserver.Config{
		Addr:           cfg.HTTPAddr,
		Log:            log.With("component", "opsserver"),
		Registry:       reg,
		RuntimeMetrics: true,
		Checks: map[string]opsserver.Check{
			"database": store.Ping,
			"kafka":    cfg.Kafka.Ping,
			"handoff":  blockage.Check,
		},
	})
	if err := ops.Start(ctx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	stops.push("ops server", ops.Shutdown)
	log.Info("ops server listening", "addr", ops.Addr())

	p := &processor{
		log:     log,
		metrics: m,
		hm:      hm,
		handoff: &orders.Processor{
			Allocator: allocation.Service{
				Store:     batcher,
				Inventory: timedInventory{next: inv, latency: m.inventory, fast: m.fastFailures},
			},
			Router: cfg.Router(writer, dlqWriter, EventSource, blockage),
			// The order's state row: each conclusion (allocated, dead
			// letter) is won there by a compare-and-set before it is
			// written, so that a chain of the same order in order-retry
			// cannot conclude it a second time (see handoff.Ledger).
			Ledger: ledger,
			// The orders topic also carries the events this service emits.
			SkipOtherTypes: true,
		},
	}
	if err := p.handoff.Router.Validate(); err != nil {
		return fmt.Errorf("start: %w", err)
	}

	log.Info("consuming", "topic", cfg.OrdersTopic, "group", cfg.ConsumerGroup, "commit_mode", cfg.CommitMode)
	err = consumer.Run(ctx, consumer.Config{
		Reader:                 reader,
		Handler:                p.handle,
		MaxInFlight:            cfg.MaxInFlight,
		MaxPendingBytes:        int64(cfg.MaxPendingBytes),
		DrainTimeout:           cfg.ShutdownTimeout,
		CommitBeforeProcessing: cfg.CommitMode == CommitBeforeProcessing,
		Log:                    log.With("component", "consumer"),
		OnFetched:              func(kafka.Message) { m.consumed.Inc() },
	})
	if err != nil {
		return fmt.Errorf("consume %s: %w", cfg.OrdersTopic, err)
	}
	log.Info("stopping reefer-manager")
	return nil
}

// processor is the consumer handler: one record through the shared
// decode -> allocate -> hand-off steps, plus this service's metrics and
// logs.
type processor struct {
	log     *slog.Logger
	metrics *metrics
	hm      *handoff.Metrics
	handoff *orders.Processor
}

// handle returns nil once the record's outcome is acknowledged by the
// broker; an error makes the consumer try the same record again and keeps
// its offset uncommitted.
func (p *processor) handle(ctx context.Context, msg kafka.Message) error {
	start := time.Now()
	// Records on the orders topic have never failed: the first failure is
	// attempt 1. A record redriven here (dlq redrive --to original) keeps
	// its redrive count, which reopens its order and is the loop guard.
	prev, err := retrymeta.FirstAttempt(msg.Headers)
	var d orders.Decision
	if err != nil {
		d.Decision, err = p.handoff.Router.Poison(ctx, msg, retrymeta.Meta{}, fmt.Errorf("read headers of record %s/%d@%d: %w", msg.Topic, msg.Partition, msg.Offset, err))
	} else {
		d, err = p.handoff.Process(ctx, msg, prev)
	}
	p.metrics.observe(d, err, time.Since(start))
	if err != nil {
		return err
	}
	p.hm.Observe(d.Decision)
	at := []any{"order_id", d.OrderID, "partition", msg.Partition, "offset", msg.Offset}
	switch d.Route {
	case handoff.RouteDeadLetter:
		p.log.Warn("order dead-lettered", append(at, "reason", d.Reason, "attempt", d.Attempt, "error", d.Err)...)
	case handoff.RouteRetry:
		// Debug, not Info: during an outage every order takes this route,
		// and records_retried_total already counts them.
		p.log.Debug("order handed to retry", append(at, "attempt", d.Attempt, "due_at", d.DueAt, "error", d.Err)...)
	default:
		p.log.Debug("record concluded", append(at, "route", d.Route, "container_id", d.ContainerID)...)
	}
	return nil
}

// shutdown is a stack of stop steps, run last-in first-out.
type shutdown []stopStep

type stopStep struct {
	name string
	stop func(ctx context.Context) error
}

func (s *shutdown) push(name string, stop func(ctx context.Context) error) {
	*s = append(*s, stopStep{name, stop})
}

// run stops everything in reverse start order. Each step gets timeout; a
// step that does not return in time is abandoned (and reported) so that
// one stuck dependency cannot keep the process from exiting.
func (s shutdown) run(log *slog.Logger, timeout time.Duration) error {
	var errs []error
	for i := len(s) - 1; i >= 0; i-- {
		step := s[i]
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		done := make(chan error, 1)
		go func() { done <- step.stop(ctx) }()
		select {
		case err := <-done:
			if err != nil {
				errs = append(errs, fmt.Errorf("stop %s: %w", step.name, err))
			}
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("stop %s: gave up after %s", step.name, timeout))
		}
		cancel()
		log.Debug("stopped", "component", step.name)
	}
	return errors.Join(errs...)
}
