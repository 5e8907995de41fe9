package contract

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/backoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
)

type capture struct{ msgs []kafka.Message }

func (c *capture) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	c.msgs = append(c.msgs, msgs...)
	return nil
}

// TestTheHandOffRouterWritesTheContract runs the router both services
// hand every outcome to (events, retries, dead letters of each reason)
// and checks each record it writes against docs/asyncapi.yaml: the same
// check the integration suite runs on the broker's records, here without
// Docker so that `make test-unit` catches a drift too.
func TestTheHandOffRouterWritesTheContract(t *testing.T) {
	c, err := Load(docPath)
	if err != nil {
		t.Fatal(err)
	}
	out := &capture{}
	topics := handoff.Topics{Retry: "order-retries", DeadLetter: "order-dead-letter"}
	r := &orders.Router{Router: handoff.Router{Writer: out, Topics: topics,
		Policy: backoff.Policy{Base: time.Second, Max: time.Minute}, MaxAttempts: 2,
		Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }},
		OrdersTopic: "orders", ContainersTopic: "containers", Source: "/reefer-dlq/reefer-manager"}

	env, err := events.New("/orders", events.TypeOrderCreated, "O-1", events.OrderCreated{OrderID: "O-1", ProductID: "P",
		CustomerID: "C", Quantity: 2, PickupCity: "Oakland", DestinationCity: "Shanghai", ExpectedDeliveryDate: "2026-02-01"}, r.Now())
	if err != nil {
		t.Fatal(err)
	}
	value, err := events.Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	in := kafka.Message{Topic: "orders", Partition: 2, Offset: 41, Key: []byte("O-1"), Value: value, Time: r.Now(),
		Headers: []kafka.Header{{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}}}
	ctx := context.Background()
	transient := failure.NewTransient("inventory answered 503", errors.New("503"))

	steps := []func() error{
		func() error {
			_, err := r.Emit(ctx, in, allocation.Result{Outcome: allocation.Allocated, OrderID: "O-1", ContainerID: "C-7"})
			return err
		},
		func() error {
			_, err := r.Emit(ctx, in, allocation.Result{Outcome: allocation.Rejected, OrderID: "O-1", Reason: "no reefer"})
			return err
		},
		func() error { _, err := r.Fail(ctx, in, retrymeta.Meta{}, transient); return err },           // retry, attempt 1
		func() error { _, err := r.Fail(ctx, in, retrymeta.Meta{Attempt: 1}, transient); return err }, // max-attempts
		func() error {
			_, err := r.Fail(ctx, in, retrymeta.Meta{}, failure.NewPermanent("409", nil))
			return err
		}, // permanent-error
		func() error {
			_, err := r.Poison(ctx, kafka.Message{Topic: "orders", Key: []byte("P-1"), Value: []byte("{not json")}, retrymeta.Meta{}, errors.New("undecodable"))
			return err
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	channel := map[string]string{"orders": Orders, "containers": Containers, "order-retries": OrderRetries, "order-dead-letter": OrderDeadLetter}
	seen := map[string]int{}
	for _, m := range out.msgs {
		seen[m.Topic]++
		if err := c.Check(channel[m.Topic], m); err != nil {
			t.Errorf("%s record (key %s) breaks the contract: %v", m.Topic, m.Key, err)
		}
	}
	want := map[string]int{"orders": 2, "containers": 1, "order-retries": 1, "order-dead-letter": 3}
	for topic, n := range want {
		if seen[topic] != n {
			t.Errorf("%d records on %s, want %d: the test no longer covers every outcome", seen[topic], topic, n)
		}
	}
}
