package chaos

import (
	"strings"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/tests/integration/outcomes"
)

// evidence builds the checker's input by hand: each case below is one way
// the suite can break its promises, and the checker must name it.
type evidence struct{ ev *Evidence }

func newEvidence() *evidence {
	return &evidence{ev: &Evidence{Report: &outcomes.Report{Orders: map[string]*outcomes.Order{}}, Resolutions: map[string]Resolution{}}}
}

func (e *evidence) order(id string) *outcomes.Order {
	o, ok := e.ev.Report.Orders[id]
	if !ok {
		o = &outcomes.Order{ID: id, Created: 1}
		e.ev.Report.Orders[id] = o
	}
	return o
}

// allocated records an allocation every source agrees on.
func (e *evidence) allocated(id, c string) *evidence {
	o := e.order(id)
	o.Containers, o.Assigned, o.DBContainer, o.InventoryContainers = []string{c}, []string{c}, c, []string{c}
	e.ev.Holds = append(e.ev.Holds, Hold{ContainerID: c, OrderID: id})
	return e
}

func (e *evidence) deadLetter(id string, partition int, offset int64, reason retrymeta.Reason, redrives int) *evidence {
	o := e.order(id)
	o.DeadLetters = append(o.DeadLetters, outcomes.Hop{Partition: partition, Offset: offset,
		Meta: retrymeta.Meta{Attempt: 5, DLQReason: reason, RedriveCount: redrives}})
	return e
}

// from names the original record of the order's last dead letter.
func (e *evidence) from(id string, offset int64) *evidence {
	o := e.order(id)
	h := &o.DeadLetters[len(o.DeadLetters)-1]
	h.Meta.OriginalTopic, h.Meta.OriginalPartition, h.Meta.OriginalOffset = Topics.Orders, 4, offset
	return e
}

func (e *evidence) redriven(partition int, offset int64, count int) *evidence {
	var r Resolution
	r.DeadLetter.Partition, r.DeadLetter.Offset = partition, offset
	r.Action, r.RedriveCount, r.At = "redriven", count, time.Now()
	r.Target.Topic = Topics.Orders
	e.ev.Resolutions[position(outcomes.Hop{Partition: partition, Offset: offset})] = r
	return e
}

