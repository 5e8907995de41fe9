package harness

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
)

// OrderSource is the CloudEvents source of the orders the tests produce.
const OrderSource = "/reefer-dlq/integration-test"

// Order returns a valid order with id and quantity (1..100 fits the
// seeded fleet; above 100 no reefer can take it and it is rejected).
func Order(id string, quantity int) events.OrderCreated {
	return events.OrderCreated{
		OrderID:              id,
		ProductID:            "P-VACCINE",
		CustomerID:           "CUST-INTEGRATION",
		Quantity:             quantity,
		PickupCity:           "Rotterdam",
		DestinationCity:      "Singapore",
		ExpectedDeliveryDate: "2031-06-30",
	}
}

// Orders returns n valid orders with ids <prefix>-00001 ... and quantity
// 1..10 (cycling), each of which any reefer of the seeded fleet can take.
func Orders(prefix string, n int) []events.OrderCreated {
	out := make([]events.OrderCreated, n)
	for i := range out {
		out[i] = Order(fmt.Sprintf("%s-%05d", prefix, i+1), 1+i%10)
	}
	return out
}

// IDs returns the order ids.
func IDs(orders []events.OrderCreated) []string {
	ids := make([]string, len(orders))
	for i, o := range orders {
		ids[i] = o.OrderID
	}
	return ids
}

// OrderMessage is the OrderCreated record of o for topic, keyed by the
// order id as the contract says.
func OrderMessage(topic string, o events.OrderCreated) (kafka.Message, error) {
	env, err := events.New(OrderSource, events.TypeOrderCreated, o.OrderID, o, time.Now())
	if err != nil {
		return kafka.Message{}, fmt.Errorf("order %s: %w", o.OrderID, err)
	}
	value, err := events.Encode(env)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("order %s: %w", o.OrderID, err)
	}
	return kafka.Message{Topic: topic, Key: []byte(o.OrderID), Value: value}, nil
}

// ProduceOrders writes the orders to the orders topic.
func (s *Stack) ProduceOrders(ctx context.Context, orders ...events.OrderCreated) error {
	msgs := make([]kafka.Message, 0, len(orders))
	for _, o := range orders {
		m, err := OrderMessage(s.Topics.Orders, o)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	return s.Produce(ctx, msgs...)
}

// Produce writes records as they are; each names its topic. The writer
// accepts records up to what a topic of MaxMessageBytes takes
// (retrymeta.MaxRecordSize).
func (s *Stack) Produce(ctx context.Context, msgs ...kafka.Message) error {
	// Recorded first: a write that fails part-way may still land some.
	s.recordProduced(msgs)
	if err := s.writer.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("produce %d records: %w", len(msgs), err)
	}
	return nil
}
