package orders_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff/handofftest"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
)

// allocatorFunc adapts a function to orders.Allocator.
type allocatorFunc func(ctx context.Context, order events.OrderCreated) (allocation.Result, error)

func (f allocatorFunc) Allocate(ctx context.Context, order events.OrderCreated) (allocation.Result, error) {
	return f(ctx, order)
}

func answer(res allocation.Result, err error) allocatorFunc {
	return func(context.Context, events.OrderCreated) (allocation.Result, error) { return res, err }
}

// eventRecord is a well-formed event of another type than OrderCreated.
func eventRecord(t *testing.T, eventType string, data any) kafka.Message {
	t.Helper()
	env, err := events.New("/test/orders", eventType, "O-1", data, now)
	if err != nil {
		t.Fatal(err)
	}
	value, err := events.Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Topic: "orders", Partition: 1, Offset: 5, Key: []byte("O-1"), Value: value}
}

func TestProcessRoutesEveryOutcome(t *testing.T) {
	allocated := allocation.Result{Outcome: allocation.Allocated, OrderID: "O-1", ContainerID: "C-0001"}
	rejected := allocation.Result{Outcome: allocation.Rejected, OrderID: "O-1", Reason: "too big"}
	never := func(t *testing.T) allocatorFunc {
		return func(context.Context, events.OrderCreated) (allocation.Result, error) {
			t.Error("the allocator ran for a record that is not an order")
			return allocation.Result{}, nil
		}
	}
	badOrder := func(t *testing.T) kafka.Message {
		// A well-formed envelope whose data breaks the OrderCreated rules.
		m := orderRecord(t, "O-1")
		env, err := events.Decode(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		env.Data = []byte(`{"orderID":"O-1","productID":"P","customerID":"C","quantity":0,"pickupCity":"A","destinationCity":"B","expectedDeliveryDate":"2026-04-01"}`)
		m.Value, err = events.Encode(env)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	tests := []struct {
		name       string
		record     func(t *testing.T) kafka.Message
		prev       retrymeta.Meta
		allocator  func(t *testing.T) allocatorFunc
		skipOther  bool
		wantRoute  handoff.Route
		wantReason retrymeta.Reason
		wantTopics []string
		wantOrder  string
	}{
		{"allocated order emits both events",
			func(t *testing.T) kafka.Message { return orderRecord(t, "O-1") }, retrymeta.Meta{},
			func(*testing.T) allocatorFunc { return answer(allocated, nil) }, true,
			handoff.RouteAllocated, "", []string{"orders", "containers"}, "O-1"},
		{"rejected order emits OrderRejected",
			func(t *testing.T) kafka.Message { return orderRecord(t, "O-1") }, retrymeta.Meta{},
			func(*testing.T) allocatorFunc { return answer(rejected, nil) }, true,
			handoff.RouteRejected, "", []string{"orders"}, "O-1"},
		{"transient failure goes to the retry topic",
			func(t *testing.T) kafka.Message { return orderRecord(t, "O-1") }, retrymeta.Meta{},
			func(*testing.T) allocatorFunc {
				return answer(allocation.Result{}, failure.NewTransient("http-503", errors.New("503")))
			}, true,
			handoff.RouteRetry, "", []string{"order-retries"}, "O-1"},
		{"permanent failure is dead-lettered",
			func(t *testing.T) kafka.Message { return orderRecord(t, "O-1") }, retrymeta.Meta{},
			func(*testing.T) allocatorFunc {
				return answer(allocation.Result{}, failure.NewPermanent("http-422", errors.New("422")))
			}, true,
			handoff.RouteDeadLetter, retrymeta.PermanentError, []string{"order-dead-letter"}, "O-1"},
		{"last attempt of a retried order is dead-lettered",
			func(t *testing.T) kafka.Message { return orderRecord(t, "O-1") }, retrymeta.Meta{Attempt: 4, OriginalTopic: "orders"},
			func(*testing.T) allocatorFunc {
				return answer(allocation.Result{}, failure.NewTransient("http-503", errors.New("503")))
			}, false,
			handoff.RouteDeadLetter, retrymeta.MaxAttempts, []string{"order-dead-letter"}, "O-1"},
		{"undecodable record is poison",
			func(*testing.T) kafka.Message {
				return kafka.Message{Topic: "orders", Key: []byte("O-1"), Value: []byte("{oops")}
			}, retrymeta.Meta{},
			never, true,
			handoff.RouteDeadLetter, retrymeta.Poison, []string{"order-dead-letter"}, ""},
		{"order breaking the data rules is poison",
			badOrder, retrymeta.Meta{},
			never, true,
			handoff.RouteDeadLetter, retrymeta.Poison, []string{"order-dead-letter"}, "O-1"},
		{"other event type is skipped when asked",
			func(t *testing.T) kafka.Message {
				return eventRecord(t, events.TypeContainerAllocated, events.ContainerAllocated{OrderID: "O-1", ContainerID: "C-1"})
			}, retrymeta.Meta{},
			never, true,
			handoff.RouteSkipped, "", nil, "O-1"},
		{"other event type is poison otherwise",
			func(t *testing.T) kafka.Message {
				return eventRecord(t, events.TypeOrderRejected, events.OrderRejected{OrderID: "O-1", Reason: "x"})
			}, retrymeta.Meta{},
			never, false,
			handoff.RouteDeadLetter, retrymeta.Poison, []string{"order-dead-letter"}, "O-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &handofftest.Writer{}
			p := &orders.Processor{Allocator: tt.allocator(t), Router: newRouter(w), SkipOtherTypes: tt.skipOther}
			d, err := p.Process(context.Background(), tt.record(t), tt.prev)
			if err != nil {
				t.Fatal(err)
			}
			if d.Route != tt.wantRoute || d.Reason != tt.wantReason || d.OrderID != tt.wantOrder {
				t.Errorf("decision = route %q reason %q order %q; want %q %q %q", d.Route, d.Reason, d.OrderID, tt.wantRoute, tt.wantReason, tt.wantOrder)
			}
			var topics []string
			for _, call := range w.Calls() {
				for _, m := range call {
					topics = append(topics, m.Topic)
				}
			}
			if len(w.Calls()) > 1 {
				t.Errorf("%d WriteMessages calls, want at most 1 per outcome", len(w.Calls()))
			}
			if len(topics) != len(tt.wantTopics) {
				t.Fatalf("wrote to %v, want %v", topics, tt.wantTopics)
			}
			for i := range topics {
				if topics[i] != tt.wantTopics[i] {
					t.Errorf("wrote to %v, want %v", topics, tt.wantTopics)
				}
			}
		})
	}
}

func TestProcessPassesTheDecodedOrderToTheAllocator(t *testing.T) {
	var got events.OrderCreated
	p := &orders.Processor{
		Allocator: allocatorFunc(func(_ context.Context, o events.OrderCreated) (allocation.Result, error) {
			got = o
			return allocation.Result{Outcome: allocation.Allocated, OrderID: o.OrderID, ContainerID: "C-1"}, nil
		}),
		Router: newRouter(&handofftest.Writer{}),
	}
	if _, err := p.Process(context.Background(), orderRecord(t, "O-9"), retrymeta.Meta{}); err != nil {
		t.Fatal(err)
	}
	if got.OrderID != "O-9" || got.Quantity != 10 || got.PickupCity != "Oakland" {
		t.Errorf("allocator got %+v", got)
	}
}

// TestProcessInterruptedHandsNothingOff: when the caller's context ends
// while the order is allocated (the service is shutting down), the
// failure is not the order's; nothing is written and the record must stay
// uncommitted.
func TestProcessInterruptedHandsNothingOff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	w := &handofftest.Writer{}
	p := &orders.Processor{
		Allocator: allocatorFunc(func(ctx context.Context, _ events.OrderCreated) (allocation.Result, error) {
			cancel()
			<-ctx.Done()
			return allocation.Result{}, failure.NewTransient("canceled", ctx.Err())
		}),
		Router: newRouter(w),
	}
	_, err := p.Process(ctx, orderRecord(t, "O-1"), retrymeta.Meta{})
	if !errors.Is(err, orders.ErrInterrupted) || !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want ErrInterrupted wrapping context.Canceled", err)
	}
	if len(w.Calls()) != 0 {
		t.Errorf("wrote %d times, want nothing handed off", len(w.Calls()))
	}
}