func TestCheckerNamesEveryBrokenPromise(t *testing.T) {
	tests := []struct {
		name    string
		build   func(e *evidence)
		ids     []string
		foreign map[string][]byte
		// want maps a check to a substring of its one violation; checks
		// not named must pass.
		want map[string]string
	}{
		{
			name:  "allocated once, every source agrees",
			build: func(e *evidence) { e.allocated("O-1", "C-1") },
			ids:   []string{"O-1"},
		},
		{
			name:  "lost: no outcome anywhere",
			build: func(e *evidence) {},
			ids:   []string{"O-1"},
			want:  map[string]string{CheckOneTerminalState: "order O-1: no terminal state: no outcome anywhere"},
		},
		{
			name: "lost after a redrive to the original topic (defect 1)",
			build: func(e *evidence) {
				e.deadLetter("O-1", 0, 7, retrymeta.MaxAttempts, 0).redriven(0, 7, 1)
			},
			ids:  []string{"O-1"},
			want: map[string]string{CheckOneTerminalState: "order O-1: no terminal state: its dead letters were all dealt with (0:7 (max-attempts) redriven to orders"},
		},
		{
			name: "allocated and dead-lettered by a second chain (defect 4)",
			build: func(e *evidence) {
				e.allocated("O-1", "C-1").deadLetter("O-1", 1, 3, retrymeta.MaxAttempts, 0)
			},
			ids:  []string{"O-1"},
			want: map[string]string{CheckOneTerminalState: "order O-1: 2 terminal states: allocated C-1 and dead letter 1:3 (max-attempts) awaiting a person"},
		},
		{
			name: "dead-lettered, redriven, allocated: one terminal state",
			build: func(e *evidence) {
				e.deadLetter("O-1", 0, 7, retrymeta.MaxAttempts, 0).redriven(0, 7, 1).allocated("O-1", "C-1")
			},
			ids: []string{"O-1"},
		},
		{
			name: "a copy of a redriven dead letter, written after the redrive: resolved with it",
			build: func(e *evidence) {
				e.deadLetter("O-1", 1, 2, retrymeta.MaxAttempts, 0).from("O-1", 96).redriven(1, 2, 1)
				e.deadLetter("O-1", 1, 26, retrymeta.MaxAttempts, 0).from("O-1", 96).allocated("O-1", "C-1")
			},
			ids: []string{"O-1"},
		},
		{
			name: "two pending copies of one dead letter: one terminal state",
			build: func(e *evidence) {
				e.deadLetter("O-1", 1, 2, retrymeta.MaxAttempts, 0).from("O-1", 96)
				e.deadLetter("O-1", 2, 5, retrymeta.MaxAttempts, 0).from("O-1", 96)
			},
			ids: []string{"O-1"},
		},
		{
			name: "dead letters of two generations are not copies",
			build: func(e *evidence) {
				e.deadLetter("O-1", 1, 2, retrymeta.MaxAttempts, 0).from("O-1", 96)
				e.deadLetter("O-1", 1, 5, retrymeta.MaxAttempts, 1).from("O-1", 96)
			},
			ids:  []string{"O-1"},
			want: map[string]string{CheckOneTerminalState: "order O-1: 2 terminal states: dead letter 1:2 (max-attempts) awaiting a person and dead letter 1:5"},
		},
		{
			name: "a reefer given to two orders",
			build: func(e *evidence) {
				e.allocated("O-1", "C-1").allocated("O-2", "C-1")
			},
			ids: []string{"O-1", "O-2"},
			want: map[string]string{
				CheckNoDoubleAllocation: "reefer C-1 is given to 2 orders",
				// The reefer's row names one holder only.
				CheckAllocationMatched: "order O-1: ContainerAllocated says C-1, but the database's reefer row says it is held by \"O-2\"",
			},
		},
		{
			name: "a 3xx counted as an allocation the inventory never recorded (defect 5)",
			build: func(e *evidence) {
				e.allocated("O-1", "C-1")
				e.order("O-1").InventoryContainers = nil
			},
			ids:  []string{"O-1"},
			want: map[string]string{CheckAllocationMatched: "order O-1: ContainerAllocated says C-1, but the inventory holds [] for the order"},
		},
		{
			name: "a dead-lettered order keeps its reefer (defect 3)",
			build: func(e *evidence) {
				e.deadLetter("O-1", 0, 1, retrymeta.PermanentError, 0)
				e.ev.Holds = append(e.ev.Holds, Hold{ContainerID: "C-9", OrderID: "O-1"})
			},
			ids:  []string{"O-1"},
			want: map[string]string{CheckNoOrphanHold: "order O-1: the database's reefer C-9 is held by it, but the order is dead letter 0:1 (permanent-error) awaiting a person"},
		},
		{
			name: "a dead letter without a reason",
			build: func(e *evidence) {
				e.deadLetter("O-1", 0, 1, "", 0)
			},
			ids:  []string{"O-1"},
			want: map[string]string{CheckDeadLetterReason: "order O-1: dead letter 0:1 carries no x-dlq-reason"},
		},
		{
			name:    "an oversize record that never reached the dead-letter topic (defect 2)",
			build:   func(e *evidence) {},
			foreign: map[string][]byte{"OVERSIZE-0-0": []byte("xxxx")},
			want:    map[string]string{CheckForeignDeadLettered: "record OVERSIZE-0-0 (4 bytes on orders): no dead letter under its key"},
		},
		{
			name: "the loop guard reset by a hop after a redrive",
			build: func(e *evidence) {
				e.deadLetter("O-1", 2, 4, retrymeta.MaxAttempts, 0).redriven(2, 4, 1).deadLetter("O-1", 2, 9, retrymeta.MaxAttempts, 0)
			},
			ids:  []string{"O-1"},
			want: map[string]string{CheckRedriveCarried: "order O-1: dead letter 2:4 was redriven to orders with redrive count 1, but its later dead letter 2:9 (max-attempts) carries 0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEvidence()
			tt.build(e)
			for _, r := range e.ev.Check(tt.ids, tt.foreign) {
				want, expected := tt.want[r.Check]
				switch {
				case !expected && len(r.Violations) > 0:
					t.Errorf("%s: unexpected violations %q", r.Check, r.Violations)
				case expected && (len(r.Violations) != 1 || !strings.Contains(r.Violations[0], want)):
					t.Errorf("%s: violations %q, want one that says %q", r.Check, r.Violations, want)
				}
			}
		})
	}
}
