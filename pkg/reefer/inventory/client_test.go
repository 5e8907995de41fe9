package inventory_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/inventory"
)

// statusServer answers every request with a status that the test can
// change, counting the requests that reached it.
type statusServer struct {
	*httptest.Server
	status atomic.Int32
	hits   atomic.Int32
}

func newStatusServer(t *testing.T, status int) *statusServer {
	t.Helper()
	s := &statusServer{}
	s.status.Store(int32(status))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		code := int(s.status.Load())
		if code >= 400 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "test", "message": http.StatusText(code)})
			return
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(s.Close)
	return s
}

func newClient(t testing.TB, cfg inventory.Config) *inventory.Client {
	t.Helper()
	c, err := inventory.New(cfg)
	if err != nil {
		t.Fatalf("inventory.New: %v", err)
	}
	return c
}

func TestAllocateClassifiesResponses(t *testing.T) {
	tests := []struct {
		name           string
		status         int
		header         map[string]string
		body           string
		wantClass      failure.Class // "" = success
		wantReason     string
		wantRetryAfter time.Duration
		wantInMsg      string
	}{
		{name: "200 is success", status: 200},
		{name: "204 is success", status: 204},
		{
			name: "409 (container owned by another order) is permanent", status: 409,
			body:      `{"error":"conflict","message":"container C-0042 is allocated to order O-9"}`,
			wantClass: failure.Permanent, wantReason: "http-409",
			wantInMsg: "conflict: container C-0042 is allocated to order O-9",
		},
		{name: "422 is permanent", status: 422, body: `{"error":"unprocessable","message":"unknown container"}`, wantClass: failure.Permanent, wantReason: "http-422", wantInMsg: "unknown container"},
		{name: "400 is permanent", status: 400, wantClass: failure.Permanent, wantReason: "http-400"},
		{name: "404 is permanent", status: 404, wantClass: failure.Permanent, wantReason: "http-404"},
		{name: "500 is transient", status: 500, wantClass: failure.Transient, wantReason: "http-500"},
		{name: "502 is transient", status: 502, wantClass: failure.Transient, wantReason: "http-502"},
		{
			name: "503 keeps Retry-After", status: 503, header: map[string]string{"Retry-After": "7"},
			body:      `{"error":"unavailable","message":"maintenance"}`,
			wantClass: failure.Transient, wantReason: "http-503", wantRetryAfter: 7 * time.Second, wantInMsg: "maintenance",
		},
		{name: "504 is transient", status: 504, wantClass: failure.Transient, wantReason: "http-504"},
		{name: "408 is transient", status: 408, wantClass: failure.Transient, wantReason: "http-408"},
		{
			name: "429 keeps Retry-After", status: 429, header: map[string]string{"Retry-After": "3"},
			wantClass: failure.Transient, wantReason: "http-429", wantRetryAfter: 3 * time.Second,
		},
		{
			name: "a non-JSON error body is quoted on one line", status: 502,
			body:      "<html>\n<body>Bad   Gateway</body>\n</html>",
			wantClass: failure.Transient, wantReason: "http-502", wantInMsg: "<html> <body>Bad Gateway</body> </html>",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			c := newClient(t, inventory.Config{BaseURL: srv.URL})

			err := c.Allocate(t.Context(), "C-0042", "O-1")

			if tt.wantClass == "" {
				if err != nil {
					t.Fatalf("Allocate: %v, want success", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Allocate succeeded, want a %s error", tt.wantClass)
			}
			got := struct {
				Class      failure.Class
				Reason     string
				RetryAfter time.Duration
			}{failure.ClassOf(err), failure.ReasonOf(err), failure.RetryAfterOf(err)}
			want := got
			want.Class, want.Reason, want.RetryAfter = tt.wantClass, tt.wantReason, tt.wantRetryAfter
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("classification of %v (-want +got):\n%s", err, diff)
			}
			if !strings.Contains(err.Error(), tt.wantInMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantInMsg)
			}
		})
	}
}

