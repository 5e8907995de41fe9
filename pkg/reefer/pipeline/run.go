package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/consumer"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/tracing"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/buildinfo"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/cmdline"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/envconfig"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/grouplag"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/opsserver"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/telemetry"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocbatch"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/inventory"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
)

// Service is what one stage adds to the wiring that both stages share:
// the lesson. reefer-manager reads the orders topic in per-key lanes;
// order-retry reads the retry topic through the due-time scheduler. The
// rest (store, inventory, writers, reader, ops server, hand-off) is the
// same, and is Run's.
type Service struct {
	// Name is the service, for its logs ("reefer-manager").
	Name string
	// Source is the CloudEvents source of the events it emits.
	Source string
	// Topic is the topic it reads, in consumer group Group.
	Topic string
	Group string
	// HTTPAddr serves /healthz, /readyz and /metrics.
	HTTPAddr string

	// Registry is the service's own registry, which /metrics serves, and
	// Metrics the shared series registered there (NewMetrics); the
	// service's own are registered there already.
	Registry *prometheus.Registry
	Metrics  *Metrics

	// SkipOtherTypes, ReadHeaders and Observe: see orders.Processor,
	// whose Handle is the consumer's handler. Metrics.Observe counts each
	// record first; Observe adds the service's own counts and logs.
	SkipOtherTypes bool
	ReadHeaders    func(msg kafka.Message, now time.Time) (retrymeta.Meta, error)
	Observe        func(context.Context, orders.Handled)
	// Consumer holds the reader's settings: MaxInFlight or a Dispatcher,
	// MaxPendingBytes, CommitBeforeProcessing, OnFetched. Run sets its
	// Reader, Handler, DrainTimeout and Log.
	Consumer consumer.Config
}

