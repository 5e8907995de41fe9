package orders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
)

// Router is the pattern's hand-off router (failed records to the retry or
// dead-letter topic) plus the order's business outcomes: the events that
// [Router.Emit] writes. Create it with a struct literal; Validate checks
// every field.
type Router struct {
	handoff.Router
	// OrdersTopic receives ContainerAllocated and OrderRejected,
	// ContainersTopic ContainerAssignedToOrder.
	OrdersTopic     string
	ContainersTopic string
	// Source is the CloudEvents source of the events the Router emits,
	// for example "/reefer-dlq/reefer-manager".
	Source string
}

// Validate reports every missing or invalid field.
func (r *Router) Validate() error {
	var errs []error
	if err := r.Router.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, t := range []struct{ name, topic string }{
		{"OrdersTopic", r.OrdersTopic}, {"ContainersTopic", r.ContainersTopic},
	} {
		if t.topic == "" {
			errs = append(errs, fmt.Errorf("empty %s", t.name))
		}
	}
	if r.Source == "" {
		errs = append(errs, errors.New("empty Source"))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("orders router: %w", errors.Join(errs...))
}

// Decision describes which way one order record went, for metrics and
// logs: the pattern's Decision plus what only an order has. Only the
// fields that apply to the Route are set.
type Decision struct {
	handoff.Decision
	// OrderID is the order the record is about, when it could be read.
	OrderID string
	// ContainerID is the allocated reefer (RouteAllocated).
	ContainerID string
	// Concluded is set when a record met its order concluded by another
	// chain in the Processor's Ledger: allocation.StateAllocated (the
	// route is RouteAllocated: the success events were written again) or
	// allocation.StateDeadLettered (RouteSkipped: nothing written).
	Concluded allocation.State
	// Released is the reefer a dead-lettered order gave back to the pool,
	// Quarantined the one it took out of the pool instead (an inventory
	// 409) (RouteDeadLetter, with a Ledger).
	Released    string
	Quarantined string
}

// decided is d as the Decision about order orderID.
func decided(d handoff.Decision, orderID string) Decision {
	return Decision{Decision: d, OrderID: orderID}
}

// Emit writes the events of a conclusive allocation result: for Allocated,
// ContainerAllocated on the orders topic and ContainerAssignedToOrder on
// the containers topic (one WriteMessages call); for Rejected,
// OrderRejected on the orders topic. A traceparent header of in is copied
// to every event; with Tracing on, the write's producer spans replace it
// with their own.
func (r *Router) Emit(ctx context.Context, in kafka.Message, res allocation.Result) (Decision, error) {
	now := r.now()
	var (
		msgs []kafka.Message
		d    Decision
		err  error
	)
	switch res.Outcome {
	case allocation.Allocated:
		d = Decision{Decision: handoff.Decision{Route: handoff.RouteAllocated}, OrderID: res.OrderID, ContainerID: res.ContainerID}
		msgs, err = r.allocatedMessages(in, res, now)
	case allocation.Rejected:
		d = Decision{Decision: handoff.Decision{Route: handoff.RouteRejected}, OrderID: res.OrderID}
		msgs, err = r.rejectedMessages(in, res, now)
	default:
		return Decision{}, fmt.Errorf("emit order %s: unknown outcome %q", res.OrderID, res.Outcome)
	}
	if err != nil {
		return d, fmt.Errorf("emit order %s: %w", res.OrderID, err)
	}
	if err := r.Write(ctx, msgs...); err != nil {
		return d, fmt.Errorf("emit %s events of order %s: %w", res.Outcome, res.OrderID, err)
	}
	return d, nil
}

func (r *Router) allocatedMessages(in kafka.Message, res allocation.Result, now time.Time) ([]kafka.Message, error) {
	allocated, err := r.event(in, r.OrdersTopic, res.OrderID, events.TypeContainerAllocated, res.OrderID,
		events.ContainerAllocated{OrderID: res.OrderID, ContainerID: res.ContainerID}, now)
	if err != nil {
		return nil, err
	}
	assigned, err := r.event(in, r.ContainersTopic, res.ContainerID, events.TypeContainerAssignedToOrder, res.OrderID,
		events.ContainerAssignedToOrder{ContainerID: res.ContainerID, OrderID: res.OrderID}, now)
	if err != nil {
		return nil, err
	}
	return []kafka.Message{allocated, assigned}, nil
}

func (r *Router) rejectedMessages(in kafka.Message, res allocation.Result, now time.Time) ([]kafka.Message, error) {
	rejected, err := r.event(in, r.OrdersTopic, res.OrderID, events.TypeOrderRejected, res.OrderID,
		events.OrderRejected{OrderID: res.OrderID, Reason: res.Reason}, now)
	if err != nil {
		return nil, err
	}
	return []kafka.Message{rejected}, nil
}

// event builds one CloudEvents record. The subject is always the order id,
// so the event id (derived from subject and type) is the same however
// often the order is processed.
func (r *Router) event(in kafka.Message, topic, key, eventType, orderID string, data any, now time.Time) (kafka.Message, error) {
	env, err := events.New(r.Source, eventType, orderID, data, now)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("build %s: %w", eventType, err)
	}
	value, err := events.Encode(env)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encode %s: %w", eventType, err)
	}
	headers := []kafka.Header{{Key: contentTypeHeader, Value: []byte(structuredContentType)}}
	if tp, ok := retrymeta.Get(in.Headers, retrymeta.HeaderTraceParent); ok {
		headers = append(headers, kafka.Header{Key: retrymeta.HeaderTraceParent, Value: []byte(tp)})
	}
	return kafka.Message{Topic: topic, Key: []byte(key), Value: value, Headers: headers}, nil
}

// The CloudEvents Kafka binding marks a structured-mode record with this
// content type, so a consumer can tell it from a binary-mode one.
const (
	contentTypeHeader     = "content-type"
	structuredContentType = "application/cloudevents+json; charset=UTF-8"
)

// now is truncated to milliseconds, the resolution of the time headers, as
// the pattern's router does.
func (r *Router) now() time.Time {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	return time.UnixMilli(now().UnixMilli()).UTC()
}
