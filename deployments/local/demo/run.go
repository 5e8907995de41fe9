package demo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"

	"github.com/reeferdlq/reefer-dlq/deployments/local/ordergen"
	"github.com/reeferdlq/reefer-dlq/deployments/local/screen"
	"github.com/reeferdlq/reefer-dlq/deployments/local/timeline"
	"github.com/reeferdlq/reefer-dlq/deployments/local/tracker"
)

// Result is what a run found. The invariant holds when OK says so.
type Result struct {
	// Sent is every order the demo produced, Expected their outcomes.
	Sent     int
	Expected map[ordergen.Outcome]int
	// Allocated, Rejected and DeadLettered are the terminal states the
	// topics show; Lost the orders in none of them.
	Allocated, Rejected, DeadLettered, Lost int
	// Redriven is the number of orders dlq sent back.
	Redriven int
	// Checks are the invariant's checks, in the order printed.
	Checks []Check
	// ChartPath is the timeline PNG ("" when it could not be drawn).
	ChartPath string
	Elapsed   time.Duration
}

// OK reports whether every check of the invariant passed.
func (r Result) OK() bool {
	if len(r.Checks) == 0 {
		return false
	}
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// Check is one verified property.
type Check struct {
	Name   string
	OK     bool
	Detail string
}

// ErrInvariant is returned by Run when the scenario ran to the end but an
// invariant check failed; the Result says which.
var ErrInvariant = errors.New("the invariant does not hold")

// demo is one run: its configuration, what it started and what it saw.
type demo struct {
	cfg    Config
	tm     timing
	scr    *screen.Screen
	st     *stack
	tr     *tracker.Tracker
	gen    *ordergen.Generator
	writer *kafka.Writer

	ordersMu sync.RWMutex // orders is read by the tracker's goroutines
	orders   map[string]ordergen.Order
	order    []string // ids in the order sent

	phases  []timeline.Phase
	started time.Time
	since   time.Time // when the first order was sent, for dlq --since
	shared  bool      // a broker or database that may hold earlier runs
}

// Run plays the scenario and checks the invariant. It returns the Result
// with ErrInvariant when a check failed, and another error when the demo
// could not run at all (a service did not start, the broker is
// unreachable). With KeepRunning it waits for ctx to end before stopping.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	d := &demo{
		cfg:     cfg,
		tm:      cfg.timing(),
		scr:     screen.New(cfg.Out, cfg.Live, 2*time.Second),
		orders:  map[string]ordergen.Order{},
		started: time.Now(),
		shared:  len(cfg.Brokers) > 0 || cfg.PostgresURL != "",
	}
	run := ""
	if d.shared {
		// Earlier runs' orders live on in a shared broker or database:
		// this run's ids must differ from theirs.
		run = fmt.Sprintf("r%x", d.started.Unix()%0xfffff)
	}
	d.gen = ordergen.New(cfg.Seed, run, d.started)

	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = d.tm.settle * 4
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	res, err := d.play(sctx)
	if err == nil && cfg.KeepRunning {
		d.keepRunning(ctx)
	}
	if cerr := d.close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	res.Elapsed = time.Since(d.started)
	if err == nil && !res.OK() {
		err = ErrInvariant
	}
	return res, err
}

func (d *demo) play(ctx context.Context) (Result, error) {
	d.title()
	var err error
	d.st, err = startStack(ctx, d.cfg, d.tm)
	if err != nil {
		return Result{}, err
	}
	d.describeStack()

	d.tr, err = tracker.Start(ctx, tracker.Config{
		Kafka: d.st.kafka,
		Topics: tracker.Topics{
			Orders: topicOrders, Containers: topicContainers, Retry: topicRetry, DeadLetter: topicDLQ,
		},
		Track:       func(id string) bool { _, ok := d.lookup(id); return ok },
		SampleEvery: d.tm.sample,
		Log:         d.st.log.With("component", "tracker"),
	})
	if err != nil {
		return Result{}, err
	}
	d.writer, err = d.st.kafka.NewWriter(topicOrders)
	if err != nil {
		return Result{}, fmt.Errorf("orders writer: %w", err)
	}

	stopStatus := d.showStatus()
	err = d.scenario(ctx)
	stopStatus()
	if err != nil {
		return Result{}, err
	}
	return d.conclude(ctx)
}

// lookup tells the tracker whether an order belongs to this run. An order
// is remembered before it is sent, so the tracker never sees an unknown one.
func (d *demo) lookup(id string) (ordergen.Order, bool) {
	d.ordersMu.RLock()
	defer d.ordersMu.RUnlock()
	o, ok := d.orders[id]
	return o, ok
}