func TestAllocateSendsIdempotentJSONRequest(t *testing.T) {
	type seen struct {
		Method, Path, ContentType, IdempotencyKey string
		Body                                      map[string]any
	}
	got := make(chan seen, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{
			Method:         r.Method,
			Path:           r.URL.EscapedPath(),
			ContentType:    r.Header.Get("Content-Type"),
			IdempotencyKey: r.Header.Get("Idempotency-Key"),
		}
		if err := json.NewDecoder(r.Body).Decode(&s.Body); err != nil {
			t.Errorf("server: decode body: %v", err)
		}
		got <- s
	}))
	defer srv.Close()
	// A base URL with a path prefix and a trailing slash, and a container
	// id that needs escaping.
	c := newClient(t, inventory.Config{BaseURL: srv.URL + "/legacy/"})

	for range 2 {
		if err := c.Allocate(t.Context(), "C 42/b", "O-7"); err != nil {
			t.Fatalf("Allocate: %v", err)
		}
	}

	want := seen{
		Method:         http.MethodPut,
		Path:           "/legacy/containers/C%2042%2Fb/allocation",
		ContentType:    "application/json",
		IdempotencyKey: "O-7",
		Body:           map[string]any{"orderID": "O-7"},
	}
	for i := range 2 {
		if diff := cmp.Diff(want, <-got); diff != "" {
			t.Errorf("request %d (-want +got):\n%s", i+1, diff)
		}
	}
}

func TestAllocateRejectsEmptyIDsWithoutCallingTheInventory(t *testing.T) {
	srv := newStatusServer(t, http.StatusOK)
	c := newClient(t, inventory.Config{BaseURL: srv.URL})
	for _, ids := range [][2]string{{"", "O-1"}, {"C-1", ""}} {
		err := c.Allocate(t.Context(), ids[0], ids[1])
		if failure.ClassOf(err) != failure.Permanent {
			t.Errorf("Allocate(%q, %q) = %v, want a permanent error", ids[0], ids[1], err)
		}
	}
	if n := srv.hits.Load(); n != 0 {
		t.Errorf("server hits = %d, want 0", n)
	}
}

// A server that accepts the request and never answers must cost at most
// the configured timeout, and the failure is transient.
func TestAllocateTimesOutAsTransient(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	const timeout = 100 * time.Millisecond
	c := newClient(t, inventory.Config{BaseURL: srv.URL, Timeout: timeout})

	start := time.Now()
	err := c.Allocate(t.Context(), "C-0001", "O-1")
	elapsed := time.Since(start)

	if failure.ClassOf(err) != failure.Transient || failure.ReasonOf(err) != "timeout" {
		t.Errorf("Allocate = %v (class %q, reason %q), want transient timeout", err, failure.ClassOf(err), failure.ReasonOf(err))
	}
	// The server would hang until the test ends; a bound far above the
	// timeout (100 times, for a loaded -race run) but far below "forever"
	// proves the timeout applied.
	if elapsed > 100*timeout {
		t.Errorf("Allocate took %s with a %s timeout", elapsed, timeout)
	}
}

func TestAllocateTransportFailuresAreTransient(t *testing.T) {
	tests := []struct {
		name        string
		baseURL     func(t *testing.T) string
		wantReasons []string
	}{
		{
			name: "connection refused",
			baseURL: func(t *testing.T) string {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				addr := ln.Addr().String()
				_ = ln.Close() // nothing listens there any more
				return "http://" + addr
			},
			wantReasons: []string{"connection-refused"},
		},
		{
			name: "connection reset",
			baseURL: func(t *testing.T) string {
				return hijackingServer(t, func(conn net.Conn) {
					// Linger 0 makes Close send RST instead of FIN.
					_ = conn.(*net.TCPConn).SetLinger(0)
					_ = conn.Close()
				})
			},
			wantReasons: []string{"connection-reset", "eof"},
		},
		{
			name: "connection closed without a response",
			baseURL: func(t *testing.T) string {
				return hijackingServer(t, func(conn net.Conn) { _ = conn.Close() })
			},
			wantReasons: []string{"eof", "unexpected-eof", "connection-reset"},
		},
		{
			name: "half a response",
			baseURL: func(t *testing.T) string {
				return hijackingServer(t, func(conn net.Conn) {
					_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Le")
					_ = conn.Close()
				})
			},
			wantReasons: []string{"unexpected-eof", "eof", "transport"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, inventory.Config{BaseURL: tt.baseURL(t), Timeout: 2 * time.Second})
			err := c.Allocate(t.Context(), "C-0001", "O-1")
			if failure.ClassOf(err) != failure.Transient {
				t.Fatalf("Allocate = %v, class %q, want transient", err, failure.ClassOf(err))
			}
			reason := failure.ReasonOf(err)
			ok := false
			for _, r := range tt.wantReasons {
				ok = ok || r == reason
			}
			if !ok {
				t.Errorf("reason = %q (%v), want one of %q", reason, err, tt.wantReasons)
			}
		})
	}
}

