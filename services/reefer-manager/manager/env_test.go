package manager_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/pipeline/pipelinetest"
	"github.com/reeferdlq/reefer-dlq/services/reefer-manager/manager"
)

// Topics of every test broker. Fewer partitions than production keep the
// tests quick; more than one keeps per-partition commit logic honest.
var testTopics = map[string]int{"orders": 3, "containers": 3, "order-retries": 3, "order-dead-letter": 1}

const group = "reefer-manager"

// env is one test's world: an in-process broker and a fake inventory.
type env struct {
	t      testing.TB
	broker *devbroker.Broker
	kafka  kafkaclient.Config
	inv    *fakeInventory
}

func newEnv(t testing.TB) *env {
	t.Helper()
	b, err := devbroker.Start(context.Background(), devbroker.Config{Topics: testTopics})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return &env{t: t, broker: b, kafka: kafkaclient.Config{Brokers: []string{b.Addr()}}, inv: newFakeInventory(t)}
}

// environ is the service's environment for this world: a SQLite file of
// the test, and settings that make tests quick.
func (e *env) environ(extra map[string]string) map[string]string {
	return pipelinetest.Environ(e.t, e.broker.Addr(), "sqlite:"+filepath.Join(e.t.TempDir(), "reefers.db"), e.inv.srv.URL, map[string]string{
		"LOG_LEVEL":         "info",
		"REEFER_FLEET_SIZE": "200",
		"MAX_IN_FLIGHT":     "16",
		"RETRY_BASE_DELAY":  "1s",
		"RETRY_MAX_DELAY":   "1m",
	}, extra)
}

func (e *env) config(extra map[string]string) manager.Config {
	e.t.Helper()
	return pipelinetest.Config(e.t, manager.ConfigFromEnv, e.environ(extra))
}

// service is a running manager.Run (see pipelinetest.Start).
type service struct{ *pipelinetest.Service }

// start runs the service in the background; it is stopped gracefully
// when the test ends, unless the test stopped it before.
func (e *env) start(cfg manager.Config) *service {
	e.t.Helper()
	run := func(ctx context.Context, log *slog.Logger) error { return manager.Run(ctx, log, cfg) }
	s := &service{Service: pipelinetest.Start(e.t, cfg.LogLevel, cfg.ShutdownTimeout, run)}
	return s
}

// stop cancels the service and waits for Run to return.
func (s *service) stop() error { return s.Stop() }

// produce writes records and returns them as the broker stored them
// (with partition and offset).
func (e *env) produce(msgs ...kafka.Message) []kafka.Message {
	e.t.Helper()
	w, err := e.kafka.NewWriter("")
	if err != nil {
		e.t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		e.t.Fatalf("produce: %v", err)
	}
	// The writer does not report offsets; read them back by key and value.
	type kv struct{ key, value string }
	want := map[kv]bool{}
	for _, m := range msgs {
		want[kv{string(m.Key), string(m.Value)}] = true
	}
	var stored []kafka.Message
	for _, topic := range topicsOf(msgs) {
		for _, m := range e.readAll(topic) {
			if want[kv{string(m.Key), string(m.Value)}] {
				stored = append(stored, m)
			}
		}
	}
	return stored
}

