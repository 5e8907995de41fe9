package retrier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/consumer"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/scheduler"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/grouplag"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/opsserver"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocbatch"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/inventory"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
)

// EventSource is the CloudEvents source of the events this service emits.
const EventSource = "/reefer-dlq/order-retry"

// Run starts the service and blocks until ctx ends, then shuts it down.
// It starts, in this order: the reefer store (open, migrate, seed) and
// its batchers, the inventory client, the Kafka writer, the retry-topic
// reader, the ops server (/healthz, /readyz, /metrics), and the consumer
// loop with the due-time scheduler as its dispatcher. Shutdown runs in
// reverse: the consumer stops fetching, lets running retries finish
// (records still waiting for their due time are dropped: their offsets
// were never committed, so they come back after a restart) and commits
// what finished; then the ops server, reader, writer, batchers and store
// close, each within cfg.ShutdownTimeout.
//
// Run returns nil after a shutdown requested through ctx, and an error
// when a dependency cannot start or the consumer fails.
func Run(ctx context.Context, log *slog.Logger, cfg Config) (err error) {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log.Info("starting order-retry", "config", cfg)
	// Each started dependency defers its stop step; they run in reverse
	// order when Run returns, whatever the reason.
	stop := func(name string, fn func(context.Context) error) {
		err = errors.Join(err, stopWithin(log, cfg.ShutdownTimeout, name, fn))
	}

	// The scheduler is created first because the metrics read its state.
	// Its OnStart reports to the metrics, which exist before it runs.
	var m *metrics
	sched := scheduler.New(scheduler.Config{
		MaxPending: cfg.MaxPending,
		Workers:    cfg.MaxInFlight,
		DueAt:      kafkaretry.ReleaseAt(cfg.MaxDueAhead, time.Now),
		OnStart: func(msg kafka.Message, lateness time.Duration) {
			// Records without a usable due time were released at once to be
			// dead-lettered; their "lateness" means nothing.
			if due, ok := kafkaretry.DueAt(msg); ok && !due.After(time.Now()) {
				m.lateness.Observe(lateness.Seconds())
			}
		},
		Log: log.With("component", "scheduler"),
	})
	reg := prometheus.NewRegistry()
	m, err = newMetrics(reg, cfg.RetryMaxAttempts, sched.Pending, sched.Running, cfg.MaxPending)
	if err != nil {
		return err
	}

	// (6) The retry runs the same steps as the first attempt: the reefer
	// database...
	store, err := reeferstore.Open(ctx, cfg.DatabaseURL, log.With("component", "reeferstore"))
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer stop("database", func(context.Context) error { return store.Close() })
	if err := store.Migrate(ctx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if err := store.SeedFleet(ctx, cfg.FleetSize); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	// Retries that come due together share database statements (see
	// pkg/allocbatch): allocations, and the marks of allocated orders.
	// One statement per order caps the service at a few thousand orders a
	// second on Postgres, and retries past that run late. The batchers
	// outlive the consumer: they stop after the drain.
	allocator := allocbatch.NewAllocator(store, allocbatch.DefaultMaxBatch)
	ledger := allocbatch.NewLedger(store, allocbatch.DefaultMaxBatch)
	batchCtx, stopBatchers := context.WithCancel(context.WithoutCancel(ctx))
	go allocator.Run(batchCtx)
	go ledger.Run(batchCtx)
	defer stop("batchers", func(ctx context.Context) error {
		stopBatchers()
		for _, done := range []<-chan struct{}{allocator.Done(), ledger.Done()} {
			select {
			case <-done:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})

	// ...and the legacy inventory, behind a circuit breaker.
	inv, err := inventory.New(inventory.Config{
		BaseURL:       cfg.InventoryURL,
		Timeout:       cfg.InventoryTimeout,
		OnStateChange: func(_, to string) { m.setBreakerState(to) },
	})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}

	// The outcomes: success events, the next retry, or (7) the dead
	// letter. One writer for the orders, containers and retry topics, one
	// for the dead letters (whose topic takes larger records), each
	// batching no more than its topics take.
	writer, dlqWriter, err := cfg.NewHandoffWriters()
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer stop("kafka writers", func(context.Context) error { return errors.Join(writer.Close(), dlqWriter.Close()) })
	hm := &m.handoff
	hm.Init(cfg.Topics()...)
	// A topic the hand-off cannot write to for a reason retrying cannot
	// fix stops its partitions: an ERROR log, the handoff_blocked gauge
	// and a failing readiness check say so.
	blockage := hm.Blockage(log.With("component", "handoff"))

	// (5) The retries.
	reader, err := cfg.Kafka.NewReader(cfg.Group.ReaderConfig(cfg.ConsumerGroup, cfg.RetryTopic))
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	// Closed only after the consumer loop returned (kafka-go: a commit
	// racing with Close can block forever); the defer order guarantees it.
	defer stop("kafka reader", func(context.Context) error { return reader.Close() })
	lag, err := grouplag.New(grouplag.Config{Kafka: cfg.Kafka, Group: cfg.ConsumerGroup, Topic: cfg.RetryTopic,
		Desc: lagDesc, Log: log.With("component", "grouplag")})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer lag.Close()
	if err := reg.Register(lag); err != nil {
		return fmt.Errorf("start: register lag metric: %w", err)
	}

	ops := opsserver.New(opsserver.Config{
		Addr:           cfg.HTTPAddr,
		Log:            log.With("component", "opsserver"),
		Registry:       reg,
		RuntimeMetrics: true,
		// Not the inventory: it failing is what this service exists for,
		// and taking the service out of rotation would not help it.
		Checks: map[string]opsserver.Check{
			"database": store.Ping,
			"kafka":    cfg.Kafka.Ping,
			"handoff":  blockage.Check,
		},
	})
	if err := ops.Start(ctx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer stop("ops server", ops.Shutdown)
	log.Info("ops server listening", "addr", ops.Addr())

	router := cfg.Router(writer, dlqWriter, EventSource, blockage)
	if err := router.Validate(); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	r := &retrier{
		log:     log,
		metrics: m,
		hm:      hm,
		processor: &orders.Processor{
			Allocator: allocation.Service{Store: allocator, Inventory: countedInventory{next: inv, fast: m.fastFailures}},
			Router:    router,
			// SkipOtherTypes stays false: the retry topic should only ever
			// hold orders, so anything else is poison.
			// The order's state row: each conclusion is won there by a
			// compare-and-set before it is written, so that of two chains
			// of one order (every rebalance re-runs waiting records whose
			// next attempts are already published) only one concludes it
			// (see handoff.Ledger).
			Ledger: ledger,
		},
		maxDueAhead: cfg.MaxDueAhead,
		now:         time.Now,
	}

	log.Info("consuming", "topic", cfg.RetryTopic, "group", cfg.ConsumerGroup,
		"max_pending", cfg.MaxPending, "max_in_flight", cfg.MaxInFlight)
	err = consumer.Run(ctx, consumer.Config{
		Reader:          reader,
		Handler:         r.handle,
		Dispatcher:      sched,
		MaxPendingBytes: int64(cfg.MaxPendingBytes),
		DrainTimeout:    cfg.ShutdownTimeout,
		Log:             log.With("component", "consumer"),
		OnFetched:       func(kafka.Message) { m.consumed.Inc() },
	})
	if err != nil {
		return fmt.Errorf("consume %s: %w", cfg.RetryTopic, err)
	}
	log.Info("stopping order-retry")
	return nil
}

// stopWithin runs one stop step with a timeout. A step that does not
// return in time is abandoned (and reported) so that one stuck dependency
// cannot keep the process from exiting.
func stopWithin(log *slog.Logger, timeout time.Duration, name string, stop func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- stop(ctx) }()
	select {
	case err := <-done:
		log.Debug("stopped", "component", name)
		if err != nil {
			return fmt.Errorf("stop %s: %w", name, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop %s: gave up after %s", name, timeout)
	}
}
