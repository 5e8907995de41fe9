package tracker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
)

var topics = Topics{Orders: "orders", Containers: "containers", Retry: "order-retries", DeadLetter: "order-dead-letter"}

type fixture struct {
	t      *testing.T
	ctx    context.Context
	kc     kafkaclient.Config
	writer *kafka.Writer
	at     time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	b, err := devbroker.Start(ctx, devbroker.Config{Topics: map[string]int{
		topics.Orders: 3, topics.Containers: 3, topics.Retry: 3, topics.DeadLetter: 2,
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	kc := kafkaclient.Config{Brokers: []string{b.Addr()}}
	w, err := kc.NewWriter("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return &fixture{t: t, ctx: ctx, kc: kc, writer: w, at: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}
}

func (f *fixture) write(msgs ...kafka.Message) {
	f.t.Helper()
	if err := f.writer.WriteMessages(f.ctx, msgs...); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) event(topic, eventType, subject, key string, data any) kafka.Message {
	f.t.Helper()
	env, err := events.New("/test", eventType, subject, data, f.at)
	if err != nil {
		f.t.Fatal(err)
	}
	b, err := events.Encode(env)
	if err != nil {
		f.t.Fatal(err)
	}
	return kafka.Message{Topic: topic, Key: []byte(key), Value: b}
}

func (f *fixture) created(id string) kafka.Message {
	return f.event(topics.Orders, events.TypeOrderCreated, id, id, events.OrderCreated{
		OrderID: id, ProductID: "P-1", CustomerID: "C-1", Quantity: 3,
		PickupCity: "Oakland", DestinationCity: "Busan", ExpectedDeliveryDate: "2030-02-01",
	})
}

func (f *fixture) allocated(id, container string) []kafka.Message {
	return []kafka.Message{
		f.event(topics.Orders, events.TypeContainerAllocated, id, id, events.ContainerAllocated{OrderID: id, ContainerID: container}),
		f.event(topics.Containers, events.TypeContainerAssignedToOrder, id, container, events.ContainerAssignedToOrder{ContainerID: container, OrderID: id}),
	}
}

// hop is a record of order id on the retry or dead-letter topic.
func (f *fixture) hop(topic, id string, m retrymeta.Meta) kafka.Message {
	m.OriginalTopic = topics.Orders
	if m.Attempt > 0 {
		m.LastFailureAt = f.at.Add(time.Duration(m.Attempt) * time.Second)
		m.FirstFailureAt = f.at
		if m.DueAt.IsZero() && topic == topics.Retry {
			m.DueAt = m.LastFailureAt.Add(time.Duration(m.Attempt) * 100 * time.Millisecond)
		}
	}
	return kafka.Message{Topic: topic, Key: []byte(id), Value: []byte("{}"), Headers: retrymeta.Apply(nil, m)}
}

// TestTrackerFollowsEachOrderToItsFurthestHop writes the records of a few
// orders, some of them in an order the services never write them in (the
// tracker's readers may see them so), and checks where each order is.
func TestTrackerFollowsEachOrderToItsFurthestHop(t *testing.T) {
	f := newFixture(t)
	// Written before the tracker starts: not this run's business.
	f.write(f.created("O-OLD"))

	tr, err := Start(f.ctx, Config{Kafka: f.kc, Topics: topics, SampleEvery: 10 * time.Millisecond,
		Track: func(id string) bool { return !strings.HasPrefix(id, "X-") }})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()

	dead := retrymeta.Meta{Attempt: 3, ErrorClass: failure.Transient, DLQReason: retrymeta.MaxAttempts, ErrorMessage: "503"}
	f.write(f.created("O-1"), f.created("O-2"), f.created("O-3"), f.created("O-4"), f.created("X-9"))
	f.write(f.allocated("O-1", "C-1")...)
	f.write(f.allocated("O-1", "C-1")[0]) // a redelivery: the same event again
	// O-2: the dead letter first, then the retry records that preceded it,
	// then the redrive and a retry after it, then the allocation.
	f.write(f.hop(topics.DeadLetter, "O-2", dead))
	f.write(f.hop(topics.Retry, "O-2", retrymeta.Meta{Attempt: 1, ErrorMessage: "inventory answered 503"}),
		f.hop(topics.Retry, "O-2", retrymeta.Meta{Attempt: 2, ErrorMessage: "circuit-open: breaker is open"}))
	f.write(f.hop(topics.Retry, "O-2", retrymeta.Meta{RedriveCount: 1, DueAt: f.at}),
		f.hop(topics.Retry, "O-2", retrymeta.Meta{Attempt: 1, RedriveCount: 1, ErrorMessage: "503"}))
	f.write(f.allocated("O-2", "C-2")...)
	// O-3: dead letter, then an older retry record read late.
	f.write(f.hop(topics.DeadLetter, "O-3", retrymeta.Meta{Attempt: 1, ErrorClass: failure.Permanent, DLQReason: retrymeta.PermanentError, ErrorMessage: "422"}))
	f.write(f.hop(topics.Retry, "O-3", retrymeta.Meta{Attempt: 1}))
	f.write(f.event(topics.Orders, events.TypeOrderRejected, "O-4", "O-4", events.OrderRejected{OrderID: "O-4", Reason: "too big"}))
	f.write(kafka.Message{Topic: topics.Orders, Key: []byte("O-5"), Value: []byte("not json")})
	f.write(f.hop(topics.Retry, "X-9", retrymeta.Meta{Attempt: 1}))

	wctx, cancel := context.WithTimeout(f.ctx, 20*time.Second)
	defer cancel()
	err = tr.WaitUntil(wctx, func(v View) bool {
		c := v.Counts()
		o3, _ := v.Order("O-3")
		return c.Allocated == 2 && c.Rejected == 1 && c.DeadPermanent == 1 && o3.RetryRecords == 1 && len(v.t.unreadable) == 1
	})
	if err != nil {
		t.Fatalf("tracker never saw everything: %v; counts %+v", err, tr.Counts())
	}
	rep := tr.Report()

	type view struct {
		Stage                  Stage
		Attempt, Max, Redrives int
		Reason, Class          string
		Containers             []string
	}
	got := map[string]view{}
	for id, o := range rep.Orders {
		got[id] = view{o.Stage, o.Attempt, o.MaxAttempt, o.Redrives, o.DLQReason, o.ErrorClass, o.Containers}
	}
	want := map[string]view{
		"O-1": {Stage: Allocated, Containers: []string{"C-1"}},
		"O-2": {Stage: Allocated, Attempt: 1, Max: 3, Redrives: 1, Reason: "max-attempts", Class: "transient", Containers: []string{"C-2"}},
		"O-3": {Stage: DeadLettered, Attempt: 1, Max: 1, Reason: "permanent-error", Class: "permanent"},
		"O-4": {Stage: Rejected},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("orders (-want +got):\n%s", diff)
	}
	if rep.Duplicates != 1 {
		t.Errorf("duplicates = %d; want 1 (the repeated ContainerAllocated)", rep.Duplicates)
	}
	if diff := cmp.Diff(map[string][]string{"C-1": {"O-1"}, "C-2": {"O-2"}}, rep.Containers); diff != "" {
		t.Errorf("containers (-want +got):\n%s", diff)
	}
	if rep.Causes[CauseBreaker] != 1 || rep.Causes[CauseInventory] != 3 {
		t.Errorf("causes = %v; want 1 breaker, 3 inventory", rep.Causes)
	}
	if rep.Redriven != 1 || rep.In != 4 {
		t.Errorf("counts %+v; want 4 orders in, 1 redriven", rep.Counts)
	}
	if len(rep.Samples) < 2 {
		t.Errorf("%d samples; want a time series", len(rep.Samples))
	}
	if want := f.at.Add(3 * time.Second); !rep.LastFailure.Equal(want) {
		t.Errorf("last failure %s; want %s", rep.LastFailure, want)
	}
}

func TestStartFailsOnAMissingTopic(t *testing.T) {
	f := newFixture(t)
	_, err := Start(f.ctx, Config{Kafka: f.kc, Topics: Topics{Orders: "orders", Containers: "containers", Retry: "order-retries", DeadLetter: "nope"}})
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err = %v; want one naming the missing topic", err)
	}
}

func TestHopsOrderByRedrivesThenAttemptsThenKind(t *testing.T) {
	tests := []struct {
		a, b hop
		want bool
	}{
		{hop{0, 2, kindRetry}, hop{0, 1, kindRetry}, true},
		{hop{0, 2, kindDead}, hop{0, 2, kindRetry}, true},
		{hop{1, 0, kindRetry}, hop{0, 4, kindDead}, true}, // a redrive moves the order on
		{hop{0, 1, kindRetry}, hop{0, 3, kindDead}, false},
		{hop{0, 1, kindRetry}, hop{0, 1, kindRetry}, false},
	}
	for _, tt := range tests {
		if got := tt.a.after(tt.b); got != tt.want {
			t.Errorf("%+v after %+v = %v; want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
