package outcomes_test

import (
	"context"
	"fmt"
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
	"github.com/reeferdlq/reefer-dlq/tests/integration/outcomes"
)

// broker starts an embedded broker for the test and returns a client
// configuration for it.
func broker(t *testing.T) kafkaclient.Config {
	t.Helper()
	b, err := devbroker.Start(t.Context(), devbroker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return kafkaclient.Config{Brokers: []string{b.Addr()}}
}

// topics creates the four topics under prefix.
func topics(t *testing.T, cfg kafkaclient.Config, prefix string) outcomes.Topics {
	t.Helper()
	tp := outcomes.Topics{Orders: prefix + ".orders", Containers: prefix + ".containers", Retry: prefix + ".retries", DeadLetter: prefix + ".dlq"}
	err := cfg.EnsureTopics(t.Context(), map[string]int{tp.Orders: 3, tp.Containers: 3, tp.Retry: 3, tp.DeadLetter: 1})
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func event(t *testing.T, topic, key, eventType, orderID string, data any) kafka.Message {
	t.Helper()
	env, err := events.New("/test", eventType, orderID, data, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	v, err := events.Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Topic: topic, Key: []byte(key), Value: v}
}

// Record builders, one per kind of record the suite writes.
type builder func(t *testing.T, tp outcomes.Topics) []kafka.Message

func created(id string) builder {
	return func(t *testing.T, tp outcomes.Topics) []kafka.Message {
		return []kafka.Message{event(t, tp.Orders, id, events.TypeOrderCreated, id, events.OrderCreated{
			OrderID: id, ProductID: "P", CustomerID: "C", Quantity: 1, PickupCity: "A", DestinationCity: "B", ExpectedDeliveryDate: "2031-01-01"})}
	}
}

func allocated(id, container string) builder {
	return func(t *testing.T, tp outcomes.Topics) []kafka.Message {
		return []kafka.Message{
			event(t, tp.Orders, id, events.TypeContainerAllocated, id, events.ContainerAllocated{OrderID: id, ContainerID: container}),
			event(t, tp.Containers, container, events.TypeContainerAssignedToOrder, id, events.ContainerAssignedToOrder{ContainerID: container, OrderID: id}),
		}
	}
}

func assignedOnly(id, container string) builder {
	return func(t *testing.T, tp outcomes.Topics) []kafka.Message {
		return []kafka.Message{event(t, tp.Containers, container, events.TypeContainerAssignedToOrder, id, events.ContainerAssignedToOrder{ContainerID: container, OrderID: id})}
	}
}

func allocatedOnly(id, container string) builder {
	return func(t *testing.T, tp outcomes.Topics) []kafka.Message {
		return []kafka.Message{event(t, tp.Orders, id, events.TypeContainerAllocated, id, events.ContainerAllocated{OrderID: id, ContainerID: container})}
	}
}

func rejected(id string) builder {
	return func(t *testing.T, tp outcomes.Topics) []kafka.Message {
		return []kafka.Message{event(t, tp.Orders, id, events.TypeOrderRejected, id, events.OrderRejected{OrderID: id, Reason: "too big"})}
	}
}

func hop(id string, dead bool, m retrymeta.Meta) builder {
	return func(t *testing.T, tp outcomes.Topics) []kafka.Message {
		topic := tp.Retry
		if dead {
			topic = tp.DeadLetter
		}
		return []kafka.Message{{Topic: topic, Key: []byte(id), Value: []byte("{}"), Headers: retrymeta.Apply(nil, m)}}
	}
}

func retried(id string, attempt, redrives int) builder {
	now := time.Now()
	return hop(id, false, retrymeta.Meta{Attempt: attempt, DueAt: now, FirstFailureAt: now, LastFailureAt: now,
		ErrorClass: failure.Transient, ErrorMessage: "503", OriginalTopic: "orders", RedriveCount: redrives})
}

func deadLettered(id string, reason retrymeta.Reason) builder {
	now := time.Now()
	return hop(id, true, retrymeta.Meta{Attempt: 5, DueAt: now, FirstFailureAt: now, LastFailureAt: now,
		ErrorClass: failure.Transient, ErrorMessage: "503", OriginalTopic: "orders", DLQReason: reason, DeadLetteredAt: now})
}

func foreign(key string) builder {
	return func(t *testing.T, tp outcomes.Topics) []kafka.Message {
		return []kafka.Message{{Topic: tp.Orders, Key: []byte(key), Value: []byte("not an event")}}
	}
}

func TestCollectJoinsTheTopicsAndFindsEveryInconsistency(t *testing.T) {
	cfg := broker(t)
	tests := []struct {
		name      string
		records   []builder
		ids       []string
		wantState map[string]outcomes.State
		// wantProblems are substrings, one per expected problem.
		wantProblems []string
		wantDups     map[string]int
	}{
		{
			name:      "allocated once, delivered twice",
			records:   []builder{created("O-1"), allocated("O-1", "C-1"), allocated("O-1", "C-1")},
			ids:       []string{"O-1"},
			wantState: map[string]outcomes.State{"O-1": outcomes.Allocated},
			wantDups:  map[string]int{events.TypeContainerAllocated: 1, events.TypeContainerAssignedToOrder: 1},
		},
		{
			name:         "allocated to two reefers, which one event id would hide",
			records:      []builder{allocated("O-1", "C-1"), allocated("O-1", "C-2")},
			ids:          []string{"O-1"},
			wantState:    map[string]outcomes.State{"O-1": outcomes.Allocated},
			wantProblems: []string{"allocated to 2 reefers"},
			wantDups:     map[string]int{events.TypeContainerAllocated: 1, events.TypeContainerAssignedToOrder: 1},
		},
		{
			name:         "a reefer allocated to two orders",
			records:      []builder{allocated("O-1", "C-1"), allocated("O-2", "C-1")},
			ids:          []string{"O-1", "O-2"},
			wantState:    map[string]outcomes.State{"O-1": outcomes.Allocated, "O-2": outcomes.Allocated},
			wantProblems: []string{"reefer C-1 is allocated to 2 orders"},
		},
		{
			name:         "the two success events disagree",
			records:      []builder{allocatedOnly("O-1", "C-1"), assignedOnly("O-1", "C-2")},
			ids:          []string{"O-1"},
			wantState:    map[string]outcomes.State{"O-1": outcomes.Allocated},
			wantProblems: []string{"ContainerAssignedToOrder"},
		},
		{
			name:         "allocated and dead-lettered: two terminal states",
			records:      []builder{retried("O-1", 1, 0), deadLettered("O-1", retrymeta.MaxAttempts), allocated("O-1", "C-1")},
			ids:          []string{"O-1"},
			wantState:    map[string]outcomes.State{"O-1": outcomes.Allocated},
			wantProblems: []string{"both allocated (C-1) and dead-lettered (max-attempts)"},
		},
		{
			name:      "dead-lettered, redriven, then allocated: one terminal state",
			records:   []builder{deadLettered("O-1", retrymeta.MaxAttempts), retried("O-1", 0, 1), allocated("O-1", "C-1")},
			ids:       []string{"O-1"},
			wantState: map[string]outcomes.State{"O-1": outcomes.Allocated},
		},
		{
			name:         "rejected and dead-lettered",
			records:      []builder{rejected("O-1"), deadLettered("O-1", retrymeta.PermanentError)},
			ids:          []string{"O-1"},
			wantState:    map[string]outcomes.State{"O-1": outcomes.Rejected},
			wantProblems: []string{"both rejected and dead-lettered"},
		},
		{
			name:         "allocated and rejected",
			records:      []builder{allocated("O-1", "C-1"), rejected("O-1")},
			ids:          []string{"O-1"},
			wantState:    map[string]outcomes.State{"O-1": outcomes.Allocated},
			wantProblems: []string{"both allocated (C-1) and rejected"},
		},
		{
			name:      "dead-lettered only, or not at all",
			records:   []builder{created("O-1"), created("O-2"), deadLettered("O-1", retrymeta.Poison), foreign("P-1")},
			ids:       []string{"O-1", "O-2", "O-3"},
			wantState: map[string]outcomes.State{"O-1": outcomes.DeadLettered, "O-2": outcomes.Pending, "O-3": outcomes.Pending},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp := topics(t, cfg, fmt.Sprintf("case%d", i))
			w, err := cfg.NewWriter("")
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			for _, b := range tt.records {
				if err := w.WriteMessages(ctx, b(t, tp)...); err != nil {
					t.Fatal(err)
				}
			}

			r, err := outcomes.Collect(ctx, outcomes.Sources{Kafka: cfg, Topics: tp})
			if err != nil {
				t.Fatal(err)
			}
			states := map[string]outcomes.State{}
			for _, id := range tt.ids {
				states[id] = r.Order(id).State()
			}
			if diff := cmp.Diff(tt.wantState, states); diff != "" {
				t.Errorf("states (-want +got):\n%s", diff)
			}
			problems := r.Problems(tt.ids)
			if len(problems) != len(tt.wantProblems) {
				t.Errorf("problems %v, want %d: %q", problems, len(tt.wantProblems), tt.wantProblems)
			}
			for i := range min(len(problems), len(tt.wantProblems)) {
				if !strings.Contains(problems[i].String(), tt.wantProblems[i]) {
					t.Errorf("problem %q does not say %q", problems[i], tt.wantProblems[i])
				}
			}
			if diff := cmp.Diff(tt.wantDups, r.Duplicates, cmpEmptyMapsEqual); diff != "" {
				t.Errorf("duplicates (-want +got):\n%s", diff)
			}
		})
	}
}

var cmpEmptyMapsEqual = cmp.FilterValues(func(a, b map[string]int) bool { return len(a) == 0 && len(b) == 0 }, cmp.Ignore())

func TestLagCountsWhatTheGroupHasNotCommitted(t *testing.T) {
	cfg := broker(t)
	const topic = "lag"
	if err := cfg.EnsureTopics(t.Context(), map[string]int{topic: 1}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	w, err := cfg.NewWriter(topic)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range 5 {
		if err := w.WriteMessages(ctx, kafka.Message{Value: fmt.Appendf(nil, "%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if lag, err := outcomes.Lag(ctx, cfg, "nobody", topic); err != nil || lag != 5 {
		t.Errorf("Lag of a group that never committed = %d, %v; want 5", lag, err)
	}

	r, err := cfg.NewReader(kafka.ReaderConfig{Topic: topic, GroupID: "g"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var last kafka.Message
	for range 3 {
		if last, err = r.FetchMessage(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.CommitMessages(ctx, last); err != nil {
		t.Fatal(err)
	}
	if lag, err := outcomes.Lag(ctx, cfg, "g", topic); err != nil || lag != 2 {
		t.Errorf("Lag after committing 3 of 5 = %d, %v; want 2", lag, err)
	}
	msgs, err := outcomes.ReadTopic(ctx, cfg, topic)
	if err != nil || len(msgs) != 5 {
		t.Errorf("ReadTopic = %d records, %v; want all 5", len(msgs), err)
	}
}
