package dlq_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/dlq"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/kafkalog"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/render"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/resolution"
)

// The contract's topics, as the tests create them.
const (
	dlqTopic   = "order-dead-letter"
	retryTopic = "order-retries"
	ordersTop  = "orders"
)

// t0 is the fixed instant the seeded dead letters are dated from, so that
// golden files do not change from run to run.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fixedNow is the clock of the command in tests: two hours after t0.
func fixedNow() time.Time { return t0.Add(2 * time.Hour) }

// cluster is one embedded broker with the contract's topics.
type cluster struct {
	t     testing.TB
	addr  string
	log   *kafkalog.Log
	brk   *devbroker.Broker
	extra map[string]string // environment added to every run
}

func newCluster(t testing.TB) *cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // generous: a loaded -race run
	defer cancel()
	b, err := devbroker.Start(ctx, devbroker.Config{Topics: map[string]int{dlqTopic: 3, retryTopic: 6, ordersTop: 6}})
	if err != nil {
		t.Fatalf("start devbroker: %v", err)
	}
	l, err := kafkalog.Open(kafkaclient.Config{Brokers: []string{b.Addr()}, ClientID: "dlq-test"})
	if err != nil {
		t.Fatalf("open log: %v", err)
	}
	t.Cleanup(func() {
		l.Close()
		b.Close()
	})
	return &cluster{t: t, addr: b.Addr(), log: l, brk: b, extra: map[string]string{}}
}

// letter describes one dead letter to seed.
type letter struct {
	partition int
	orderID   string
	reason    retrymeta.Reason
	class     failure.Class
	attempts  int
	message   string
	redrives  int
	at        time.Time // dead-lettered at; zero means t0
	quantity  int       // OrderCreated quantity; 0 means 2
	value     []byte    // overrides the OrderCreated value
	headers   []kafka.Header
}

// orderValue encodes an OrderCreated event. A quantity below 1, which
// events.New refuses, is written into the encoded bytes: the kind of record
// a buggy producer sends and the consumer dead-letters as permanent.
func orderValue(t testing.TB, orderID string, quantity int, at time.Time) []byte {
	t.Helper()
	if quantity < 1 {
		valid := orderValue(t, orderID, 1, at)
		bad := bytes.Replace(valid, []byte(`"quantity":1`), []byte(fmt.Sprintf(`"quantity":%d`, quantity)), 1)
		if bytes.Equal(bad, valid) {
			t.Fatalf("no quantity field in %s", valid)
		}
		return bad
	}
	env, err := events.New("reefer-manager", events.TypeOrderCreated, orderID, events.OrderCreated{
		OrderID:              orderID,
		ProductID:            "P02",
		CustomerID:           "C-42",
		Quantity:             quantity,
		PickupCity:           "Oakland",
		DestinationCity:      "Shanghai",
		ExpectedDeliveryDate: "2026-02-01",
	}, at)
	if err != nil {
		t.Fatalf("new event: %v", err)
	}
	b, err := events.Encode(env)
	if err != nil {
		t.Fatalf("encode event: %v", err)
	}
	return b
}

