package retrier_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/inventory"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/pipeline/pipelinetest"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/admin"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/calls"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
	"github.com/reeferdlq/reefer-dlq/services/order-retry/retrier"
)

// Topics of every test broker. Fewer partitions than production keep the
// tests quick; more than one keeps per-partition commit logic honest.
var testTopics = map[string]int{"orders": 3, "containers": 3, "order-retries": 3, "order-dead-letter": 1}

const (
	group      = "order-retry"
	retryTopic = "order-retries"
	dlqTopic   = "order-dead-letter"
)

// env is one test's world: an in-process broker, the real inventory mock
// with its admin client, and a database.
type env struct {
	t       testing.TB
	broker  *devbroker.Broker
	kafka   kafkaclient.Config
	mock    *admin.Client
	dbURL   string
	mockURL string
}

// newEnv starts the broker and the inventory mock; dbURL "" means a SQLite
// file of the test.
func newEnv(t testing.TB, dbURL string) *env {
	t.Helper()
	b, err := devbroker.Start(context.Background(), devbroker.Config{Topics: testTopics})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })

	mock, err := inventorymock.New(inventorymock.Config{HTTPAddr: "127.0.0.1:0", CallLogSize: 50000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := mock.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // generous: a loaded -race run
		defer cancel()
		if err := mock.Shutdown(ctx); err != nil {
			t.Errorf("inventory mock: %v", err)
		}
	})
	if dbURL == "" {
		dbURL = "sqlite:" + filepath.Join(t.TempDir(), "reefers.db")
	}
	mockURL := "http://" + mock.Addr()
	return &env{
		t: t, broker: b, kafka: kafkaclient.Config{Brokers: []string{b.Addr()}},
		mock: admin.New(mockURL, ""), mockURL: mockURL, dbURL: dbURL,
	}
}

// environ is the service's environment in this world, with settings that
// make tests quick: a short base delay, so that retries come in tens of
// milliseconds.
func (e *env) environ(extra map[string]string) map[string]string {
	return pipelinetest.Environ(e.t, e.broker.Addr(), e.dbURL, e.mockURL, map[string]string{
		"LOG_LEVEL":         "debug",
		"REEFER_FLEET_SIZE": "300",
		"RETRY_BASE_DELAY":  "50ms",
		"RETRY_MAX_DELAY":   "2s",
	}, extra)
}

func (e *env) config(extra map[string]string) retrier.Config {
	e.t.Helper()
	return pipelinetest.Config(e.t, retrier.ConfigFromEnv, e.environ(extra))
}

// setFaults replaces the inventory mock's fault profile.
func (e *env) setFaults(p faults.Profile) {
	e.t.Helper()
	if _, err := e.mock.SetFaults(context.Background(), p); err != nil {
		e.t.Fatal(err)
	}
}

