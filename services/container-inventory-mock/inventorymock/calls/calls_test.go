package calls_test

import (
	"strconv"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/calls"
)

func seqs(cs []calls.Call) []uint64 {
	out := []uint64{}
	for _, c := range cs {
		out = append(out, c.Seq)
	}
	return out
}

func TestLogKeepsTheNewestCallsAndCountsAll(t *testing.T) {
	l := calls.NewLog(3)
	for i := range 5 {
		fault := "none"
		if i%2 == 1 {
			fault = "errorRate"
		}
		status := 200
		if i == 4 {
			status = calls.StatusDropped
		}
		l.Add(calls.Call{Route: "allocate", OrderID: "O-" + strconv.Itoa(i%2), Fault: fault, Status: status})
	}
	tests := []struct {
		name string
		q    calls.Query
		want []uint64
	}{
		{"everything kept, oldest first", calls.Query{}, []uint64{3, 4, 5}},
		{"after a cursor", calls.Query{After: 4}, []uint64{5}},
		{"by order", calls.Query{OrderID: "O-1"}, []uint64{4}},
		{"by fault", calls.Query{Fault: "none"}, []uint64{3, 5}},
		{"by route", calls.Query{Route: "getContainer"}, []uint64{}},
		{"the newest n", calls.Query{Limit: 2}, []uint64{4, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, seqs(l.Calls(tt.q))); diff != "" {
				t.Errorf("seqs mismatch (-want +got):\n%s", diff)
			}
		})
	}
	want := calls.Stats{
		Calls:    5,
		ByRoute:  map[string]int64{"allocate": 5},
		ByFault:  map[string]int64{"none": 3, "errorRate": 2},
		ByStatus: map[string]int64{"200": 4, "dropped": 1},
	}
	if diff := cmp.Diff(want, l.Stats()); diff != "" {
		t.Errorf("stats mismatch (-want +got):\n%s", diff)
	}
}

func TestResetRestartsNumbering(t *testing.T) {
	l := calls.NewLog(10)
	l.Add(calls.Call{Route: "allocate", Fault: "none"})
	l.Reset()
	if got := l.Calls(calls.Query{}); len(got) != 0 {
		t.Errorf("calls after reset: %v", got)
	}
	if seq := l.Add(calls.Call{}); seq != 1 {
		t.Errorf("first seq after reset = %d, want 1", seq)
	}
	if st := l.Stats(); st.Calls != 1 {
		t.Errorf("calls counted after reset = %d, want 1", st.Calls)
	}
}

func TestConcurrentAddsAreAllCounted(t *testing.T) {
	l := calls.NewLog(50)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 250 {
				l.Add(calls.Call{Route: "allocate", Fault: "none", Status: 200})
				l.Calls(calls.Query{Limit: 5})
			}
		})
	}
	wg.Wait()
	if st := l.Stats(); st.Calls != 2000 {
		t.Errorf("counted %d calls, want 2000", st.Calls)
	}
	if got := seqs(l.Calls(calls.Query{})); len(got) != 50 || got[49] != 2000 {
		t.Errorf("kept %d calls ending at %v, want 50 ending at 2000", len(got), got[len(got)-1])
	}
}
