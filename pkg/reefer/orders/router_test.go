package orders_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff/handofftest"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
)

// now is the fixed clock of every test.
var now = handofftest.Now

// newRouter returns the router of handofftest.NewRouter (a fixed clock,
// exact exponential delays) with the order's event topics.
func newRouter(w handoff.Writer) *orders.Router {
	return &orders.Router{Router: *handofftest.NewRouter(w), OrdersTopic: "orders", ContainersTopic: "containers", Source: "/test/handoff"}
}

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// orderRecord is an OrderCreated record as reefer-manager reads it.
func orderRecord(t *testing.T, orderID string, headers ...kafka.Header) kafka.Message {
	t.Helper()
	env, err := events.New("/test/orders", events.TypeOrderCreated, orderID, events.OrderCreated{
		OrderID: orderID, ProductID: "P-1", CustomerID: "CU-1", Quantity: 10,
		PickupCity: "Oakland", DestinationCity: "Shanghai", ExpectedDeliveryDate: "2026-04-01",
	}, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	value, err := events.Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{
		Topic: "orders", Partition: 3, Offset: 42,
		Key: []byte(orderID), Value: value, Headers: headers,
		Time: now.Add(-time.Minute),
	}
}

func header(key, value string) kafka.Header { return kafka.Header{Key: key, Value: []byte(value)} }

func TestEmitWritesTheOutcomeEventsInOneCall(t *testing.T) {
	type event struct {
		Topic, Key, Type, ID, Subject string
		Data                          string
		TraceParent                   string
	}
	tests := []struct {
		name    string
		res     allocation.Result
		headers []kafka.Header
		route   handoff.Route
		want    []event
	}{
		{
			name:    "allocated emits ContainerAllocated and ContainerAssignedToOrder",
			res:     allocation.Result{Outcome: allocation.Allocated, OrderID: "O-1", ContainerID: "C-0007"},
			headers: []kafka.Header{header(retrymeta.HeaderTraceParent, traceparent)},
			route:   handoff.RouteAllocated,
			want: []event{
				{"orders", "O-1", events.TypeContainerAllocated, events.ID("O-1", events.TypeContainerAllocated), "O-1",
					`{"orderID":"O-1","containerID":"C-0007"}`, traceparent},
				{"containers", "C-0007", events.TypeContainerAssignedToOrder, events.ID("O-1", events.TypeContainerAssignedToOrder), "O-1",
					`{"containerID":"C-0007","orderID":"O-1"}`, traceparent},
			},
		},
		{
			name:  "rejected emits OrderRejected",
			res:   allocation.Result{Outcome: allocation.Rejected, OrderID: "O-2", Reason: "no free reefer can hold quantity 500"},
			route: handoff.RouteRejected,
			want: []event{
				{"orders", "O-2", events.TypeOrderRejected, events.ID("O-2", events.TypeOrderRejected), "O-2",
					`{"orderID":"O-2","reason":"no free reefer can hold quantity 500"}`, ""},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &handofftest.Writer{}
			in := orderRecord(t, tt.res.OrderID, tt.headers...)
			d, err := newRouter(w).Emit(context.Background(), in, tt.res)
			if err != nil {
				t.Fatal(err)
			}
			if d.Route != tt.route || d.OrderID != tt.res.OrderID || d.ContainerID != tt.res.ContainerID {
				t.Errorf("decision = %+v, want route %s for %+v", d, tt.route, tt.res)
			}
			var got []event
			for _, m := range w.Only(t) {
				env, err := events.Decode(m.Value)
				if err != nil {
					t.Fatalf("emitted event does not decode: %v", err)
				}
				if !env.Time.Equal(now) || env.Source != "/test/handoff" {
					t.Errorf("event time %s source %q, want %s and the router's source", env.Time, env.Source, now)
				}
				tp, _ := retrymeta.Get(m.Headers, retrymeta.HeaderTraceParent)
				if ct, _ := retrymeta.Get(m.Headers, "content-type"); !strings.HasPrefix(ct, "application/cloudevents+json") {
					t.Errorf("content-type header = %q, want application/cloudevents+json", ct)
				}
				got = append(got, event{m.Topic, string(m.Key), env.Type, env.ID, env.Subject, string(env.Data), tp})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEmitSameOrderTwiceGivesTheSameEventIDs(t *testing.T) {
	w := &handofftest.Writer{}
	r := newRouter(w)
	res := allocation.Result{Outcome: allocation.Allocated, OrderID: "O-1", ContainerID: "C-0001"}
	for range 2 {
		if _, err := r.Emit(context.Background(), orderRecord(t, "O-1"), res); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(msgs []kafka.Message) []string {
		var out []string
		for _, m := range msgs {
			env, err := events.Decode(m.Value)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, env.ID)
		}
		return out
	}
	if diff := cmp.Diff(ids(w.Calls()[0]), ids(w.Calls()[1])); diff != "" {
		t.Errorf("a repeated outcome has other event ids (-first +second):\n%s", diff)
	}
}

func TestEmitRejectsAnUnknownOutcome(t *testing.T) {
	w := &handofftest.Writer{}
	_, err := newRouter(w).Emit(context.Background(), orderRecord(t, "O-1"), allocation.Result{OrderID: "O-1"})
	if err == nil || len(w.Calls()) != 0 {
		t.Fatalf("Emit with no outcome: err %v, %d writes; want an error and no write", err, len(w.Calls()))
	}
}

// TestFailRoutesByClassAndAttempt covers every branch of Fail and every
// header it writes.

func TestEmitWriteFailureIsReturned(t *testing.T) {
	brokerDown := errors.New("broker unreachable")
	r := newRouter(handofftest.Failing(brokerDown))
	_, err := r.Emit(context.Background(), orderRecord(t, "O-1"), allocation.Result{Outcome: allocation.Allocated, OrderID: "O-1", ContainerID: "C-1"})
	if !errors.Is(err, brokerDown) {
		t.Errorf("error = %v, want it to wrap the writer's error (the record must not be committed)", err)
	}
}

func TestValidateNamesTheEventsFields(t *testing.T) {
	err := (&orders.Router{}).Validate()
	if err == nil {
		t.Fatal("Validate of an empty Router: nil error")
	}
	for _, want := range []string{"Writer", "OrdersTopic", "ContainersTopic", "Source"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %q does not name %s", err, want)
		}
	}
}