// TestProcessRunsTheRealUseCase wires the Processor to allocation.Service
// with in-memory dependencies, as the services do.
func TestProcessRunsTheRealUseCase(t *testing.T) {
	tests := []struct {
		name      string
		store     storeFunc
		inventory inventoryFunc
		want      handoff.Route
	}{
		{"both steps succeed", func(context.Context, string, int) (string, error) { return "C-0003", nil },
			func(context.Context, string, string) error { return nil }, handoff.RouteAllocated},
		{"no capacity", func(context.Context, string, int) (string, error) { return "", allocation.ErrNoCapacity },
			func(context.Context, string, string) error { return nil }, handoff.RouteRejected},
		{"inventory down", func(context.Context, string, int) (string, error) { return "C-0003", nil },
			func(context.Context, string, string) error {
				return failure.NewTransient("http-503", errors.New("503"))
			}, handoff.RouteRetry},
		{"inventory refuses", func(context.Context, string, int) (string, error) { return "C-0003", nil },
			func(context.Context, string, string) error {
				return failure.NewPermanent("http-422", errors.New("422"))
			}, handoff.RouteDeadLetter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &orders.Processor{
				Allocator: allocation.Service{Store: tt.store, Inventory: tt.inventory},
				Router:    newRouter(&handofftest.Writer{}),
			}
			d, err := p.Process(context.Background(), orderRecord(t, "O-1"), retrymeta.Meta{})
			if err != nil {
				t.Fatal(err)
			}
			if d.Route != tt.want {
				t.Errorf("route = %s, want %s (decision %+v)", d.Route, tt.want, d)
			}
		})
	}
}