// allocateCalls returns the inventory's allocate calls of one order,
// oldest first.
func (e *env) allocateCalls(orderID string) []calls.Call {
	e.t.Helper()
	got, err := e.mock.Calls(context.Background(), calls.Query{Route: faults.RouteAllocate, OrderID: orderID})
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

// service is a running retrier.Run (see pipelinetest.Start).
type service struct{ *pipelinetest.Service }

// start runs the service in the background and waits until it is ready;
// it is stopped gracefully when the test ends, unless the test stopped it
// before.
func (e *env) start(cfg retrier.Config) *service {
	e.t.Helper()
	run := func(ctx context.Context, log *slog.Logger) error { return retrier.Run(ctx, log, cfg) }
	s := &service{Service: pipelinetest.Start(e.t, cfg.LogLevel, cfg.ShutdownTimeout, run)}
	waitReady(e.t, cfg.HTTPAddr, s.Done())
	return s
}

// stop cancels the service and waits for Run to return.
func (s *service) stop() error { return s.Stop() }

// waitReady polls /readyz until it answers 200; died, when it delivers,
// means the service ended before it was ready.
func waitReady(t testing.TB, addr string, died <-chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-died:
			t.Fatalf("service ended before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("service at %s not ready after 30s (last: %v)", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// produce writes records and returns them as the broker stored them
// (with partition and offset).
func (e *env) produce(msgs ...kafka.Message) []kafka.Message {
	e.t.Helper()
	w, err := e.kafka.NewWriter("")
	if err != nil {
		e.t.Fatal(err)
	}
	defer w.Close()
	return e.write(w, msgs...)
}

// write writes records with w and reads them back, to learn their
// partitions and offsets (the writer does not report them). The result is
// in the order of msgs.
func (e *env) write(w *kafka.Writer, msgs ...kafka.Message) []kafka.Message {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		e.t.Fatalf("produce: %v", err)
	}
	type kv struct{ topic, key, value string }
	stored := map[kv]kafka.Message{}
	topics := map[string]bool{}
	for _, m := range msgs {
		topics[m.Topic] = true
	}
	for topic := range topics {
		for _, m := range e.readAll(topic) {
			stored[kv{topic, string(m.Key), string(m.Value)}] = m
		}
	}
	out := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		s, ok := stored[kv{m.Topic, string(m.Key), string(m.Value)}]
		if !ok {
			e.t.Fatalf("record %s written to %s not found there", m.Key, m.Topic)
		}
		out[i] = s
	}
	return out
}

// ends returns, per partition, the offset the next record will get.
func (e *env) ends(topic string) map[int]int64 {
	e.t.Helper()
	return pipelinetest.Ends(e.t, e.kafka, topic, testTopics[topic])
}

// committed returns the group's committed offsets of the retry topic (the
// next offset to read; -1 when nothing was committed) per partition.
func (e *env) committed() map[int]int64 {
	e.t.Helper()
	client, closeClient := e.client()
	defer closeClient()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // generous: a loaded -race run
	defer cancel()
	var partitions []int
	for p := range testTopics[retryTopic] {
		partitions = append(partitions, p)
	}
	resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{
		GroupID: group,
		Topics:  map[string][]int{retryTopic: partitions},
	})
	if err != nil {
		e.t.Fatalf("fetch committed offsets: %v", err)
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[retryTopic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

func (e *env) client() (*kafka.Client, func()) { return pipelinetest.Client(e.t, e.kafka) }

// allCommitted reports whether the group has committed every record of
// the retry topic, the ones the service republished included: every
// retry is concluded.
func (e *env) allCommitted() bool {
	ends, committed := e.ends(retryTopic), e.committed()
	for p, end := range ends {
		if end > 0 && committed[p] != end {
			return false
		}
	}
	return true
}

// waitAllCommitted waits until allCommitted holds.
func (e *env) waitAllCommitted(timeout time.Duration) {
	e.t.Helper()
	waitFor(e.t, timeout, "the group to commit every record of the retry topic", e.allCommitted)
}

// readAll returns every record of topic, partition by partition in order.
func (e *env) readAll(topic string) []kafka.Message {
	e.t.Helper()
	return pipelinetest.ReadAll(e.t, e.kafka.Brokers, topic, testTopics[topic], e.ends(topic))
}

// allocatedContainers returns, per order, the distinct containers named
// by the ContainerAllocated events on the orders topic. A redelivery may
// emit an order's event twice (with the same event id); one container per
// order means it was allocated once.
func (e *env) allocatedContainers() map[string][]string {
	e.t.Helper()
	out := map[string][]string{}
	for _, m := range e.readAll("orders") {
		ev, err := events.Decode(m.Value)
		if err != nil || ev.Type != events.TypeContainerAllocated {
			continue
		}
		data, err := events.DecodeData[events.ContainerAllocated](ev)
		if err != nil {
			e.t.Fatalf("ContainerAllocated %s: %v", ev.ID, err)
		}
		if !slices.Contains(out[data.OrderID], data.ContainerID) {
			out[data.OrderID] = append(out[data.OrderID], data.ContainerID)
		}
	}
	return out
}

// order returns an OrderCreated record for id on the orders topic.
func order(t testing.TB, id string) kafka.Message {
	t.Helper()
	env, err := events.New("/test/orders", events.TypeOrderCreated, id, events.OrderCreated{
		OrderID: id, ProductID: "P-" + id, CustomerID: "CU-1", Quantity: 10,
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

func orderIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%04d", prefix, i)
	}
	return ids
}

// firstAttempt plays reefer-manager for the orders: it publishes them to
// the orders topic and runs the shared first attempt on each (the same
// orders.Processor over the same database and the real inventory mock),
// which, with the inventory failing, hands them to the retry topic. It
// returns the retry records as stored.
func (e *env) firstAttempt(cfg retrier.Config, ids ...string) []kafka.Message {
	e.t.Helper()
	ctx := context.Background()
	msgs := make([]kafka.Message, len(ids))
	for i, id := range ids {
		msgs[i] = order(e.t, id)
	}
	stored := e.produce(msgs...)

	store, err := reeferstore.Open(ctx, cfg.DatabaseURL, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		e.t.Fatal(err)
	}
	if err := store.SeedFleet(ctx, cfg.FleetSize); err != nil {
		e.t.Fatal(err)
	}
	inv, err := inventory.New(inventory.Config{BaseURL: cfg.InventoryURL})
	if err != nil {
		e.t.Fatal(err)
	}
	w, err := e.kafka.NewWriter("")
	if err != nil {
		e.t.Fatal(err)
	}
	defer w.Close()
	p := &orders.Processor{
		Allocator: allocation.Service{Store: store, Inventory: inv},
		Router: &orders.Router{
			Router: handoff.Router{
				Writer:      w,
				Topics:      handoff.Topics{Retry: retryTopic, DeadLetter: dlqTopic},
				Policy:      cfg.BackoffPolicy(),
				MaxAttempts: cfg.RetryMaxAttempts,
			},
			OrdersTopic: "orders", ContainersTopic: "containers", Source: "/test/reefer-manager",
		},
		SkipOtherTypes: true,
	}
	for _, m := range stored {
		d, err := p.Process(ctx, m, retrymeta.Meta{})
		if err != nil {
			e.t.Fatal(err)
		}
		if d.Route != handoff.RouteRetry {
			e.t.Fatalf("first attempt of %s: route %s (%v), want retry: the test expects a failing inventory", m.Key, d.Route, d.Err)
		}
	}
	var retries []kafka.Message
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for _, m := range e.readAll(retryTopic) {
		if meta, _ := retrymeta.Parse(m.Headers); want[string(m.Key)] && meta.Attempt == 1 {
			retries = append(retries, m)
		}
	}
	if len(retries) != len(ids) {
		e.t.Fatalf("%d retry records after the first attempt, want %d", len(retries), len(ids))
	}
	return retries
}

// retryRecord is the record reefer-manager would have handed to the retry
// topic for the stored order orig after attempt failed attempts: key and
// value unchanged, due at due.
func retryRecord(orig kafka.Message, attempt int, due time.Time) kafka.Message {
	failedAt := due.Add(-50 * time.Millisecond)
	return kafka.Message{
		Topic: retryTopic,
		Key:   orig.Key,
		Value: orig.Value,
		Headers: retrymeta.Apply(orig.Headers, retrymeta.Meta{
			Attempt: attempt, DueAt: due, FirstFailureAt: failedAt, LastFailureAt: failedAt,
			ErrorClass: failure.Transient, ErrorMessage: "inventory answered 503 Service Unavailable",
			OriginalTopic: orig.Topic, OriginalPartition: orig.Partition, OriginalOffset: orig.Offset,
			OriginalTimestamp: orig.Time,
		}),
	}
}

// publishOrders publishes OrderCreated records for ids to the orders topic
// and returns them as stored.
func (e *env) publishOrders(ids ...string) []kafka.Message {
	e.t.Helper()
	msgs := make([]kafka.Message, len(ids))
	for i, id := range ids {
		msgs[i] = order(e.t, id)
	}
	return e.produce(msgs...)
}

// syncBuffer and waitFor are helpers both pipeline services' tests share
// (package pipelinetest).
var waitFor = pipelinetest.WaitFor

type syncBuffer = pipelinetest.SyncBuffer

// metric returns the value of a series (`name` or `name{label="v",...}`,
// labels as Prometheus prints them, sorted by name) from /metrics at addr;
// 0 when it is absent.
func metric(t testing.TB, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scrape metrics: %v", err)
	}
	for line := range strings.Lines(string(body)) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		if ok && name == series {
			var v float64
			if _, err := fmt.Sscan(value, &v); err != nil {
				t.Fatalf("metric %s: value %q: %v", series, value, err)
			}
			return v
		}
	}
	return 0
}
