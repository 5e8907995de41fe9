package healthgate_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/healthgate"
)

// script answers with the statuses in order, then repeats the last one.
type script struct {
	mu       sync.Mutex
	statuses []int
	calls    atomic.Int32
}

func (s *script) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	n := int(s.calls.Add(1)) - 1
	s.mu.Lock()
	st := s.statuses[min(n, len(s.statuses)-1)]
	s.mu.Unlock()
	w.WriteHeader(st)
}

func TestGateOpensAfterConsecutiveSuccessesAndClosesAfterFailures(t *testing.T) {
	const ok, down = http.StatusOK, http.StatusServiceUnavailable
	tests := []struct {
		name           string
		statuses       []int
		healthyAfter   int
		unhealthyAfter int
		want           []bool // the gate after each probe
	}{
		{"three in a row", []int{ok, ok, ok, ok}, 3, 1, []bool{false, false, true, true}},
		{"a failure restarts the count", []int{ok, ok, down, ok, ok, ok}, 3, 1, []bool{false, false, false, false, false, true}},
		{"one failure closes", []int{ok, ok, down, ok}, 2, 1, []bool{false, true, false, false}},
		{"two failures needed to close", []int{ok, down, ok, down, down}, 1, 2, []bool{true, true, true, true, false}},
		{"3xx is not healthy", []int{http.StatusFound, http.StatusFound}, 1, 1, []bool{false, false}},
		{"any 2xx is healthy", []int{http.StatusNoContent}, 1, 1, []bool{true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &script{statuses: tc.statuses}
			srv := httptest.NewServer(s)
			defer srv.Close()
			var changes []bool
			g, err := healthgate.New(healthgate.Config{
				URL:            srv.URL,
				Client:         &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
				Interval:       time.Millisecond,
				HealthyAfter:   tc.healthyAfter,
				UnhealthyAfter: tc.unhealthyAfter,
				OnChange:       func(healthy bool, _ error) { changes = append(changes, healthy) },
			})
			if err != nil {
				t.Fatal(err)
			}
			var got []bool
			for range tc.want {
				g.Record(g.Probe(context.Background()))
				got = append(got, g.Healthy())
			}
			for i := range tc.want {
				if got[i] != tc.want[i] {
					t.Fatalf("after each probe: got %v, want %v", got, tc.want)
				}
			}
			// OnChange saw every transition.
			var want []bool
			prev := false
			for _, h := range tc.want {
				if h != prev {
					want = append(want, h)
				}
				prev = h
			}
			if len(changes) != len(want) {
				t.Errorf("OnChange calls %v, want %v", changes, want)
			}
		})
	}
}

func TestWaitHealthyReturnsOnceTheGateOpens(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(int(status.Load())) }))
	defer srv.Close()
	g, err := healthgate.New(healthgate.Config{URL: srv.URL, Interval: 5 * time.Millisecond, HealthyAfter: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go g.Run(ctx)

	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if err := g.WaitHealthy(short); err == nil {
		t.Fatal("WaitHealthy returned while the backend was down")
	}
	status.Store(http.StatusOK)
	done := make(chan error, 1)
	go func() { done <- g.WaitHealthy(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second): // generous: a loaded -race run
		t.Fatal("WaitHealthy did not return after the backend recovered")
	}
}

func TestProbeFailsOnTimeoutAndRefusedConnections(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(time.Minute):
		}
	}))
	defer slow.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	for _, url := range []string{slow.URL, closedURL} {
		g, err := healthgate.New(healthgate.Config{URL: url, Timeout: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := g.Probe(context.Background()); err == nil {
			t.Errorf("probe of %s succeeded", url)
		}
		// The slow server holds a call for a minute: a bound far above the
		// timeout (for a loaded -race run) and far below that proves it.
		if time.Since(start) > 10*time.Second {
			t.Errorf("probe of %s took %s with a 50ms timeout", url, time.Since(start))
		}
	}
}

func TestNewRejectsBadURLs(t *testing.T) {
	for _, url := range []string{"", "not a url", "/readyz", "http://"} {
		if _, err := healthgate.New(healthgate.Config{URL: url}); err == nil {
			t.Errorf("New accepted %q", url)
		}
	}
}
