package inventorymock

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
)

// TestObservedErrorRateMatchesTheProfile sends 10,000 allocations through the
// service's full handler chain (in process: sockets add time, not coverage;
// the other tests use them) and checks the share of injected errors.
func TestObservedErrorRateMatchesTheProfile(t *testing.T) {
	const n = 10_000
	tests := []struct {
		rate float64
		seed int64
	}{
		{0.05, 1}, {0.2, 99}, {0.5, 7},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("errorRate %.2f", tt.rate), func(t *testing.T) {
			s, err := New(Config{
				HTTPAddr:     "127.0.0.1:0",
				FaultProfile: faults.Profile{Seed: new(tt.seed), ErrorRate: tt.rate, ErrorStatus: 503},
				CallLogSize:  10,
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			h := s.srv.Echo()
			statuses := map[int]int{}
			for i := range n {
				req := httptest.NewRequest(http.MethodPut, fmt.Sprintf("/containers/C-%d/allocation", i),
					strings.NewReader(fmt.Sprintf(`{"orderID":"O-%d"}`, i)))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				statuses[rec.Code]++
			}
			if statuses[200]+statuses[503] != n {
				t.Fatalf("statuses %v, want only 200 and 503", statuses)
			}
			if got := float64(statuses[503]) / n; math.Abs(got-tt.rate) > 0.02 {
				t.Errorf("observed error rate %.4f, want %.2f ± 0.02", got, tt.rate)
			}
			st := s.calls.Stats()
			if st.Calls != n || st.ByFault[string(faults.KindError)] != int64(statuses[503]) {
				t.Errorf("stats %+v disagree with the answers %v", st, statuses)
			}
			if got := s.store.Stats().Allocations; got != int64(statuses[200]) {
				t.Errorf("allocations = %d, want one per 200 (%d)", got, statuses[200])
			}
		})
	}
}
