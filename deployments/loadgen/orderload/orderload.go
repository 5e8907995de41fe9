package orderload

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
)

// Config describes one run.
type Config struct {
	// Kafka is the cluster to write to (brokers, TLS, SASL).
	Kafka kafkaclient.Config
	// Topic is the orders topic.
	Topic string
	// Orders is how many records to send, poison records included.
	Orders int
	// Rate is the number of records per second; 0 sends as fast as the
	// broker takes them.
	Rate float64
	// RunID goes into every order id (O-<run>-000001) so that the orders
	// of two runs on one stack are different orders.
	RunID string
	// Seed makes the orders reproducible.
	Seed uint64
	// Oversize is the share of orders, in [0, 1], too big for any reefer:
	// they end as OrderRejected.
	Oversize float64
	// Poison is the share of records, in [0, 1], that are not events at
	// all: reefer-manager dead-letters them with reason poison.
	Poison float64
	// Source is the CloudEvents source of the events.
	Source string
	// Progress, when set, is called about once a second and at the end.
	Progress func(Report)
}

// DefaultSource is the CloudEvents source when Config.Source is empty.
const DefaultSource = "/reefer-dlq/loadgen"

// OversizeQuantity is the quantity of an oversize order: far above the
// biggest reefer of any fleet the suite seeds (100).
const OversizeQuantity = 10_000

// maxBatch bounds the records written by one call, so that a run at an
// unlimited rate still reports progress and notices cancellation.
const maxBatch = 1000

// Validate reports every invalid setting.
func (c Config) Validate() error {
	var errs []error
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := kafkaclient.CheckTopicName(c.Topic); err != nil {
		errs = append(errs, fmt.Errorf("topic: %w", err))
	}
	if c.Orders < 1 {
		errs = append(errs, fmt.Errorf("orders %d: want a whole number >= 1", c.Orders))
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		errs = append(errs, fmt.Errorf("rate %v: want orders per second >= 0 (0: as fast as possible)", c.Rate))
	}
	for _, s := range []struct {
		name  string
		value float64
	}{{"oversize", c.Oversize}, {"poison", c.Poison}} {
		if !(s.value >= 0 && s.value <= 1) {
			errs = append(errs, fmt.Errorf("%s %v: want a share between 0 and 1", s.name, s.value))
		}
	}
	if c.Oversize+c.Poison > 1 {
		errs = append(errs, fmt.Errorf("oversize %v + poison %v: the shares add up to more than 1", c.Oversize, c.Poison))
	}
	return errors.Join(errs...)
}

// Report counts what a run sent.
type Report struct {
	// Sent counts the records the broker acknowledged; Oversize and
	// Poison are among them.
	Sent, Oversize, Poison int
	// Elapsed is the time since the first record was due.
	Elapsed time.Duration
}

// Rate is the achieved rate in records per second.
func (r Report) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Sent) / r.Elapsed.Seconds()
}

// Due returns how many of total records are due elapsed after the start at
// rate records per second: the first at once, then one every 1/rate
// seconds. A rate of 0 makes them all due at once.
func Due(elapsed time.Duration, rate float64, total int) int {
	switch {
	case rate == 0:
		return total
	case elapsed < 0:
		return 0
	}
	n := math.Floor(elapsed.Seconds()*rate) + 1
	if n >= float64(total) {
		return total
	}
	return int(n)
}

// Run sends cfg.Orders records at cfg.Rate and returns what it sent. It
// stops early when ctx ends (returning ctx's error) or a write fails; the
// Report then counts what was acknowledged before.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if cfg.Source == "" {
		cfg.Source = DefaultSource
	}
	if err := cfg.Validate(); err != nil {
		return Report{}, fmt.Errorf("orderload: %w", err)
	}
	w, err := cfg.Kafka.NewWriter(cfg.Topic)
	if err != nil {
		return Report{}, fmt.Errorf("orderload: %w", err)
	}
	w.BatchSize = maxBatch

	gen := NewGenerator(cfg)
	var rep Report
	start := time.Now()
	lastProgress := start
	runErr := func() error {
		for rep.Sent < cfg.Orders {
			due := Due(time.Since(start), cfg.Rate, cfg.Orders)
			if due == rep.Sent {
				// Nothing due: wait for the next record's time.
				next := start.Add(time.Duration(float64(rep.Sent) / cfg.Rate * float64(time.Second)))
				timer := time.NewTimer(time.Until(next))
				select {
				case <-ctx.Done():
					timer.Stop()
					return ctx.Err()
				case <-timer.C:
				}
				continue
			}
			n := min(due-rep.Sent, maxBatch)
			msgs := make([]kafka.Message, 0, n)
			var oversize, poison int
			for range n {
				r, err := gen.Next(time.Now())
				if err != nil {
					return err
				}
				msgs = append(msgs, r.Message)
				switch r.Kind {
				case Oversize:
					oversize++
				case Poison:
					poison++
				}
			}
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				return fmt.Errorf("write %d records to %s: %w", len(msgs), cfg.Topic, err)
			}
			rep.Sent += n
			rep.Oversize += oversize
			rep.Poison += poison
			rep.Elapsed = time.Since(start)
			if cfg.Progress != nil && time.Since(lastProgress) >= time.Second {
				lastProgress = time.Now()
				cfg.Progress(rep)
			}
		}
		return nil
	}()
	rep.Elapsed = time.Since(start)
	if err := w.Close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("close writer: %w", err)
	}
	if cfg.Progress != nil {
		cfg.Progress(rep)
	}
	if runErr != nil {
		return rep, fmt.Errorf("orderload: after %d of %d records: %w", rep.Sent, cfg.Orders, runErr)
	}
	return rep, nil
}