// hijackingServer returns the URL of a server that reads the request and
// then hands the raw connection to misbehave.
func hijackingServer(t *testing.T, misbehave func(net.Conn)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		misbehave(conn)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// transitions records the breaker's state changes.
type transitions struct {
	mu   sync.Mutex
	seen []string
}

func (tr *transitions) record(from, to string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.seen = append(tr.seen, from+"->"+to)
}

func (tr *transitions) list() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.seen...)
}

func TestBreakerOpensAfterConsecutiveTransientFailuresAndFailsFast(t *testing.T) {
	srv := newStatusServer(t, http.StatusServiceUnavailable)
	var tr transitions
	const openTimeout = time.Minute
	c := newClient(t, inventory.Config{
		BaseURL:       srv.URL,
		Breaker:       inventory.BreakerConfig{MaxFailures: 3, OpenTimeout: openTimeout},
		OnStateChange: tr.record,
	})

	var reasons []string
	for range 10 {
		err := c.Allocate(t.Context(), "C-0001", "O-1")
		if failure.ClassOf(err) != failure.Transient {
			t.Fatalf("Allocate = %v, want transient", err)
		}
		reasons = append(reasons, failure.ReasonOf(err))
		if failure.ReasonOf(err) == "circuit-open" {
			if ra := failure.RetryAfterOf(err); ra <= 0 || ra > openTimeout {
				t.Errorf("circuit-open RetryAfter = %s, want in (0, %s]", ra, openTimeout)
			}
		}
	}

	wantReasons := []string{"http-503", "http-503", "http-503"}
	for range 7 {
		wantReasons = append(wantReasons, "circuit-open")
	}
	if diff := cmp.Diff(wantReasons, reasons); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
	// Calls while open never reach the server: that is what "fail fast" means.
	if n := srv.hits.Load(); n != 3 {
		t.Errorf("server hits = %d, want 3", n)
	}
	if got := c.BreakerState(); got != inventory.StateOpen {
		t.Errorf("BreakerState = %q, want %q", got, inventory.StateOpen)
	}
	if diff := cmp.Diff([]string{"closed->open"}, tr.list()); diff != "" {
		t.Errorf("transitions (-want +got):\n%s", diff)
	}
}

