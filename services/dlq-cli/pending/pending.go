package pending

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/buildinfo"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/opsserver"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/resolution"
)

// Kind is what the gauge's labels say about a dead letter.
type Kind struct {
	// Reason is x-dlq-reason ("unknown" when the header is missing).
	Reason string
	// Class is x-error-class, or "malformed" when the contract headers
	// cannot be read ("unknown" when the class header is missing).
	Class string
}

func kindOf(l deadletter.Letter) Kind {
	k := Kind{Reason: cmp.Or(string(l.Meta.DLQReason), "unknown"), Class: cmp.Or(string(l.Meta.ErrorClass), "unknown")}
	if l.Malformed != "" {
		k.Class = "malformed"
	}
	return k
}

// expected are exported as zeros before any letter of their kind exists,
// so that an increase from nothing shows in delta() and rate().
var expected = func() []Kind {
	var out []Kind
	for _, r := range []retrymeta.Reason{retrymeta.MaxAttempts, retrymeta.PermanentError, retrymeta.Poison} {
		for _, c := range []failure.Class{failure.Transient, failure.Permanent} {
			out = append(out, Kind{Reason: string(r), Class: string(c)})
		}
	}
	return out
}()

var pendingDesc = prometheus.NewDesc("dlq_dead_letters_pending",
	"Dead letters neither redriven nor resolved (no entry in the resolution log, offset not below the dlq-redrive group's), by x-dlq-reason and x-error-class.",
	[]string{"reason", "class"}, nil)

// Counter counts the pending dead letters of one topic. Update is not safe
// for concurrent use; Collect is, and reports the last Update's counts.
type Counter struct {
	store resolution.Store

	state   *resolution.State
	next    map[int]int64
	letters map[deadletter.Position]held

	mu      sync.Mutex
	counts  map[Kind]int
	updated bool
}

// NewCounter returns a counter of the dead letters of store.Topic, read
// through store.Log, with the resolutions of store.
func NewCounter(store resolution.Store) *Counter {
	return &Counter{store: store, next: map[int]int64{}, letters: map[deadletter.Position]held{}}
}

// held is what the counter keeps of a pending letter.
type held struct {
	kind     Kind
	identity string // deadletter.Letter.Identity: a copy's resolution resolves it
}

// Update reads what was appended to the dead-letter topic and to the
// resolution log since the last Update, and recounts.
func (c *Counter) Update(ctx context.Context) error {
	parts, err := c.store.Log.Partitions(ctx, c.store.Topic)
	if err != nil {
		return err
	}
	ids := make([]int, len(parts))
	for i, p := range parts {
		ids[i] = p.ID
	}
	if c.state == nil {
		if c.state, err = c.store.Load(ctx, ids); err != nil {
			return err
		}
	} else if err := c.store.Refresh(ctx, c.state); err != nil {
		return err
	}
	// The group offset can move without a log entry (Kafka's own tools);
	// read it every round rather than only at Load.
	group, err := c.store.Log.GroupOffsets(ctx, c.store.Group, c.store.Topic, ids)
	if err != nil {
		return err
	}
	resolved := func(pos deadletter.Position, identity string) bool {
		if g, ok := group[pos.Partition]; ok && pos.Offset < g {
			return true
		}
		return c.state.ResolvedAt(pos, identity)
	}
	first := map[int]int64{}
	for _, p := range parts {
		first[p.ID] = p.First
		from := max(c.next[p.ID], p.First)
		if from >= p.End {
			continue
		}
		err := c.store.Log.Scan(ctx, c.store.Topic, p.ID, from, p.End, func(m kafka.Message) error {
			l := deadletter.FromMessage(m)
			if id := l.Identity(); !resolved(l.Position(), id) {
				c.letters[l.Position()] = held{kind: kindOf(l), identity: id}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("read %s partition %d: %w", c.store.Topic, p.ID, err)
		}
		c.next[p.ID] = p.End
	}
	counts := map[Kind]int{}
	for pos, h := range c.letters {
		// Resolved since (this copy or another), or deleted by the topic's
		// retention.
		if f, ok := first[pos.Partition]; !ok || pos.Offset < f || resolved(pos, h.identity) {
			delete(c.letters, pos)
			continue
		}
		counts[h.kind]++
	}
	c.mu.Lock()
	c.counts, c.updated = counts, true
	c.mu.Unlock()
	return nil
}

// Counts returns the last Update's counts; false before the first.
func (c *Counter) Counts() (map[Kind]int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[Kind]int, len(c.counts))
	for k, n := range c.counts {
		out[k] = n
	}
	return out, c.updated
}

// Describe implements prometheus.Collector.
func (c *Counter) Describe(ch chan<- *prometheus.Desc) { ch <- pendingDesc }

// Collect implements prometheus.Collector. Before the first Update it
// exports nothing: a zero would claim that nothing is pending.
func (c *Counter) Collect(ch chan<- prometheus.Metric) {
	counts, ok := c.Counts()
	if !ok {
		return
	}
	for _, k := range expected {
		if _, seen := counts[k]; !seen {
			counts[k] = 0
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(n), k.Reason, k.Class)
	}
}

// Config configures Serve.
type Config struct {
	// Store is the dead-letter topic, its resolution log and group.
	Store resolution.Store
	// Addr is where /metrics, /healthz and /readyz listen, e.g. ":9464".
	Addr string
	// Every is the time between two counts.
	Every time.Duration
	// Log receives a failed count (the next round tries again).
	Log *slog.Logger
}

// Serve counts every cfg.Every until ctx is done and serves the gauge, with
// dlq_build_info and the Go runtime's metrics, on cfg.Addr. It returns the
// address it listens on and the function that stops both and waits for
// them.
func Serve(ctx context.Context, cfg Config) (addr string, stop func(), err error) {
	if cfg.Every <= 0 {
		return "", nil, errors.New("pending: Every must be positive")
	}
	log := cmp.Or(cfg.Log, slog.New(slog.DiscardHandler))
	counter := NewCounter(cfg.Store)
	reg := prometheus.NewRegistry()
	build := buildinfo.Gauge(prometheus.GaugeOpts{Namespace: "dlq", Name: "build_info",
		Help: "Always 1; the labels say what runs: version, revision, goversion."}, buildinfo.Read())
	for _, c := range []prometheus.Collector{counter, build} {
		if err := reg.Register(c); err != nil {
			return "", nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	srv := opsserver.New(opsserver.Config{
		Addr:           cfg.Addr,
		Log:            log.With("component", "metrics"),
		Registry:       reg,
		RuntimeMetrics: true,
		Checks:         map[string]opsserver.Check{"kafka": cfg.Store.Log.Ping},
	})
	if err := srv.Start(ctx); err != nil {
		return "", nil, fmt.Errorf("metrics server: %w", err)
	}
	log.Info("serving metrics", "addr", srv.Addr())
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(cfg.Every)
		defer t.Stop()
		for {
			if err := counter.Update(ctx); err != nil && ctx.Err() == nil {
				log.Error("counting pending dead letters failed; retrying", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return srv.Addr(), func() {
		cancel()
		<-done
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("metrics server shutdown", "err", err)
		}
	}, nil
}