type storeFunc func(ctx context.Context, orderID string, quantity int) (string, error)

func (f storeFunc) Allocate(ctx context.Context, orderID string, quantity int) (string, error) {
	return f(ctx, orderID, quantity)
}

type inventoryFunc func(ctx context.Context, containerID, orderID string) error

func (f inventoryFunc) Allocate(ctx context.Context, containerID, orderID string) error {
	return f(ctx, containerID, orderID)
}

// TestHandleReadsHeadersThenObserves: Handle is the consumer's handler. It
// reads the record's headers (FirstAttempt by default), hands a record
// whose headers cannot be read off as poison without running the
// allocation, and tells Observe every outcome with the attempt number.
func TestHandleReadsHeadersThenObserves(t *testing.T) {
	allocated := allocation.Result{Outcome: allocation.Allocated, OrderID: "O-1", ContainerID: "C-0001"}
	withHeaders := func(m kafka.Message, h ...kafka.Header) kafka.Message { m.Headers = h; return m }
	tests := []struct {
		name        string
		read        func(kafka.Message, time.Time) (retrymeta.Meta, error)
		headers     []kafka.Header
		wantRoute   handoff.Route
		wantAttempt int
		wantAlloc   bool
	}{
		{"a new order is attempt 1", nil, nil, handoff.RouteAllocated, 1, true},
		{"an unreadable redrive count is poison", nil,
			[]kafka.Header{{Key: retrymeta.HeaderRedriveCount, Value: []byte("many")}}, handoff.RouteDeadLetter, 0, false},
		{"the service's reader decides the attempt",
			func(kafka.Message, time.Time) (retrymeta.Meta, error) { return retrymeta.Meta{Attempt: 3}, nil },
			nil, handoff.RouteAllocated, 4, true},
		{"the service's reader refuses the record",
			func(kafka.Message, time.Time) (retrymeta.Meta, error) {
				return retrymeta.Meta{Attempt: 2}, errors.New("x-retry-due-at missing")
			},
			nil, handoff.RouteDeadLetter, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ran := false
			var seen []orders.Handled
			p := &orders.Processor{
				Allocator: allocatorFunc(func(context.Context, events.OrderCreated) (allocation.Result, error) {
					ran = true
					return allocated, nil
				}),
				Router:      newRouter(&handofftest.Writer{}),
				ReadHeaders: tt.read,
				Observe:     func(_ context.Context, h orders.Handled) { seen = append(seen, h) },
			}
			if err := p.Handle(context.Background(), withHeaders(orderRecord(t, "O-1"), tt.headers...)); err != nil {
				t.Fatal(err)
			}
			if ran != tt.wantAlloc {
				t.Errorf("allocation ran: %v, want %v", ran, tt.wantAlloc)
			}
			if len(seen) != 1 {
				t.Fatalf("Observe called %d times, want once", len(seen))
			}
			h := seen[0]
			if h.Err != nil || h.Decision.Route != tt.wantRoute || h.Attempt != tt.wantAttempt {
				t.Errorf("observed route %q attempt %d err %v; want %q %d nil", h.Decision.Route, h.Attempt, h.Err, tt.wantRoute, tt.wantAttempt)
			}
			if string(h.Record.Key) != "O-1" {
				t.Errorf("observed record %+v, want the one handled", h.Record)
			}
		})
	}
}