func TestBreakerHalfOpenProbe(t *testing.T) {
	tests := []struct {
		name            string
		probeStatus     int
		wantErr         bool
		wantState       string
		wantTransitions []string
	}{
		{
			name:            "a successful probe closes the circuit",
			probeStatus:     http.StatusOK,
			wantState:       inventory.StateClosed,
			wantTransitions: []string{"closed->open", "open->half-open", "half-open->closed"},
		},
		{
			name:            "a failed probe opens it again",
			probeStatus:     http.StatusBadGateway,
			wantErr:         true,
			wantState:       inventory.StateOpen,
			wantTransitions: []string{"closed->open", "open->half-open", "half-open->open"},
		},
		{
			name:            "a permanent answer to the probe proves the inventory is up",
			probeStatus:     http.StatusConflict,
			wantErr:         true,
			wantState:       inventory.StateClosed,
			wantTransitions: []string{"closed->open", "open->half-open", "half-open->closed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newStatusServer(t, http.StatusServiceUnavailable)
			var tr transitions
			// The state is read right after each step: the open period
			// must outlast a stall of a loaded -race run, or the breaker
			// would already report half-open.
			const openTimeout = 500 * time.Millisecond
			c := newClient(t, inventory.Config{
				BaseURL:       srv.URL,
				Breaker:       inventory.BreakerConfig{MaxFailures: 2, OpenTimeout: openTimeout},
				OnStateChange: tr.record,
			})
			for range 2 {
				_ = c.Allocate(t.Context(), "C-0001", "O-1")
			}
			if got := c.BreakerState(); got != inventory.StateOpen {
				t.Fatalf("after 2 failures BreakerState = %q, want open", got)
			}

			srv.status.Store(int32(tt.probeStatus))
			time.Sleep(2 * openTimeout) // the open period must pass before a probe is let through
			err := c.Allocate(t.Context(), "C-0001", "O-1")

			if (err != nil) != tt.wantErr {
				t.Errorf("probe Allocate = %v, want error: %t", err, tt.wantErr)
			}
			if got := c.BreakerState(); got != tt.wantState {
				t.Errorf("BreakerState = %q, want %q", got, tt.wantState)
			}
			if n := srv.hits.Load(); n != 3 {
				t.Errorf("server hits = %d, want 3 (2 failures + 1 probe)", n)
			}
			if diff := cmp.Diff(tt.wantTransitions, tr.list()); diff != "" {
				t.Errorf("transitions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPermanentAnswersDoNotOpenBreaker(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int
	}{
		{name: "409 over and over", statuses: repeat(http.StatusConflict, 20)},
		{name: "422 over and over", statuses: repeat(http.StatusUnprocessableEntity, 20)},
		{
			name:     "a permanent answer breaks a run of transient ones",
			statuses: []int{503, 503, 409, 503, 503, 422, 503, 503},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newStatusServer(t, http.StatusOK)
			c := newClient(t, inventory.Config{
				BaseURL: srv.URL,
				Breaker: inventory.BreakerConfig{MaxFailures: 3, OpenTimeout: time.Minute},
			})
			for _, status := range tt.statuses {
				srv.status.Store(int32(status))
				if err := c.Allocate(t.Context(), "C-0001", "O-1"); failure.ReasonOf(err) == "circuit-open" {
					t.Fatalf("circuit opened: %v", err)
				}
			}
			if n := int(srv.hits.Load()); n != len(tt.statuses) {
				t.Errorf("server hits = %d, want %d", n, len(tt.statuses))
			}
			if got := c.BreakerState(); got != inventory.StateClosed {
				t.Errorf("BreakerState = %q, want closed", got)
			}
		})
	}
}

func repeat(status, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = status
	}
	return s
}

// Shutting down cancels in-flight calls; that says nothing about the
// inventory and must not open the circuit.
func TestCanceledCallsDoNotOpenBreaker(t *testing.T) {
	release := make(chan struct{})
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	c := newClient(t, inventory.Config{BaseURL: srv.URL, Breaker: inventory.BreakerConfig{MaxFailures: 2}})

	for i := range 5 {
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			for hits.Load() <= int32(i) {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		err := c.Allocate(ctx, "C-0001", "O-1")
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Allocate = %v, want it to wrap context.Canceled", err)
		}
	}
	if got := c.BreakerState(); got != inventory.StateClosed {
		t.Errorf("BreakerState = %q, want closed", got)
	}
}

func TestPing(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		wantClass failure.Class
	}{
		{name: "healthy", status: http.StatusOK},
		{name: "unavailable", status: http.StatusServiceUnavailable, wantClass: failure.Transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var path atomic.Value
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				path.Store(r.Method + " " + r.URL.Path)
				w.WriteHeader(tt.status)
			}))
			defer srv.Close()
			c := newClient(t, inventory.Config{BaseURL: srv.URL})

			err := c.Ping(t.Context())

			if got := failure.ClassOf(err); got != tt.wantClass {
				t.Errorf("Ping = %v, class %q, want %q", err, got, tt.wantClass)
			}
			if got := path.Load(); got != "GET /healthz" {
				t.Errorf("request = %v, want GET /healthz", got)
			}
		})
	}
}

