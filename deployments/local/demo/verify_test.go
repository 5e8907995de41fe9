package demo

import (
	"slices"
	"strings"
	"testing"

	"github.com/reeferdlq/reefer-dlq/deployments/local/ordergen"
	"github.com/reeferdlq/reefer-dlq/deployments/local/tracker"
)

// TestTopicChecksCatchWhatTheInvariantForbids builds tracker reports by hand,
// each with one thing wrong, and expects exactly the matching check to fail.
func TestTopicChecksCatchWhatTheInvariantForbids(t *testing.T) {
	orders := map[string]ordergen.Order{
		"O-1":      {Expect: ordergen.Allocated},
		"O-2":      {Expect: ordergen.Rejected},
		"O-PERM-1": {Expect: ordergen.DeadLettered},
	}
	ids := []string{"O-1", "O-2", "O-PERM-1"}
	good := func() tracker.Report {
		return tracker.Report{
			Orders: map[string]tracker.Order{
				"O-1":      {ID: "O-1", Created: true, Stage: tracker.Allocated, Outcomes: 1, Containers: []string{"C-1"}, Assigned: []string{"C-1"}},
				"O-2":      {ID: "O-2", Created: true, Stage: tracker.Rejected, Outcomes: 1},
				"O-PERM-1": {ID: "O-PERM-1", Created: true, Stage: tracker.DeadLettered, ErrorClass: "permanent", DeadLetters: 1},
			},
			Containers: map[string][]string{"C-1": {"O-1"}},
		}
	}
	tests := []struct {
		name   string
		change func(*tracker.Report)
		failed []string // the checks that must fail, by a word of their name
	}{
		{"all good", func(*tracker.Report) {}, nil},
		{"lost before the orders topic", func(r *tracker.Report) { delete(r.Orders, "O-2") }, []string{"read back", "exactly one", "deserved"}},
		{"stuck in retry", func(r *tracker.Report) {
			o := r.Orders["O-1"]
			o.Stage, o.Attempt, o.Containers, o.Assigned = tracker.Retrying, 2, nil, nil
			r.Orders["O-1"] = o
			r.Containers = nil
		}, []string{"exactly one", "deserved"}},
		{"allocated and rejected", func(r *tracker.Report) {
			o := r.Orders["O-1"]
			o.Outcomes = 2
			r.Orders["O-1"] = o
		}, []string{"exactly one"}},
		{"transient dead letter left", func(r *tracker.Report) {
			o := r.Orders["O-PERM-1"]
			o.ErrorClass = "transient"
			r.Orders["O-PERM-1"] = o
		}, []string{"exactly one", "deserved"}},
		{"wrong outcome", func(r *tracker.Report) {
			o := r.Orders["O-2"]
			o.Stage = tracker.Allocated
			r.Orders["O-2"] = o
		}, []string{"deserved", "allocated twice"}},
		{"two containers for one order", func(r *tracker.Report) {
			o := r.Orders["O-1"]
			o.Containers = []string{"C-1", "C-2"}
			r.Orders["O-1"] = o
		}, []string{"allocated twice"}},
		{"one container for two orders", func(r *tracker.Report) {
			r.Containers["C-1"] = []string{"O-1", "O-9"}
		}, []string{"allocated twice"}},
		{"unreadable record", func(r *tracker.Report) { r.Unreadable = []string{"orders/0@3: bad json"} }, []string{"decoded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := good()
			tt.change(&rep)
			checks, _ := topicChecks(rep, ids, orders)
			for _, c := range checks {
				shouldFail := slices.ContainsFunc(tt.failed, func(w string) bool { return strings.Contains(c.Name, w) })
				if c.OK == shouldFail {
					t.Errorf("check %q: ok=%v (%s); want ok=%v", c.Name, c.OK, c.Detail, !shouldFail)
				}
			}
		})
	}
}