// message builds the dead-letter record of l with the contract headers,
// written by retrymeta.Apply as the retry service writes them.
func (l letter) record(t testing.TB) kafka.Message {
	at := l.at
	if at.IsZero() {
		at = t0
	}
	q := l.quantity
	if q == 0 {
		q = 2
	}
	value := l.value
	if value == nil {
		value = orderValue(t, l.orderID, q, at.Add(-time.Hour))
	}
	m := retrymeta.Meta{
		Attempt:           l.attempts,
		FirstFailureAt:    at.Add(-10 * time.Minute),
		LastFailureAt:     at,
		ErrorClass:        l.class,
		ErrorMessage:      l.message,
		OriginalTopic:     ordersTop,
		OriginalPartition: 4,
		OriginalOffset:    int64(100 + l.attempts),
		OriginalTimestamp: at.Add(-time.Hour),
		ErrorStack:        "goroutine 7 [running]:\nallocation.(*Service).Allocate(...)\n\tpkg/allocation/allocation.go:42",
		DLQReason:         l.reason,
		DeadLetteredAt:    at,
		RedriveCount:      l.redrives,
	}
	headers := retrymeta.Apply([]kafka.Header{{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")}}, m)
	headers = append(headers, l.headers...)
	return kafka.Message{Key: []byte(l.orderID), Value: value, Headers: headers, Time: at}
}

// seed appends the letters to the dead-letter topic, each to its partition,
// in order.
func (c *cluster) seed(letters ...letter) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	byPartition := map[int][]kafka.Message{}
	for _, l := range letters {
		byPartition[l.partition] = append(byPartition[l.partition], l.record(c.t))
	}
	for p, msgs := range byPartition {
		for len(msgs) > 0 {
			n := min(len(msgs), 500)
			if _, err := c.log.AppendTo(ctx, dlqTopic, p, msgs[:n]); err != nil {
				c.t.Fatalf("seed partition %d: %v", p, err)
			}
			msgs = msgs[n:]
		}
	}
}

// result is what one run of the command printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// runOpts varies the environment of one run.
type runOpts struct {
	ctx      context.Context
	stdin    string
	stdinTTY bool
	ttyOut   bool
	env      map[string]string
	// now is the command's clock; nil means fixedNow.
	now func() time.Time
}

// run runs dlq with args against the cluster.
func (c *cluster) run(args ...string) result {
	c.t.Helper()
	return c.runWith(runOpts{}, args...)
}

func (c *cluster) runWith(o runOpts, args ...string) result {
	ctx := o.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	env := map[string]string{"KAFKA_BROKERS": c.addr, "DLQ_OPERATOR": "alice"}
	for k, v := range c.extra {
		env[k] = v
	}
	for k, v := range o.env {
		env[k] = v
	}
	now := o.now
	if now == nil {
		now = fixedNow
	}
	var stdout, stderr lockedBuffer
	code := dlq.Run(ctx, args, dlq.Env{
		Stdin:     strings.NewReader(o.stdin),
		Stdout:    &stdout,
		Stderr:    &stderr,
		StdinTTY:  o.stdinTTY,
		StdoutTTY: o.ttyOut,
		Getenv:    func(k string) string { return env[k] },
		Now:       now,
	})
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// lockedBuffer is a bytes.Buffer safe for the goroutines of watch.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// listPositions runs list -o jsonl with args and returns the positions.
func (c *cluster) listPositions(args ...string) ([]string, result) {
	c.t.Helper()
	r := c.run(append([]string{"list", "-o", "jsonl"}, args...)...)
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if line == "" {
			continue
		}
		var row render.Row
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			c.t.Fatalf("decode list row %q: %v\n%s", line, err, r)
		}
		out = append(out, fmt.Sprintf("%d:%d", row.Partition, row.Offset))
	}
	return out, r
}

// records reads every record of topic.
func (c *cluster) records(topic string) []kafka.Message {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // generous: a loaded -race run
	defer cancel()
	parts, err := c.log.Partitions(ctx, topic)
	if err != nil {
		c.t.Fatalf("partitions of %s: %v", topic, err)
	}
	var out []kafka.Message
	for _, p := range parts {
		err := c.log.Scan(ctx, topic, p.ID, p.First, p.End, func(m kafka.Message) error {
			out = append(out, m)
			return nil
		})
		if err != nil {
			c.t.Fatalf("scan %s: %v", topic, err)
		}
	}
	return out
}

// topicEnds returns the end offset of every partition of topic (nil when
// the topic does not exist).
func (c *cluster) topicEnds(topic string) map[int]int64 {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // generous: a loaded -race run
	defer cancel()
	parts, err := c.log.Partitions(ctx, topic)
	if err != nil {
		return nil
	}
	out := map[int]int64{}
	for _, p := range parts {
		out[p.ID] = p.End
	}
	return out
}

// groupOffsets returns the dlq-redrive group's offsets on the dead-letter
// topic.
func (c *cluster) groupOffsets() map[int]int64 {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // generous: a loaded -race run
	defer cancel()
	g, err := c.log.GroupOffsets(ctx, resolution.DefaultGroup, dlqTopic, []int{0, 1, 2})
	if err != nil {
		c.t.Fatalf("group offsets: %v", err)
	}
	return g
}