// Ping is a probe: it must work while the circuit is open and not move it.
func TestPingBypassesBreaker(t *testing.T) {
	srv := newStatusServer(t, http.StatusServiceUnavailable)
	c := newClient(t, inventory.Config{BaseURL: srv.URL, Breaker: inventory.BreakerConfig{MaxFailures: 1, OpenTimeout: time.Minute}})
	_ = c.Allocate(t.Context(), "C-0001", "O-1")
	srv.status.Store(http.StatusOK)

	if err := c.Ping(t.Context()); err != nil {
		t.Errorf("Ping with an open circuit = %v, want nil", err)
	}
	if got := c.BreakerState(); got != inventory.StateOpen {
		t.Errorf("BreakerState = %q, want open", got)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name      string
		cfg       inventory.Config
		wantInMsg string
	}{
		{name: "empty base URL", cfg: inventory.Config{}, wantInMsg: "want http(s)://host"},
		{name: "no scheme", cfg: inventory.Config{BaseURL: "localhost:8081"}, wantInMsg: "want http(s)://host"},
		{name: "other scheme", cfg: inventory.Config{BaseURL: "ftp://inventory"}, wantInMsg: "want http(s)://host"},
		{name: "query", cfg: inventory.Config{BaseURL: "http://inventory?x=1"}, wantInMsg: "query"},
		{name: "negative timeout", cfg: inventory.Config{BaseURL: "http://inventory", Timeout: -time.Second}, wantInMsg: "timeout -1s is negative"},
		{
			name:      "negative open timeout",
			cfg:       inventory.Config{BaseURL: "http://inventory", Breaker: inventory.BreakerConfig{OpenTimeout: -time.Second}},
			wantInMsg: "open timeout -1s is negative",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := inventory.New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantInMsg) {
				t.Errorf("New = %v, want an error containing %q", err, tt.wantInMsg)
			}
		})
	}
}

// BenchmarkAllocate measures the client's overhead per call against a
// local server over real sockets (keep-alive, 16 concurrent callers).
func BenchmarkAllocate(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	c := newClient(b, inventory.Config{BaseURL: srv.URL})
	b.SetParallelism(8) // 8 x GOMAXPROCS(2) = 16 concurrent callers
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := c.Allocate(context.Background(), "C-0001", "O-1"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// A flaky inventory (a share of calls fail, rarely many in a row) must not
// open the circuit: its callers would lose the calls that would have
// worked. An inventory where most recent calls fail must.
func TestBreakerRatioRule(t *testing.T) {
	tests := []struct {
		name     string
		pattern  []bool
		wantOpen bool
	}{
		// 3 of 10 fail, never more than one in a row: closed.
		{name: "30% flaky stays closed", pattern: []bool{true, false, false, true, false, false, true, false, false, false}, wantOpen: false},
		// 6 of 10 fail, at most two in a row: the ratio rule opens it.
		{name: "60% failing opens", pattern: []bool{true, true, false, true, true, false, true, true, false, false}, wantOpen: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				i := n.Add(1) - 1
				if tt.pattern[i%int64(len(tt.pattern))] {
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"containerID":"C-0001","orderID":"O-1","status":"allocated"}`))
			}))
			defer srv.Close()
			c := newClient(t, inventory.Config{BaseURL: srv.URL, Breaker: inventory.BreakerConfig{Window: time.Minute, OpenTimeout: time.Minute}})
			for range 200 {
				_ = c.Allocate(t.Context(), "C-0001", "O-1")
				if c.BreakerState() == inventory.StateOpen {
					break
				}
			}
			if got := c.BreakerState() == inventory.StateOpen; got != tt.wantOpen {
				t.Errorf("open = %v after %d calls, want %v", got, n.Load(), tt.wantOpen)
			}
		})
	}
}