// Kind is what a generated record is.
type Kind int

// The kinds of records a run sends.
const (
	// Ordinary: an order a reefer of the fleet can carry.
	Ordinary Kind = iota
	// Oversize: an order no reefer can carry (OrderRejected).
	Oversize
	// Poison: a record that is no event.
	Poison
)

// Record is one generated record.
type Record struct {
	Kind    Kind
	OrderID string
	Message kafka.Message
}

// Generator makes the records of a run, deterministically from the seed
// and run id. It is not safe for concurrent use.
type Generator struct {
	rng      *rand.Rand
	runID    string
	source   string
	oversize float64
	poison   float64
	n        int
}

var (
	products = []string{"P-VACCINES", "P-BANANAS", "P-SALMON", "P-FLOWERS", "P-INSULIN", "P-AVOCADOS", "P-CHEESE", "P-BERRIES"}
	cities   = []string{"Rotterdam", "Singapore", "Shanghai", "Santos", "Oakland", "Hamburg", "Durban", "Valparaiso", "Busan", "Antwerp"}
)

// NewGenerator returns the generator of cfg's records (Seed, RunID,
// Oversize, Poison, Source).
func NewGenerator(cfg Config) *Generator {
	source := cfg.Source
	if source == "" {
		source = DefaultSource
	}
	return &Generator{
		// The second word only has to differ from the seed.
		rng:      rand.New(rand.NewPCG(cfg.Seed, 0x10adc0de)),
		runID:    cfg.RunID,
		source:   source,
		oversize: cfg.Oversize,
		poison:   cfg.Poison,
	}
}

// Next returns the next record, its event stamped at now.
func (g *Generator) Next(now time.Time) (Record, error) {
	g.n++
	id := fmt.Sprintf("O-%06d", g.n)
	if g.runID != "" {
		id = fmt.Sprintf("O-%s-%06d", g.runID, g.n)
	}
	draw := g.rng.Float64()
	if draw < g.poison {
		// Valid JSON, so that the record is poison for the right reason:
		// it is no CloudEvent.
		value := fmt.Sprintf(`{"poison":true,"orderID":%q}`, id)
		return Record{Kind: Poison, OrderID: id, Message: kafka.Message{Key: []byte(id), Value: []byte(value)}}, nil
	}
	from := g.rng.IntN(len(cities))
	to := (from + 1 + g.rng.IntN(len(cities)-1)) % len(cities) // never the same city
	order := events.OrderCreated{
		OrderID:              id,
		ProductID:            products[g.rng.IntN(len(products))],
		CustomerID:           fmt.Sprintf("CUST-%03d", 1+g.rng.IntN(100)),
		Quantity:             1 + g.rng.IntN(20),
		PickupCity:           cities[from],
		DestinationCity:      cities[to],
		ExpectedDeliveryDate: now.UTC().AddDate(0, 0, 7+g.rng.IntN(35)).Format(time.DateOnly),
	}
	kind := Ordinary
	if draw < g.poison+g.oversize {
		kind, order.Quantity = Oversize, OversizeQuantity
	}
	env, err := events.New(g.source, events.TypeOrderCreated, id, order, now)
	if err != nil {
		return Record{}, fmt.Errorf("order %s: %w", id, err)
	}
	value, err := events.Encode(env)
	if err != nil {
		return Record{}, fmt.Errorf("order %s: %w", id, err)
	}
	return Record{Kind: kind, OrderID: id, Message: kafka.Message{Key: []byte(id), Value: value}}, nil
}
