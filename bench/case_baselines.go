package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/bench/baseline"
	"github.com/reeferdlq/reefer-dlq/bench/report"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/backoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/inventory"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
)

// The retry settings every baseline shares with the services' defaults:
// RETRY_MAX_ATTEMPTS=5 and RETRY_BASE_DELAY=1s.
const (
	baselineAttempts = 5
	baselineDelay    = time.Second
)

// blocking is one blocking retry design of case 5.
type blocking struct {
	key, name, params string
	wrap              func(next orders.Allocator) orders.Allocator
}

func blockingDesigns() []blocking {
	return []blocking{
		{
			key: "5a", name: "sleep attempt × delay in the listener (the original implementation)",
			params: fmt.Sprintf("%d attempts, sleeping 1, 2, 3, 4 × %s between them, then dead letter", baselineAttempts, baselineDelay),
			wrap: func(next orders.Allocator) orders.Allocator {
				return baseline.SleepingRetry{Next: next, Attempts: baselineAttempts, Delay: baselineDelay}
			},
		},
		{
			key: "5b", name: "watermill Retry middleware (in-process exponential backoff)",
			params: fmt.Sprintf("watermill v1.5 middleware.Retry{MaxRetries: %d, InitialInterval: %s, Multiplier: 2, MaxInterval: 1m, RandomizationFactor: 0.1}, then dead letter", baselineAttempts-1, baselineDelay),
			wrap: func(next orders.Allocator) orders.Allocator {
				return baseline.WatermillRetry{Next: next, Retry: middleware.Retry{
					MaxRetries:          baselineAttempts - 1,
					InitialInterval:     baselineDelay,
					Multiplier:          2,
					MaxInterval:         time.Minute,
					MaxElapsedTime:      time.Hour,
					RandomizationFactor: 0.1,
				}}
			},
		},
	}
}

// caseBaselines is case 5: the blocking retry designs the pattern replaces,
// under the outages of case 4, on the same broker, database and inventory
// client. Each is driven by one listener per partition that hands it one
// record at a time (baseline.PartitionListeners); the watermill handler is
// driven that way too, instead of through watermill-kafka, whose subscriber
// also delivers one message per partition at a time. They run for a fixed
// window, because at their rate the case's orders would take hours; the
// rate is the orders they concluded (allocated or dead-lettered) in it.
func caseBaselines(ctx context.Context, e *env) ([]report.Row, error) {
	var rows []report.Row
	for _, d := range blockingDesigns() {
		for _, o := range outages(e.p) {
			if o.env != nil {
				continue // a setting of the suite's services, which the baselines are not
			}
			key := d.key + "-" + o.key
			concluded, w, err := e.runBlocking(ctx, "c5-"+key, d, o)
			if err != nil {
				return rows, fmt.Errorf("%s: %w", key, err)
			}
			rows = append(rows, report.Row{
				Case: "5", Key: key, Name: d.name + ", inventory " + o.name + ": input orders/s",
				Params: fmt.Sprintf("%s; 6 listeners (one per partition), each blocking on its record; %d orders produced, %s window; the inventory %s",
					d.params, e.p.orders, e.p.baselineWindow, o.desc),
				Value: round(float64(concluded)/w.Elapsed.Seconds(), 3), Unit: "orders/s",
				Metrics: w.metrics(map[string]float64{"concluded": float64(concluded)}),
				RatioTo: []string{"3"},
				Goals:   []report.Goal{{Metric: report.MetricRatio, Op: "<", Target: 0.1}},
			})
		}
	}
	return rows, nil
}

// runBlocking runs one blocking design under one outage for the window and
// returns how many orders it concluded.
func (e *env) runBlocking(ctx context.Context, prefix string, d blocking, o outage) (int64, window, error) {
	t, err := e.newTopics(ctx, prefix)
	if err != nil {
		return 0, window{}, err
	}
	db, err := e.database(ctx, prefix)
	if err != nil {
		return 0, window{}, err
	}
	store, err := reeferstore.Open(ctx, db, e.svcLog)
	if err != nil {
		return 0, window{}, err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return 0, window{}, err
	}
	// Only a few orders get anywhere: a small fleet will do.
	if err := store.SeedFleet(ctx, min(1000, e.p.orders+100)); err != nil {
		return 0, window{}, err
	}
	mock, stopMock, err := e.inventory(ctx, o.profile, 0)
	if err != nil {
		return 0, window{}, err
	}
	defer stopMock()
	inv, err := inventory.New(inventory.Config{BaseURL: "http://" + mock.Addr(), Timeout: e.p.inventoryTimeout})
	if err != nil {
		return 0, window{}, err
	}
	writer, err := e.kafka.NewWriter("")
	if err != nil {
		return 0, window{}, err
	}
	defer writer.Close()

	processor := &orders.Processor{
		Allocator: d.wrap(allocation.Service{Store: store, Inventory: inv}),
		Router: &orders.Router{
			Router: handoff.Router{
				Writer: writer,
				Topics: handoff.Topics{Retry: t.Retry, DeadLetter: t.DLQ},
				Policy: backoff.Policy{Base: baselineDelay, Max: time.Minute, Jitter: backoff.Proportional, Fraction: 0.1},
				// Every attempt happened in place: the first failure the
				// router sees is the last, and is dead-lettered.
				MaxAttempts: 1,
			},
			OrdersTopic: t.Orders, ContainersTopic: t.Containers, Source: "/reefer-dlq/bench-baseline",
		},
		SkipOtherTypes: true,
	}
	if err := processor.Router.Validate(); err != nil {
		return 0, window{}, err
	}
	var concluded atomic.Int64
	listeners := goRun(ctx, baseline.PartitionListeners{
		Kafka:      e.kafka,
		Topic:      t.Orders,
		Partitions: partitions(t.Orders),
		Handle: func(ctx context.Context, msg kafka.Message) error {
			dec, err := processor.Process(ctx, msg, retrymeta.Meta{})
			if err != nil {
				if ctx.Err() != nil {
					return nil // the window closed mid-record: not concluded
				}
				return err
			}
			if dec.Route != handoff.RouteSkipped {
				concluded.Add(1)
			}
			return nil
		},
	}.Run)
	defer listeners.stop()

	msgs, err := orderRecords(prefix, e.p.orders)
	if err != nil {
		return 0, window{}, err
	}
	sw, err := e.startWatch(prefix)
	if err != nil {
		return 0, window{}, err
	}
	if err := e.produce(ctx, t.Orders, msgs); err != nil {
		return 0, window{}, err
	}
	deadline := time.After(e.p.baselineWindow - time.Since(sw.start))
	for waiting := true; waiting; {
		select {
		case <-deadline:
			waiting = false
		case <-ctx.Done():
			return 0, window{}, ctx.Err()
		case <-time.After(pollEvery):
			waiting = concluded.Load() < int64(e.p.orders)
			if err := listeners.failed(); err != nil {
				return 0, window{}, err
			}
		}
	}
	n := concluded.Load()
	w := sw.stop()
	if err := listeners.stop(); err != nil {
		return 0, window{}, err
	}
	return n, w, nil
}