func (d *demo) close() error {
	var errs []error
	if d.writer != nil {
		errs = append(errs, d.writer.Close())
	}
	if d.st != nil {
		// The services stop first: they commit their last offsets while
		// the broker still runs. Then the tracker, then the rest.
		errs = append(errs, d.st.stopServices())
	}
	if d.tr != nil {
		d.tr.Close()
	}
	if d.st != nil {
		errs = append(errs, d.st.close(d.cfg.KeepRunning))
	}
	return errors.Join(errs...)
}

// send produces orders to the orders topic at the demo's pace, in small
// batches, and returns their ids.
func (d *demo) send(ctx context.Context, orders []ordergen.Order) ([]string, error) {
	const batch = 5
	tick := time.NewTicker(d.tm.orderEvery * batch)
	defer tick.Stop()
	ids := make([]string, 0, len(orders))
	if d.since.IsZero() {
		d.since = time.Now()
	}
	for start := 0; start < len(orders); start += batch {
		chunk := orders[start:min(start+batch, len(orders))]
		msgs := make([]kafka.Message, 0, len(chunk))
		for _, o := range chunk {
			env, err := events.New("/reefer-dlq/demo/order-service", events.TypeOrderCreated, o.OrderID, o.OrderCreated, time.Now())
			if err != nil {
				return nil, fmt.Errorf("order %s: %w", o.OrderID, err)
			}
			value, err := events.Encode(env)
			if err != nil {
				return nil, fmt.Errorf("order %s: %w", o.OrderID, err)
			}
			msgs = append(msgs, kafka.Message{Key: []byte(o.OrderID), Value: value})
			d.remember(o)
			ids = append(ids, o.OrderID)
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := d.writer.WriteMessages(wctx, msgs...)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("send orders: %w", err)
		}
		if err := d.st.failed(); err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
	return ids, nil
}

func (d *demo) remember(o ordergen.Order) {
	d.ordersMu.Lock()
	defer d.ordersMu.Unlock()
	d.orders[o.OrderID] = o
	d.order = append(d.order, o.OrderID)
}

// waitFor waits until cond holds for every id, or the settle bound
// passes, or a service stops. The error names the orders still waiting.
func (d *demo) waitFor(ctx context.Context, what string, ids []string, cond func(tracker.Order) bool) error {
	wctx, cancel := context.WithTimeoutCause(ctx, d.tm.settle, fmt.Errorf("%s: still waiting after %s", what, d.tm.settle))
	defer cancel()
	failed := make(chan error, 1)
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
				if err := d.st.failed(); err != nil {
					failed <- err
					cancel()
					return
				}
			}
		}
	}()
	var pending []string
	err := d.tr.WaitUntil(wctx, func(v tracker.View) bool {
		pending = pending[:0]
		for _, id := range ids {
			o, ok := v.Order(id)
			if !ok || !cond(o) {
				pending = append(pending, id)
			}
		}
		return len(pending) == 0
	})
	if err == nil {
		return nil
	}
	select {
	case ferr := <-failed:
		return ferr
	default:
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return fmt.Errorf("%w: %s", context.Cause(wctx), d.describePending(pending))
}

// describePending says where the first few waiting orders are.
func (d *demo) describePending(ids []string) string {
	rep := d.tr.Report()
	var parts []string
	for _, id := range ids[:min(5, len(ids))] {
		o, ok := rep.Orders[id]
		if !ok {
			parts = append(parts, id+" never seen on "+topicOrders)
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s (attempt %d)", id, o.Stage, o.Attempt))
	}
	more := ""
	if len(ids) > 5 {
		more = fmt.Sprintf(" and %d more", len(ids)-5)
	}
	return fmt.Sprintf("%d orders not there yet: %s%s", len(ids), strings.Join(parts, ", "), more)
}

// settled: nothing more will happen to the order unless a person acts.
func settled(o tracker.Order) bool {
	return o.Stage.Terminal() || (o.Stage == tracker.DeadLettered && o.ErrorClass == "permanent")
}

// concluded: the order left the retry machinery (terminal or dead-lettered).
func concluded(o tracker.Order) bool {
	return o.Stage.Terminal() || o.Stage == tracker.DeadLettered
}

// phase marks the start of a phase on the timeline; end closes it.
func (d *demo) phase(label string) {
	at := time.Since(d.tr.Started())
	if n := len(d.phases); n > 0 && d.phases[n-1].End == 0 {
		d.phases[n-1].End = at
	}
	d.phases = append(d.phases, timeline.Phase{Label: label, Start: at})
}

func (d *demo) endPhases() {
	if n := len(d.phases); n > 0 && d.phases[n-1].End == 0 {
		d.phases[n-1].End = time.Since(d.tr.Started())
	}
}

// chartPath is where the timeline goes.
func (d *demo) chartPath() string {
	if d.cfg.ChartPath != "" {
		return d.cfg.ChartPath
	}
	return filepath.Join(os.TempDir(), "reefer-dlq-demo-timeline.png")
}