// Run starts one stage of the order pipeline and blocks until ctx ends,
// then shuts it down. It starts, in this order: the tracer provider
// (s.Telemetry), the reefer store (open,
// migrate, seed) and its batchers, the inventory client and the releaser
// of dead-lettered reefers, the Kafka
// writers, the reader of svc.Topic and its lag collector, the ops server,
// and the consumer loop. Shutdown runs in reverse: the consumer stops
// fetching, drains the running records and commits what finished; then
// every started step stops, last first, each within s.ShutdownTimeout.
//
// Run returns nil after a shutdown requested through ctx, and an error
// when a dependency cannot start or the consumer fails.
func Run(ctx context.Context, log *slog.Logger, s Stage, svc Service) (err error) {
	// Each started step pushes its stop; they run in reverse order when
	// Run returns, whatever the reason.
	var stops Stops
	defer func() { err = errors.Join(err, stops.Run(log, s.ShutdownTimeout)) }()

	// Tracing first, so that it stops last: its shutdown exports the
	// spans of the records drained before it.
	provider, err := telemetry.New(ctx, s.Telemetry, svc.Name, buildinfo.Read().Version)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	stops.Push("tracing", provider.Shutdown)
	tp := provider.Tracing() // nil when off: no tracing work at all

	// The reefer database.
	store, err := reeferstore.Open(ctx, s.DatabaseURL, log.With("component", "reeferstore"))
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	stops.Push("database", func(context.Context) error { return store.Close() })
	if err := store.Migrate(ctx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if err := store.SeedFleet(ctx, s.FleetSize); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	// Concurrent records share database statements (see package
	// allocbatch): allocations, and the marks of allocated orders. One
	// statement per order caps a stage at a few thousand orders a second
	// on Postgres. The batchers outlive the consumer: they stop after the
	// drain.
	allocator := allocbatch.NewAllocator(store, allocbatch.DefaultMaxBatch)
	ledger := allocbatch.NewLedger(store, allocbatch.DefaultMaxBatch)
	batchCtx, stopBatchers := context.WithCancel(context.WithoutCancel(ctx))
	go allocator.Run(batchCtx)
	go ledger.Run(batchCtx)
	stops.Push("batchers", func(ctx context.Context) error {
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

	// The legacy inventory, behind a circuit breaker.
	client, err := inventory.New(inventory.Config{
		BaseURL:       s.InventoryURL,
		Timeout:       s.InventoryTimeout,
		SlowCallFloor: slowCallFloor(s.InventorySlowCallFloor),
		OnStateChange: func(_, to string) { svc.Metrics.setBreakerState(to) },
		Tracing:       tp,
	})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	inv := timedInventory{next: client, m: svc.Metrics}
	// The reefers of dead-lettered attempts go back to the pool only once
	// the inventory released them; those it could not release at once
	// are swept every RELEASE_INTERVAL, and every release is done once
	// more RELEASE_RECHECK_AFTER later.
	releaser := allocation.Releaser{Store: store, Inventory: client, Log: log.With("component", "releaser"), RecheckAfter: s.ReleaseRecheckAfter}
	releaseCtx, stopReleases := context.WithCancel(ctx)
	releasesDone := make(chan struct{})
	go func() {
		defer close(releasesDone)
		releaser.Run(releaseCtx, s.ReleaseInterval, s.InventoryTimeout*4)
	}()
	stops.Push("releaser", func(ctx context.Context) error {
		stopReleases()
		select {
		case <-releasesDone:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})

	// The outcomes: one writer for the orders, containers and retry
	// topics, one for the dead letters (whose topic takes larger records),
	// each batching no more than its topics take.
	writer, dlqWriter, err := s.NewHandoffWriters()
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	stops.Push("kafka writers", func(context.Context) error { return errors.Join(writer.Close(), dlqWriter.Close()) })
	svc.Metrics.Handoff.Init(s.Topics()...)
	// A topic the hand-off cannot write to for a reason retrying cannot
	// fix stops its partitions: an ERROR log, the handoff_blocked gauge
	// and a failing readiness check say so.
	blockage := svc.Metrics.Handoff.Blockage(log.With("component", "handoff"))

	// The input.
	reader, err := s.Kafka.NewReader(s.Group.ReaderConfig(svc.Group, svc.Topic))
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	// Closed only after the consumer loop returned (kafka-go: a commit
	// racing with Close can block forever); the stop order guarantees it.
	stops.Push("kafka reader", func(context.Context) error { return reader.Close() })
	lag, err := grouplag.New(grouplag.Config{Kafka: s.Kafka, Group: svc.Group, Topic: svc.Topic,
		Desc: svc.Metrics.lag, Log: log.With("component", "grouplag")})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	stops.Push("lag collector", func(context.Context) error { lag.Close(); return nil })
	if err := svc.Registry.Register(lag); err != nil {
		return fmt.Errorf("start: register lag metric: %w", err)
	}

	ops := opsserver.New(opsserver.Config{
		Addr:           svc.HTTPAddr,
		Log:            log.With("component", "opsserver"),
		Registry:       svc.Registry,
		RuntimeMetrics: true,
		// Not the inventory: it failing is what the pattern is for, and
		// taking the service out of rotation would not help it.
		Checks: map[string]opsserver.Check{
			"database": store.Ping,
			"kafka":    s.Kafka.Ping,
			"handoff":  blockage.Check,
		},
	})
	if err := ops.Start(ctx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	stops.Push("ops server", ops.Shutdown)
	log.Info("ops server listening", "addr", ops.Addr())

	// With tracing on, the database steps of each order get spans.
	reserve, conclude := traced(tp, s.DatabaseURL, allocator, ledger)
	router := s.Router(writer, dlqWriter, svc.Source, blockage)
	router.Tracing = tp
	p := &orders.Processor{
		Allocator: allocation.Service{Store: reserve, Inventory: inv},
		Router:    router,
		// The order's state row: each conclusion (allocated, dead letter)
		// is won there by a compare-and-set before it is written, so that
		// of two chains of one order only one concludes it (see
		// orders.Ledger).
		Ledger:         conclude,
		Releaser:       releaser,
		SkipOtherTypes: svc.SkipOtherTypes,
		ReadHeaders:    svc.ReadHeaders,
		Observe: func(ctx context.Context, h orders.Handled) {
			svc.Metrics.Observe(h)
			if svc.Observe != nil {
				svc.Observe(ctx, h)
			}
		},
	}
	if err := p.Router.Validate(); err != nil {
		return fmt.Errorf("start: %w", err)
	}

	cc := svc.Consumer
	// Each record runs in a consumer span that continues its trace.
	cc.Reader, cc.Handler, cc.DrainTimeout = reader, tracing.Process(tp, svc.Group, p.Handle), s.ShutdownTimeout
	cc.Log = log.With("component", "consumer")
	onFetched := cc.OnFetched
	cc.OnFetched = func(msg kafka.Message) {
		svc.Metrics.Consumed.Inc()
		if onFetched != nil {
			onFetched(msg)
		}
	}
	log.Info("consuming", "topic", svc.Topic, "group", svc.Group)
	if err := consumer.Run(ctx, cc); err != nil {
		return fmt.Errorf("consume %s: %w", svc.Topic, err)
	}
	log.Info("stopping " + svc.Name)
	return nil
}

// Stops is a stack of stop steps, run last-in first-out.
type Stops []stopStep

type stopStep struct {
	name string
	stop func(ctx context.Context) error
}

// Push adds the stop step of a dependency that just started.
func (s *Stops) Push(name string, stop func(ctx context.Context) error) {
	*s = append(*s, stopStep{name, stop})
}

// Run stops everything in reverse start order. Each step gets timeout; a
// step that does not return in time is abandoned (and reported) so that
// one stuck dependency cannot keep the process from exiting.
func (s Stops) Run(log *slog.Logger, timeout time.Duration) error {
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

// Command is a pipeline service as a process, for cmdline.Main: its name,
// what it does, the variables of its Config C, and a run that reads C
// from the environment and runs the service with the logger C configures.
func Command[C interface{ NewLogger(io.Writer) *slog.Logger }](name, about string,
	fromEnv func(getenv func(string) string) (C, error), run func(context.Context, *slog.Logger, C) error) cmdline.Command {
	return cmdline.Command{Name: name, About: about, Env: envconfig.Vars[C],
		Run: func(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
			cfg, err := fromEnv(getenv)
			if err != nil {
				return err
			}
			return run(ctx, cfg.NewLogger(stdout), cfg)
		}}
}

// slowCallFloor is INVENTORY_SLOW_CALL_FLOOR for inventory.Config, where
// a negative floor turns the slow-call trip off and zero means the
// default.
func slowCallFloor(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