func topicsOf(msgs []kafka.Message) []string {
	set := map[string]bool{}
	for _, m := range msgs {
		set[m.Topic] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// ends returns, per partition, the offset the next record will get.
func (e *env) ends(topic string) map[int]int64 {
	e.t.Helper()
	return pipelinetest.Ends(e.t, e.kafka, topic, testTopics[topic])
}

// committed returns the group's committed offsets (the next offset to
// read; -1 when nothing was committed) per partition.
func (e *env) committed(topic string) map[int]int64 {
	e.t.Helper()
	client, closeClient := e.client()
	defer closeClient()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // generous: a loaded -race run
	defer cancel()
	resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{
		GroupID: group,
		Topics:  map[string][]int{topic: partitions(topic)},
	})
	if err != nil {
		e.t.Fatalf("fetch committed offsets: %v", err)
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

// partitions lists the partition numbers of a test topic.
func partitions(topic string) []int {
	ps := make([]int, testTopics[topic])
	for i := range ps {
		ps[i] = i
	}
	return ps
}

func (e *env) client() (*kafka.Client, func()) { return pipelinetest.Client(e.t, e.kafka) }

// waitAllCommitted waits until the group has committed every record of
// the orders topic, including the events the service appends to it
// itself; with COMMIT_MODE=after-handoff that means every record is
// concluded.
func (e *env) waitAllCommitted(timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ends, committed := e.ends("orders"), e.committed("orders")
		done := true
		for p, end := range ends {
			if end > 0 && committed[p] != end {
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("after %s the group committed %v of the orders topic, whose ends are %v", timeout, committed, ends)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readAll returns every record of topic, partition by partition in order.
func (e *env) readAll(topic string) []kafka.Message {
	e.t.Helper()
	return pipelinetest.ReadAll(e.t, e.kafka.Brokers, topic, testTopics[topic], e.ends(topic))
}

// decoded is an event read back from a topic.
type decoded struct {
	msg kafka.Message
	env events.Envelope
}

// eventsOf returns the events of eventType on topic, without the
// duplicates (same event id) that redelivery may produce, and how many
// duplicates it dropped.
func (e *env) eventsOf(topic, eventType string) (unique []decoded, duplicates int) {
	e.t.Helper()
	seen := map[string]bool{}
	for _, m := range e.readAll(topic) {
		ev, err := events.Decode(m.Value)
		if err != nil || ev.Type != eventType {
			continue
		}
		if seen[ev.ID] {
			duplicates++
			continue
		}
		seen[ev.ID] = true
		unique = append(unique, decoded{m, ev})
	}
	return unique, duplicates
}

// order returns an OrderCreated record for id.
func order(t testing.TB, id string, quantity int) kafka.Message {
	t.Helper()
	env, err := events.New("/test/orders", events.TypeOrderCreated, id, events.OrderCreated{
		OrderID: id, ProductID: "P-" + id, CustomerID: "CU-1", Quantity: quantity,
		PickupCity: "Oakland", DestinationCity: "Shanghai", ExpectedDeliveryDate: "2026-05-01",
	}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	value, err := events.Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Topic: "orders", Key: []byte(id), Value: value}
}

func orders(t testing.TB, prefix string, n int) []kafka.Message {
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = order(t, fmt.Sprintf("%s-%04d", prefix, i), 10+i%50)
	}
	return msgs
}

// syncBuffer and waitFor are helpers both pipeline services' tests share
// (package pipelinetest).
var waitFor = pipelinetest.WaitFor

type syncBuffer = pipelinetest.SyncBuffer

// fakeInventory stands in for the legacy inventory: PUT
// /containers/{id}/allocation answered with a status the test sets, or
// held until the test releases it.
type fakeInventory struct {
	srv    *httptest.Server
	status atomic.Int32
	delay  atomic.Int64 // time.Duration each answer waits
	hold   atomic.Pointer[chan struct{}]

	mu    sync.Mutex
	calls map[string]int // order id -> requests
	byCtr map[string]string
}

func newFakeInventory(t testing.TB) *fakeInventory {
	f := &fakeInventory{calls: map[string]int{}, byCtr: map[string]string{}}
	f.status.Store(http.StatusOK)
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /containers/{id}/allocation", f.allocate)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		f.release()
		f.srv.Close()
	})
	return f
}

func (f *fakeInventory) allocate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		OrderID string `json:"orderID"`
	}
	raw, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(raw, &body); err != nil || body.OrderID == "" || r.Header.Get("Idempotency-Key") != body.OrderID {
		http.Error(w, `{"error":"bad_request","message":"want {orderID} and a matching Idempotency-Key"}`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.calls[body.OrderID]++
	f.byCtr[r.PathValue("id")] = body.OrderID
	f.mu.Unlock()
	if hold := f.hold.Load(); hold != nil {
		select {
		case <-*hold:
		case <-r.Context().Done():
			return
		}
	}
	if d := time.Duration(f.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	status := int(f.status.Load())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if status >= 400 {
		fmt.Fprintf(w, `{"error":%q,"message":"fake inventory answers %d"}`, strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_"), status)
		return
	}
	fmt.Fprintf(w, `{"containerID":%q,"orderID":%q}`, r.PathValue("id"), body.OrderID)
}

// holdAll makes every request wait until release.
func (f *fakeInventory) holdAll() {
	ch := make(chan struct{})
	f.hold.Store(&ch)
}

func (f *fakeInventory) release() {
	if ch := f.hold.Swap(nil); ch != nil {
		close(*ch)
	}
}

func (f *fakeInventory) callCounts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.calls)
}

// metric returns the value of an unlabelled (or fully labelled, e.g.
// `name{reason="poison"}`) series from the service's /metrics.
func metric(t testing.TB, cfg manager.Config, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + cfg.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatalf("scrape metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(body)) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		if ok && name == series {
			var v float64
			if _, err := fmt.Sscan(value, &v); err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return v
		}
	}
	t.Fatalf("metric %s not found in:\n%s", series, body)
	return 0
}
