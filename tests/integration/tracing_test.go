package integration_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
	"github.com/reeferdlq/reefer-dlq/tests/integration/harness"
	"github.com/reeferdlq/reefer-dlq/tests/integration/outcomes"
)

// TestScenarioTraced: the services export their spans to an OTLP
// receiver of the test's own. One order fails once (503) in
// reefer-manager and is allocated by order-retry. Its story is one trace:
// reefer-manager's attempt 1 (kafkaretry.attempt 1, route retry, error
// class transient) -> its hand-off to the retry topic -> order-retry's
// attempt 2 (a child of that hand-off, linked to attempt 1) -> the
// inventory call (a client span child of attempt 2, continued by the
// mock's server span) -> the events.
func TestScenarioTraced(t *testing.T) {
	recv := harness.StartTraceReceiver(t)
	s := harness.Start(t, harness.Options{
		Faults:       faults.Profile{FailFirst: &faults.FailFirst{Count: 1, Status: 503}},
		Env:          recv.Env(),
		InventoryEnv: recv.Env(),
	})
	orders := harness.Orders("O-TRACED", 1)
	id := orders[0].OrderID
	if err := s.ProduceOrders(timeout(t, 30*time.Second), orders...); err != nil {
		t.Fatal(err)
	}
	r := settle(t, s, []string{id}, 2*time.Minute)
	if got := len(r.States([]string{id})[outcomes.Allocated]); got != 1 {
		t.Fatalf("order %s not allocated: %s", id, r.Order(id).History())
	}

	var story traced
	err := recv.Wait(timeout(t, time.Minute), func(spans []harness.Span) error {
		var err error
		story, err = findStory(spans, id, s.Topics)
		return err
	})
	if err != nil {
		for _, sp := range recv.Spans() {
			t.Logf("span %s/%s %q parent %s trace %s attrs %v links %v", sp.Service, sp.Kind, sp.Name, sp.ParentSpanID, sp.TraceID, sp.Attrs, sp.Links)
		}
		t.Fatal(err)
	}
	a1, a2 := story.attempt1, story.attempt2
	for _, c := range []struct {
		span      harness.Span
		key, want string
	}{
		{a1, "messaging.system", "kafka"},
		{a1, "messaging.operation.type", "process"},
		{a1, "messaging.destination.name", s.Topics.Orders},
		{a1, "messaging.kafka.message.key", id},
		{a1, "kafkaretry.attempt", "1"},
		{a1, "kafkaretry.route", "retry"},
		{a1, "kafkaretry.error.class", "transient"},
		{a2, "messaging.destination.name", s.Topics.Retry},
		{a2, "kafkaretry.attempt", "2"},
		{a2, "kafkaretry.route", "allocated"},
	} {
		if got := c.span.Attrs[c.key]; got != c.want {
			t.Errorf("%s span %q: %s = %q, want %q", c.span.Service, c.span.Name, c.key, got, c.want)
		}
	}
	for _, sp := range []harness.Span{a1, a2} {
		for _, key := range []string{"messaging.destination.partition.id", "messaging.kafka.offset", "messaging.consumer.group.name"} {
			if sp.Attrs[key] == "" {
				t.Errorf("%s span %q: no %s", sp.Service, sp.Name, key)
			}
		}
	}
	if !a1.StatusError {
		t.Errorf("attempt 1's span: status not error, want error (the attempt failed)")
	}
	if a2.TraceID != a1.TraceID {
		t.Errorf("attempt 2 in trace %s, attempt 1 in %s: want one trace", a2.TraceID, a1.TraceID)
	}
	if a2.ParentSpanID != story.handoff.SpanID {
		t.Errorf("attempt 2's parent is %s, want the hand-off span %s", a2.ParentSpanID, story.handoff.SpanID)
	}
}

// traced is the spans of one order's story.
type traced struct {
	attempt1, handoff, attempt2 harness.Span
}

// findStory finds the spans TestScenarioTraced asserts on, or says which
// one is missing.
func findStory(spans []harness.Span, orderID string, topics harness.Topics) (traced, error) {
	var st traced
	find := func(what string, match func(harness.Span) bool) (harness.Span, error) {
		for _, sp := range spans {
			if match(sp) {
				return sp, nil
			}
		}
		return harness.Span{}, errors.New("no span yet: " + what)
	}
	var err error
	// The hand-off first: reefer-manager also reads the events emitted
	// for the order on the orders topic (and skips them).
	if st.handoff, err = find("reefer-manager's producer span to "+topics.Retry, func(sp harness.Span) bool {
		return sp.Service == "reefer-manager" && sp.Kind == "producer" && sp.Attrs["messaging.kafka.message.key"] == orderID &&
			sp.Attrs["messaging.destination.name"] == topics.Retry
	}); err != nil {
		return st, err
	}
	if st.attempt1, err = find("reefer-manager's consumer span of attempt 1, parent of the hand-off", func(sp harness.Span) bool {
		return sp.Service == "reefer-manager" && sp.Kind == "consumer" && sp.SpanID == st.handoff.ParentSpanID
	}); err != nil {
		return st, err
	}
	if st.attempt2, err = find("order-retry's consumer span of attempt 2", func(sp harness.Span) bool {
		return sp.Service == "order-retry" && sp.Kind == "consumer" && sp.Attrs["messaging.kafka.message.key"] == orderID
	}); err != nil {
		return st, err
	}
	linked := false
	for _, l := range st.attempt2.Links {
		linked = linked || (l.SpanID == st.attempt1.SpanID && l.TraceID == st.attempt1.TraceID && l.Attrs["kafkaretry.link"] == "previous-attempt")
	}
	if !linked {
		return st, fmt.Errorf("attempt 2's span has links %v, want one to attempt 1's span %s (kafkaretry.link previous-attempt)", st.attempt2.Links, st.attempt1.SpanID)
	}
	for _, a := range []struct {
		attempt harness.Span
		status  string
	}{{st.attempt1, "503"}, {st.attempt2, "200"}} {
		call, err := find(fmt.Sprintf("%s's inventory call, a client span child of %q", a.attempt.Service, a.attempt.Name), func(sp harness.Span) bool {
			return sp.Service == a.attempt.Service && sp.Kind == "client" && sp.ParentSpanID == a.attempt.SpanID &&
				strings.HasPrefix(sp.Name, "PUT ")
		})
		if err != nil {
			return st, err
		}
		if got := call.Attrs["http.response.status_code"]; got != a.status {
			return st, fmt.Errorf("%s's inventory call: status %s, want %s", a.attempt.Service, got, a.status)
		}
		if _, err := find("the inventory mock's server span, child of "+a.attempt.Service+"'s call", func(sp harness.Span) bool {
			return sp.Service == "container-inventory-mock" && sp.Kind == "server" && sp.ParentSpanID == call.SpanID && sp.TraceID == call.TraceID
		}); err != nil {
			return st, err
		}
		if _, err := find("the reservation's database span, child of "+a.attempt.Service+"'s attempt", func(sp harness.Span) bool {
			return sp.Service == a.attempt.Service && sp.Name == "reserve reefer" && sp.ParentSpanID == a.attempt.SpanID
		}); err != nil {
			return st, err
		}
	}
	for _, topic := range []string{topics.Orders, topics.Containers} {
		if _, err := find("order-retry's event to "+topic+", child of attempt 2", func(sp harness.Span) bool {
			return sp.Service == "order-retry" && sp.Kind == "producer" && sp.ParentSpanID == st.attempt2.SpanID &&
				sp.Attrs["messaging.destination.name"] == topic
		}); err != nil {
			return st, err
		}
	}
	return st, nil
}
