package orders_test

import (
	"context"
	"errors"
	"fmt"
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

// printWriter stands in for a *kafka.Writer and prints what would be
// written.
type printWriter struct{}

func (printWriter) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	for _, m := range msgs {
		attempt, _ := retrymeta.Get(m.Headers, retrymeta.HeaderAttempt)
		fmt.Printf("write to %s, key %s, attempt %q\n", m.Topic, m.Key, attempt)
	}
	return nil
}

// A service builds one Processor at start and calls Process for each
// record. Here the inventory is down, so the order goes to the retry topic
// as its first failed attempt.
func ExampleProcessor() {
	p := &orders.Processor{
		Allocator: allocation.Service{
			Store: storeFunc(func(context.Context, string, int) (string, error) { return "C-0042", nil }),
			Inventory: inventoryFunc(func(context.Context, string, string) error {
				return failure.NewTransient("http-503", errors.New("inventory answered 503"))
			}),
		},
		Router: &orders.Router{
			Router: handoff.Router{
				Writer:      printWriter{}, // a *kafka.Writer without Topic in a service
				Topics:      handoff.Topics{Retry: "order-retries", DeadLetter: "order-dead-letter"},
				Policy:      backoff.Policy{Base: time.Second, Max: time.Minute},
				MaxAttempts: 5,
			},
			OrdersTopic: "orders", ContainersTopic: "containers", Source: "/reefer-dlq/example",
		},
		SkipOtherTypes: true, // reefer-manager: its input topic also carries its own events
	}

	env, _ := events.New("/shop", events.TypeOrderCreated, "O-1", events.OrderCreated{
		OrderID: "O-1", ProductID: "P-1", CustomerID: "CU-1", Quantity: 10,
		PickupCity: "Oakland", DestinationCity: "Shanghai", ExpectedDeliveryDate: "2026-04-01",
	}, time.Now())
	value, _ := events.Encode(env)
	record := kafka.Message{Topic: "orders", Partition: 0, Offset: 7, Key: []byte("O-1"), Value: value}

	// order-retry passes the metadata it parsed with retrymeta.ParseRetry;
	// a record from the orders topic has none.
	d, err := p.Process(context.Background(), record, retrymeta.Meta{})
	if err != nil {
		// Nothing was handed off: do not commit the record.
		fmt.Println("retry in place:", err)
		return
	}
	fmt.Println("route:", d.Route, "attempt:", d.Attempt)
	// Output:
	// write to order-retries, key O-1, attempt "1"
	// route: retry attempt: 1
}
