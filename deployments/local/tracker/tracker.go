package tracker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
)

// Topics names the topics the tracker reads.
type Topics struct {
	Orders, Containers, Retry, DeadLetter string
}

// Config describes what to read and how often to sample.
type Config struct {
	Kafka  kafkaclient.Config
	Topics Topics
	// Track says which order ids belong to this run; nil tracks every one.
	// Records of other orders (a shared broker's history) are ignored.
	Track func(orderID string) bool
	// SampleEvery is the interval of the time series; 0 means 100ms.
	SampleEvery time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives read errors; nil discards them.
	Log *slog.Logger
}

// Tracker follows the orders. Create it with Start, stop it with Close.
type Tracker struct {
	cfg    Config
	cancel context.CancelFunc
	wg     sync.WaitGroup
	start  time.Time

	mu         sync.Mutex
	orders     map[string]*Order
	containers map[string]map[string]bool // container id -> order ids it was assigned to
	eventIDs   map[string]bool
	duplicates int
	unreadable []string
	delays     map[delayKey]*DelayStats
	causes     map[string]int // failures by cause, from the retry records
	// lastFailure is the latest x-retry-last-failure-at read.
	lastFailure time.Time
	samples     []Sample
	changed     chan struct{}
}

// Start finds the end of every partition of the topics and starts reading
// from there. The tracker runs until Close.
func Start(ctx context.Context, cfg Config) (*Tracker, error) {
	if cfg.SampleEvery <= 0 {
		cfg.SampleEvery = 100 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	topics := []string{cfg.Topics.Orders, cfg.Topics.Containers, cfg.Topics.Retry, cfg.Topics.DeadLetter}
	ends, err := endOffsets(ctx, cfg.Kafka, topics)
	if err != nil {
		return nil, err
	}
	readers := make([]*kafka.Reader, 0, len(ends))
	for _, e := range ends {
		r, err := cfg.Kafka.NewReader(kafka.ReaderConfig{Topic: e.topic, Partition: e.partition})
		if err == nil {
			err = r.SetOffset(e.offset)
		}
		if err != nil {
			for _, open := range readers {
				open.Close()
			}
			return nil, fmt.Errorf("tracker: read %s/%d: %w", e.topic, e.partition, err)
		}
		readers = append(readers, r)
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t := &Tracker{
		cfg:        cfg,
		cancel:     cancel,
		start:      cfg.Now(),
		orders:     map[string]*Order{},
		containers: map[string]map[string]bool{},
		eventIDs:   map[string]bool{},
		delays:     map[delayKey]*DelayStats{},
		causes:     map[string]int{},
		changed:    make(chan struct{}),
	}
	for _, r := range readers {
		t.wg.Go(func() {
			defer r.Close() // after the last ReadMessage returned: no group, nothing to commit
			t.read(runCtx, r)
		})
	}
	t.wg.Go(func() { t.sample(runCtx) })
	return t, nil
}

// Close stops reading and sampling, and waits for every goroutine.
func (t *Tracker) Close() {
	t.cancel()
	t.wg.Wait()
}

// Started is when the tracker started: time zero of the samples.
func (t *Tracker) Started() time.Time { return t.start }

type partitionEnd struct {
	topic     string
	partition int
	offset    int64
}

// endOffsets returns the next offset of every partition of topics.
func endOffsets(ctx context.Context, kc kafkaclient.Config, topics []string) ([]partitionEnd, error) {
	transport, err := kc.Transport()
	if err != nil {
		return nil, fmt.Errorf("tracker: %w", err)
	}
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(kc.Brokers...), Transport: transport}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("tracker: read metadata: %w", err)
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, tp := range md.Topics {
		if tp.Error != nil {
			return nil, fmt.Errorf("tracker: topic %s: %w", tp.Name, tp.Error)
		}
		for _, p := range tp.Partitions {
			req.Topics[tp.Name] = append(req.Topics[tp.Name], kafka.LastOffsetOf(p.ID))
		}
	}
	for _, name := range topics {
		if len(req.Topics[name]) == 0 {
			return nil, fmt.Errorf("tracker: topic %s has no partitions (does it exist?)", name)
		}
	}
	res, err := client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("tracker: list offsets: %w", err)
	}
	var out []partitionEnd
	for name, parts := range res.Topics {
		for _, p := range parts {
			if p.Error != nil {
				return nil, fmt.Errorf("tracker: offsets of %s/%d: %w", name, p.Partition, p.Error)
			}
			out = append(out, partitionEnd{topic: name, partition: p.Partition, offset: p.LastOffset})
		}
	}
	slices.SortFunc(out, func(a, b partitionEnd) int {
		if a.topic != b.topic {
			return compareStrings(a.topic, b.topic)
		}
		return a.partition - b.partition
	})
	return out, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (t *Tracker) read(ctx context.Context, r *kafka.Reader) {
	for {
		msg, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() == nil {
				t.cfg.Log.Warn("tracker: read failed", "topic", r.Config().Topic, "partition", r.Config().Partition, "error", err)
			}
			if ctx.Err() != nil || errors.Is(err, context.Canceled) {
				return
			}
			// A broker hiccup: kafka-go reconnects on the next call.
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		t.observe(msg)
	}
}

func (t *Tracker) sample(ctx context.Context) {
	tick := time.NewTicker(t.cfg.SampleEvery)
	defer tick.Stop()
	for {
		t.mu.Lock()
		t.samples = append(t.samples, Sample{At: t.cfg.Now().Sub(t.start), Counts: t.countsLocked()})
		t.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// observe folds one record into the orders' states.
func (t *Tracker) observe(msg kafka.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch msg.Topic {
	case t.cfg.Topics.Orders, t.cfg.Topics.Containers:
		t.observeEvent(msg)
	case t.cfg.Topics.Retry, t.cfg.Topics.DeadLetter:
		t.observeHop(msg)
	}
	close(t.changed)
	t.changed = make(chan struct{})
}

func (t *Tracker) observeEvent(msg kafka.Message) {
	env, err := events.Decode(msg.Value)
	if err != nil {
		t.unreadableLocked(msg, err)
		return
	}
	if !t.tracked(env.Subject) {
		return
	}
	if env.Type == events.TypeOrderCreated {
		// dlq redrive --to original writes the order again, same event id,
		// with x-dlq-redrive-count: a redrive, not a duplicate.
		if v, ok := retrymeta.Get(msg.Headers, retrymeta.HeaderRedriveCount); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				o := t.order(env.Subject, t.cfg.Now())
				o.Redrives = max(o.Redrives, n)
			}
		}
	}
	if t.eventIDs[env.ID] {
		// At-least-once delivery: a redelivered order emits the same event
		// (same id) again. Harmless, and counted to show it.
		t.duplicates++
		return
	}
	t.eventIDs[env.ID] = true
	at := t.cfg.Now()
	switch env.Type {
	case events.TypeOrderCreated:
		t.order(env.Subject, at).Created = true
	case events.TypeContainerAllocated:
		d, err := events.DecodeData[events.ContainerAllocated](env)
		if err != nil {
			t.unreadableLocked(msg, err)
			return
		}
		o := t.order(d.OrderID, at)
		o.conclude(Allocated, at)
		if !slices.Contains(o.Containers, d.ContainerID) {
			o.Containers = append(o.Containers, d.ContainerID)
		}
	case events.TypeOrderRejected:
		d, err := events.DecodeData[events.OrderRejected](env)
		if err != nil {
			t.unreadableLocked(msg, err)
			return
		}
		o := t.order(d.OrderID, at)
		o.conclude(Rejected, at)
		o.RejectReason = d.Reason
	case events.TypeContainerAssignedToOrder:
		d, err := events.DecodeData[events.ContainerAssignedToOrder](env)
		if err != nil {
			t.unreadableLocked(msg, err)
			return
		}
		if t.containers[d.ContainerID] == nil {
			t.containers[d.ContainerID] = map[string]bool{}
		}
		t.containers[d.ContainerID][d.OrderID] = true
		o := t.order(d.OrderID, at)
		if !slices.Contains(o.Assigned, d.ContainerID) {
			o.Assigned = append(o.Assigned, d.ContainerID)
		}
	}
}

func (t *Tracker) observeHop(msg kafka.Message) {
	id := string(msg.Key)
	if !t.tracked(id) {
		return
	}
	meta, err := retrymeta.Parse(msg.Headers)
	if err != nil {
		t.unreadableLocked(msg, err)
		return
	}
	at := t.cfg.Now()
	o := t.order(id, at)
	h := hop{redrives: meta.RedriveCount, attempt: meta.Attempt, kind: kindRetry}
	if msg.Topic == t.cfg.Topics.DeadLetter {
		h.kind = kindDead
		o.DeadLetters++
	} else {
		o.RetryRecords++
		if meta.Attempt > 0 {
			cause := Cause(meta.ErrorMessage)
			t.causes[cause]++
			if !meta.DueAt.IsZero() && !meta.LastFailureAt.IsZero() {
				t.delay(delayKey{meta.Attempt, cause}, meta.DueAt.Sub(meta.LastFailureAt))
			}
		}
	}
	if meta.LastFailureAt.After(t.lastFailure) {
		t.lastFailure = meta.LastFailureAt
	}
	o.MaxAttempt = max(o.MaxAttempt, meta.Attempt)
	o.Redrives = max(o.Redrives, meta.RedriveCount)
	if !h.after(o.hop) {
		return // an older hop read late
	}
	o.hop = h
	o.Attempt = meta.Attempt
	if h.kind == kindDead {
		o.DLQReason = string(meta.DLQReason)
		o.ErrorClass = string(meta.ErrorClass)
		o.LastError = meta.ErrorMessage
	}
	if o.Stage.Terminal() {
		return
	}
	if h.kind == kindDead {
		o.Stage = DeadLettered
	} else {
		o.Stage = Retrying
	}
	o.Changed = at
}

func (t *Tracker) tracked(orderID string) bool {
	return orderID != "" && (t.cfg.Track == nil || t.cfg.Track(orderID))
}

func (t *Tracker) order(id string, at time.Time) *Order {
	o, ok := t.orders[id]
	if !ok {
		o = &Order{ID: id, Stage: Created, FirstSeen: at, Changed: at}
		t.orders[id] = o
	}
	return o
}

func (t *Tracker) unreadableLocked(msg kafka.Message, err error) {
	t.unreadable = append(t.unreadable, fmt.Sprintf("%s/%d@%d: %v", msg.Topic, msg.Partition, msg.Offset, err))
}

type delayKey struct {
	attempt int
	cause   string
}

func (t *Tracker) delay(k delayKey, d time.Duration) {
	s := t.delays[k]
	if s == nil {
		s = &DelayStats{Attempt: k.attempt, Cause: k.cause, Min: d, Max: d}
		t.delays[k] = s
	}
	s.Count++
	s.Min, s.Max = min(s.Min, d), max(s.Max, d)
	s.Sum += d
}

// WaitUntil blocks until cond holds for the tracker's view, or ctx ends.
// cond runs under the tracker's lock after every record read: keep it quick.
func (t *Tracker) WaitUntil(ctx context.Context, cond func(View) bool) error {
	for {
		t.mu.Lock()
		ok := cond(View{t})
		ch := t.changed
		t.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Counts returns the current counts.
func (t *Tracker) Counts() Counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.countsLocked()
}

// Report returns everything the tracker knows, copied.
func (t *Tracker) Report() Report {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := Report{
		Counts:      t.countsLocked(),
		Orders:      make(map[string]Order, len(t.orders)),
		Containers:  make(map[string][]string, len(t.containers)),
		Duplicates:  t.duplicates,
		Unreadable:  slices.Clone(t.unreadable),
		Samples:     slices.Clone(t.samples),
		LastFailure: t.lastFailure,
	}
	for id, o := range t.orders {
		c := *o
		c.Containers = slices.Clone(o.Containers)
		c.Assigned = slices.Clone(o.Assigned)
		r.Orders[id] = c
	}
	for c, orders := range t.containers {
		for id := range orders {
			r.Containers[c] = append(r.Containers[c], id)
		}
		slices.Sort(r.Containers[c])
	}
	for _, d := range t.delays {
		r.Delays = append(r.Delays, *d)
	}
	slices.SortFunc(r.Delays, func(a, b DelayStats) int {
		if a.Cause != b.Cause {
			return strings.Compare(a.Cause, b.Cause)
		}
		return a.Attempt - b.Attempt
	})
	r.Causes = maps.Clone(t.causes)
	return r
}

func (t *Tracker) countsLocked() Counts {
	var c Counts
	for _, o := range t.orders {
		c.add(o)
	}
	return c
}

// View is what a WaitUntil condition sees.
type View struct{ t *Tracker }

// Counts returns the current counts.
func (v View) Counts() Counts { return v.t.countsLocked() }

// Order returns the order's state and whether the tracker has seen it.
func (v View) Order(id string) (Order, bool) {
	o, ok := v.t.orders[id]
	if !ok {
		return Order{}, false
	}
	return *o, true
}
