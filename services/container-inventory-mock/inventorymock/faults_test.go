package inventorymock_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/admin"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/calls"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
)

// seen is what the client observed of one call.
type seen struct {
	Status        int    // 0 when the call failed at the transport level
	TransportErr  string // "timeout" or "dropped"
	Code          string // the body's error field
	InjectedFault string // the X-Injected-Fault header
	RetryAfter    string
}

// observe sends one allocation and classifies what came back.
func observe(client *http.Client, base, container, order string) (seen, error) {
	req, err := http.NewRequest(http.MethodPut, base+"/containers/"+container+"/allocation",
		strings.NewReader(`{"orderID":"`+order+`"}`))
	if err != nil {
		return seen{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", order)
	resp, err := client.Do(req)
	var timeout interface{ Timeout() bool }
	switch {
	case errors.As(err, &timeout) && timeout.Timeout():
		return seen{TransportErr: "timeout"}, nil
	case err != nil:
		return seen{TransportErr: "dropped"}, nil
	}
	defer resp.Body.Close()
	var body struct {
		Error string `json:"error"`
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return seen{}, err
	}
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(data, &body); err != nil {
			return seen{}, fmt.Errorf("status %d with non-JSON body %q", resp.StatusCode, data)
		}
	}
	return seen{
		Status:        resp.StatusCode,
		Code:          body.Error,
		InjectedFault: resp.Header.Get(inventorymock.HeaderInjectedFault),
		RetryAfter:    resp.Header.Get("Retry-After"),
	}, nil
}

// logged is the part of a call-log entry these tests check.
type logged struct {
	Order, Fault, Rule string
	Status             int
}

// waitForCalls polls the call log until n calls are recorded: a call the
// client gave up on is recorded when the server notices.
func waitForCalls(t *testing.T, adm *admin.Client, n int) []logged {
	t.Helper()
	// A poll for something that must happen: the bound only matters when it
	// never does, so it is far above what a loaded -race run needs.
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := adm.Calls(t.Context(), calls.Query{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) >= n || time.Now().After(deadline) {
			var out []logged
			for _, c := range got {
				out = append(out, logged{Order: c.OrderID, Fault: c.Fault, Rule: c.Rule, Status: c.Status})
			}
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEachFaultKindOverHTTP(t *testing.T) {
	okSeen := seen{Status: 200}
	tests := []struct {
		name    string
		profile string // FAULT_PROFILE form
		orders  []string
		want    []seen
		wantLog []logged
	}{
		{
			name:    "errorRate answers errorStatus with Retry-After",
			profile: `{"errorRate": 1, "errorStatus": 503, "retryAfter": "1500ms"}`,
			orders:  []string{"O-1"},
			want:    []seen{{Status: 503, Code: "service_unavailable", InjectedFault: "errorRate", RetryAfter: "2"}},
			wantLog: []logged{{Order: "O-1", Fault: "errorRate", Status: 503}},
		},
		{
			name:    "429 carries Retry-After too",
			profile: `{"errorRate": 1, "errorStatus": 429, "retryAfter": "1s"}`,
			orders:  []string{"O-1"},
			want:    []seen{{Status: 429, Code: "too_many_requests", InjectedFault: "errorRate", RetryAfter: "1"}},
			wantLog: []logged{{Order: "O-1", Fault: "errorRate", Status: 429}},
		},
		{
			name:    "other statuses carry no Retry-After",
			profile: `{"errorRate": 1, "errorStatus": 500, "retryAfter": "1s"}`,
			orders:  []string{"O-1"},
			want:    []seen{{Status: 500, Code: "internal_server_error", InjectedFault: "errorRate"}},
			wantLog: []logged{{Order: "O-1", Fault: "errorRate", Status: 500}},
		},
		{
			name:    "failFirst fails the first calls of each order, then allocates",
			profile: `{"failFirst": {"count": 2}}`,
			orders:  []string{"O-1", "O-2", "O-1", "O-1", "O-2"},
			want: []seen{
				{Status: 503, Code: "service_unavailable", InjectedFault: "failFirst"},
				{Status: 503, Code: "service_unavailable", InjectedFault: "failFirst"},
				{Status: 503, Code: "service_unavailable", InjectedFault: "failFirst"},
				okSeen,
				{Status: 503, Code: "service_unavailable", InjectedFault: "failFirst"},
			},
			wantLog: []logged{
				{Order: "O-1", Fault: "failFirst", Status: 503},
				{Order: "O-2", Fault: "failFirst", Status: 503},
				{Order: "O-1", Fault: "failFirst", Status: 503},
				{Order: "O-1", Fault: "none", Status: 200},
				{Order: "O-2", Fault: "failFirst", Status: 503},
			},
		},
		{
			name:    "a rule gives matching orders a fixed answer with its body",
			profile: `{"rules": [{"name": "perm", "orderID": "^O-PERM-", "status": 422, "body": {"error": "rejected_by_legacy"}}]}`,
			orders:  []string{"O-PERM-1", "O-1"},
			want:    []seen{{Status: 422, Code: "rejected_by_legacy", InjectedFault: "rule"}, okSeen},
			wantLog: []logged{{Order: "O-PERM-1", Fault: "rule", Rule: "perm", Status: 422}, {Order: "O-1", Fault: "none", Status: 200}},
		},
		{
			name:    "the permanent preset refuses every order with 422",
			profile: "permanent",
			orders:  []string{"O-1"},
			want:    []seen{{Status: 422, Code: "unprocessable_entity", InjectedFault: "rule"}},
			wantLog: []logged{{Order: "O-1", Fault: "rule", Rule: "reject-every-order", Status: 422}},
		},
		{
			name:    "an outage answers its status",
			profile: `{"outage": {"status": 502}}`,
			orders:  []string{"O-1", "O-2"},
			want: []seen{
				{Status: 502, Code: "bad_gateway", InjectedFault: "outage"},
				{Status: 502, Code: "bad_gateway", InjectedFault: "outage"},
			},
			wantLog: []logged{{Order: "O-1", Fault: "outage", Status: 502}, {Order: "O-2", Fault: "outage", Status: 502}},
		},
		{
			name:    "an outage can answer 401, as after a credential rotation",
			profile: `{"outage": {"status": 401}}`,
			orders:  []string{"O-1"},
			want:    []seen{{Status: 401, Code: "unauthorized", InjectedFault: "outage"}},
			wantLog: []logged{{Order: "O-1", Fault: "outage", Status: 401}},
		},
		{
			name:    "an outage in drop mode closes the connection",
			profile: `{"outage": {"mode": "drop"}}`,
			orders:  []string{"O-1"},
			want:    []seen{{TransportErr: "dropped"}},
			wantLog: []logged{{Order: "O-1", Fault: "outage", Status: calls.StatusDropped}},
		},
		{
			name:    "a timeout holds the call until the client gives up",
			profile: `{"timeoutRate": 1}`,
			orders:  []string{"O-1"},
			want:    []seen{{TransportErr: "timeout"}},
			wantLog: []logged{{Order: "O-1", Fault: "timeout", Status: calls.StatusClientGone}},
		},
		{
			name:    "latency longer than the client's patience is a timeout too",
			profile: `{"latency": "2s"}`,
			orders:  []string{"O-1"},
			want:    []seen{{TransportErr: "timeout"}},
			wantLog: []logged{{Order: "O-1", Fault: "none", Status: calls.StatusClientGone}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := faults.Load(tt.profile, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, base, adm := startService(t, inventorymock.Config{FaultProfile: p})
			// No keep-alive: the transport would retry a call dropped on a
			// reused connection, and a client that gave up closes its own.
			// A short timeout only where giving up is the point: a loaded CI
			// machine may be slow to answer the others.
			timeout := 10 * time.Second
			for _, w := range tt.want {
				if w.TransportErr == "timeout" {
					timeout = 300 * time.Millisecond
				}
			}
			client := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
			var got []seen
			for _, order := range tt.orders {
				s, err := observe(client, base, "C-"+order, order)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, s)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("client saw (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantLog, waitForCalls(t, adm, len(tt.wantLog))); diff != "" {
				t.Errorf("call log (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAnInjected3xxIsARedirectThatAllocatesNothing: a 3xx fault answers a
// redirect to a page that answers 200 (304: no Location). A client that
// does not follow redirects sees the 3xx; one that follows them, as
// net/http does by default, ends with a 200 for an allocation the
// inventory never recorded: the trap the campaign in tests/chaos sets for
// the services.
func TestAnInjected3xxIsARedirectThatAllocatesNothing(t *testing.T) {
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusNotModified} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			p, err := faults.Load(fmt.Sprintf(`{"outage": {"status": %d}}`, status), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, base, adm := startService(t, inventorymock.Config{FaultProfile: p})
			put := func(client *http.Client) *http.Response {
				t.Helper()
				req, err := http.NewRequest(http.MethodPut, base+"/containers/C-1/allocation", strings.NewReader(`{"orderID":"O-1"}`))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Idempotency-Key", "O-1")
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp
			}

			noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp := put(noFollow)
			wantLocation := faults.RedirectLocation
			if status == http.StatusNotModified {
				wantLocation = ""
			}
			if resp.StatusCode != status || resp.Header.Get("Location") != wantLocation || resp.Header.Get(inventorymock.HeaderInjectedFault) != "outage" {
				t.Errorf("answer %d, Location %q, %s %q; want %d, %q, outage", resp.StatusCode, resp.Header.Get("Location"),
					inventorymock.HeaderInjectedFault, resp.Header.Get(inventorymock.HeaderInjectedFault), status, wantLocation)
			}
			// 301 and 302 turn the PUT into a GET of the page (200); 307
			// keeps the method, which the page does not allow (405).
			wantFollowed := map[int]int{http.StatusMovedPermanently: http.StatusOK, http.StatusFound: http.StatusOK, http.StatusTemporaryRedirect: http.StatusMethodNotAllowed}[status]
			if wantFollowed != 0 {
				if followed := put(&http.Client{Timeout: 10 * time.Second}); followed.StatusCode != wantFollowed || followed.Request.URL.Path != faults.RedirectLocation {
					t.Errorf("a client following the redirect ended with %d at %s, want %d at %s", followed.StatusCode, followed.Request.URL.Path, wantFollowed, faults.RedirectLocation)
				}
			}
			held, err := adm.Containers(t.Context(), "")
			if err != nil {
				t.Fatal(err)
			}
			if len(held) != 0 {
				t.Errorf("the inventory holds %v after redirects only, want nothing", held)
			}
		})
	}
}

func TestLatencyDelaysTheAnswer(t *testing.T) {
	_, base, _ := startService(t, inventorymock.Config{FaultProfile: faults.Profile{Latency: faults.Duration(150 * time.Millisecond)}})
	start := time.Now()
	if got := allocate(t, nil, base, "C-1", "O-1"); got.Status != http.StatusOK {
		t.Fatalf("status %d", got.Status)
	}
	// A lower bound only: a loaded machine can only add time.
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Errorf("answer after %s, want at least 150ms", took)
	}
}

func TestAHangIsBoundedByFaultMaxHang(t *testing.T) {
	_, base, _ := startService(t, inventorymock.Config{
		FaultProfile: faults.Profile{TimeoutRate: 1},
		FaultMaxHang: 200 * time.Millisecond,
	})
	start := time.Now()
	got := allocate(t, nil, base, "C-1", "O-1") // a client without timeout
	if got.Status != http.StatusGatewayTimeout || got.Body["error"] != "gateway_timeout" {
		t.Errorf("answer %d %v, want 504 gateway_timeout", got.Status, got.Body)
	}
	// At least the hang; the upper bound, 100 times it for a loaded -race
	// run, only tells a bounded hang from one that never ends.
	if took := time.Since(start); took < 200*time.Millisecond || took > 20*time.Second {
		t.Errorf("answer after %s, want about FAULT_MAX_HANG (200ms)", took)
	}
}

func TestShutdownEndsHeldCalls(t *testing.T) {
	s, err := inventorymock.New(inventorymock.Config{
		HTTPAddr:     "127.0.0.1:0",
		FaultProfile: faults.Profile{TimeoutRate: 1},
		FaultMaxHang: time.Minute,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.Addr()
	const held = 5
	answers := make(chan seen, held)
	for i := range held {
		go func() {
			got, err := observe(&http.Client{}, base, fmt.Sprint("C-", i), fmt.Sprint("O-", i))
			if err != nil {
				t.Error(err)
			}
			answers <- got
		}()
	}
	waitForMetric(t, base, fmt.Sprintf("inventory_mock_calls_in_flight %d", held))

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	// FAULT_MAX_HANG is a minute: anything well below proves the release
	// (20 s leaves room for a loaded -race run).
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("Shutdown took %s with held calls, want them released at once", took)
	}
	for range held {
		want := seen{Status: 503, Code: "service_unavailable", InjectedFault: "timeout"}
		if diff := cmp.Diff(want, <-answers); diff != "" {
			t.Errorf("held call's answer (-want +got):\n%s", diff)
		}
	}
}

// waitForMetric polls /metrics until a line equals line.
func waitForMetric(t *testing.T, base, line string) {
	t.Helper()
	// A poll for something that must happen: the bound only matters when it
	// never does, so it is far above what a loaded -race run needs.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for l := range strings.Lines(string(body)) {
			if strings.TrimSpace(l) == line {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("metrics never showed %q", line)
}

func TestSeedGivesTheSameOutcomeSequence(t *testing.T) {
	profile := `{"seed": 1234, "errorRate": 0.3, "errorStatus": 503, "failFirst": {"count": 1}, "rules": [{"orderID": "3$", "status": 422}]}`
	run := func() []seen {
		p, err := faults.Load(profile, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, base, _ := startService(t, inventorymock.Config{FaultProfile: p})
		client := &http.Client{}
		out := make([]seen, 0, 1000)
		for i := range 1000 {
			order := fmt.Sprintf("O-%d", i%50)
			s, err := observe(client, base, fmt.Sprintf("C-%d", i), order)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	first, second := run(), run()
	if diff := cmp.Diff(first, second); diff != "" {
		t.Fatalf("two runs with seed 1234 differ (-first +second):\n%s", diff)
	}
	faultsSeen := map[string]int{}
	for _, s := range first {
		faultsSeen[s.InjectedFault]++
	}
	for _, kind := range []string{"", "errorRate", "failFirst", "rule"} {
		if faultsSeen[kind] == 0 {
			t.Errorf("the sequence has no %q outcome: %v", kind, faultsSeen)
		}
	}
}

func TestMetricsCountCallsByRouteFaultAndStatus(t *testing.T) {
	_, base, _ := startService(t, inventorymock.Config{FaultProfile: faults.Profile{FailFirst: &faults.FailFirst{Count: 1}}})
	allocate(t, nil, base, "C-1", "O-1")
	allocate(t, nil, base, "C-1", "O-1")
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`inventory_mock_calls_total{fault="failFirst",route="allocate",status="503"} 1`,
		`inventory_mock_calls_total{fault="none",route="allocate",status="200"} 1`,
		`inventory_mock_containers{status="allocated"} 1`,
		`http_requests_total{method="PUT",route="/containers/:containerID/allocation",status="200"} 1`,
		`http_request_duration_seconds_bucket{method="PUT",route="/containers/:containerID/allocation",le="+Inf"} 2`,
		`go_goroutines`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
