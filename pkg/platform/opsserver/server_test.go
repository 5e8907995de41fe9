package opsserver_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/opsserver"
)

// start runs a server on a loopback port for the duration of the test.
func start(t *testing.T, cfg opsserver.Config, mount func(e *echo.Echo)) (*opsserver.Server, string) {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s := opsserver.New(cfg)
	if mount != nil {
		mount(s.Echo())
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s, "http://" + s.Addr()
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body of %s: %v", url, err)
	}
	return resp.StatusCode, body
}

func TestHealthzAnswersWithoutLookingAtDependencies(t *testing.T) {
	_, base := start(t, opsserver.Config{Checks: map[string]opsserver.Check{
		"db": func(context.Context) error { return errors.New("down") },
	}}, nil)
	code, body := get(t, base+"/healthz")
	if code != http.StatusOK {
		t.Fatalf("status = %d, want 200 (body %s)", code, body)
	}
	if diff := cmp.Diff(`{"status":"ok"}`, strings.TrimSpace(string(body))); diff != "" {
		t.Errorf("body mismatch (-want +got):\n%s", diff)
	}
}

func TestReadyzReportsEveryCheck(t *testing.T) {
	ok := func(context.Context) error { return nil }
	fail := func(context.Context) error { return errors.New("connection refused") }
	hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	never := make(chan struct{})
	t.Cleanup(func() { close(never) })
	ignoresContext := func(context.Context) error { <-never; return nil }
	panics := func(context.Context) error { panic("boom") }

	tests := []struct {
		name   string
		checks map[string]opsserver.Check
		code   int
		want   opsserver.Readiness
	}{
		{
			name: "no checks is ready",
			code: http.StatusOK,
			want: opsserver.Readiness{Status: "ready", Checks: map[string]opsserver.CheckResult{}},
		},
		{
			name:   "all checks pass",
			checks: map[string]opsserver.Check{"db": ok, "kafka": ok},
			code:   http.StatusOK,
			want: opsserver.Readiness{Status: "ready", Checks: map[string]opsserver.CheckResult{
				"db": {Status: "ok"}, "kafka": {Status: "ok"},
			}},
		},
		{
			name:   "one failing check makes it not ready and is named",
			checks: map[string]opsserver.Check{"db": ok, "kafka": fail},
			code:   http.StatusServiceUnavailable,
			want: opsserver.Readiness{Status: "not_ready", Checks: map[string]opsserver.CheckResult{
				"db": {Status: "ok"}, "kafka": {Status: "fail", Error: "connection refused"},
			}},
		},
		{
			name:   "a check that outlives its timeout fails",
			checks: map[string]opsserver.Check{"db": hang},
			code:   http.StatusServiceUnavailable,
			want: opsserver.Readiness{Status: "not_ready", Checks: map[string]opsserver.CheckResult{
				"db": {Status: "fail", Error: "context deadline exceeded"},
			}},
		},
		{
			name:   "a check that ignores its context is reported at the deadline",
			checks: map[string]opsserver.Check{"db": ignoresContext, "kafka": ok},
			code:   http.StatusServiceUnavailable,
			want: opsserver.Readiness{Status: "not_ready", Checks: map[string]opsserver.CheckResult{
				"db": {Status: "fail", Error: "no answer within 100ms"}, "kafka": {Status: "ok"},
			}},
		},
		{
			name:   "a panicking check fails instead of crashing",
			checks: map[string]opsserver.Check{"db": panics},
			code:   http.StatusServiceUnavailable,
			want: opsserver.Readiness{Status: "not_ready", Checks: map[string]opsserver.CheckResult{
				"db": {Status: "fail", Error: "check panicked: boom"},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, base := start(t, opsserver.Config{Checks: tt.checks, CheckTimeout: 100 * time.Millisecond}, nil)
			began := time.Now()
			code, body := get(t, base+"/readyz")
			// One check never returns: a bound far above the check timeout
			// (for a loaded -race run) and below forever proves the bound.
			if took := time.Since(began); took > 20*time.Second {
				t.Errorf("readyz took %s, want it bounded by the check timeout", took)
			}
			if code != tt.code {
				t.Errorf("status = %d, want %d (body %s)", code, tt.code, body)
			}
			var got opsserver.Readiness
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("decode %s: %v", body, err)
			}
			if db := got.Checks["db"]; tt.name == "a check that outlives its timeout fails" && db.Error == "no answer within 100ms" {
				// The check returns its context's error at the deadline, the
				// instant the server stops waiting for it: on a loaded
				// machine the server's own timeout may be seen first. Both
				// say the same; the check failed at its timeout.
				db.Error = "context deadline exceeded"
				got.Checks["db"] = db
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(opsserver.CheckResult{}, "DurationMs")); diff != "" {
				t.Errorf("readiness mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMetricsExposeHTTPRequestsByRouteTemplate(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, base := start(t, opsserver.Config{Registry: reg}, func(e *echo.Echo) {
		e.GET("/things/:id", func(c echo.Context) error { return c.String(http.StatusOK, c.Param("id")) })
		e.GET("/fail", func(c echo.Context) error {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "try later")
		})
		e.GET("/drop", func(c echo.Context) error {
			conn, _, err := c.Response().Hijack()
			if err != nil {
				return err
			}
			return conn.Close()
		})
	})
	get(t, base+"/things/1")
	get(t, base+"/things/2")
	get(t, base+"/fail")
	get(t, base+"/no-such-route")
	// A fresh connection: the transport retries an idempotent request that
	// failed on a reused one, which would count the drop twice.
	noReuse := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if _, err := noReuse.Get(base + "/drop"); err == nil {
		t.Fatal("GET /drop succeeded, want the connection dropped")
	}

	// The client sees the drop before the middleware has counted it: poll.
	var body []byte
	// A poll for something that must happen: the bound only matters when it
	// never does, so it is far above what a loaded -race run needs.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var code int
		code, body = get(t, base+"/metrics")
		if code != http.StatusOK {
			t.Fatalf("metrics status = %d", code)
		}
		if bytes.Contains(body, []byte(`status="hijacked"`)) {
			break
		}
	}
	for _, want := range []string{
		`http_requests_total{method="GET",route="/things/:id",status="200"} 2`,
		`http_requests_total{method="GET",route="/fail",status="503"} 1`,
		`http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`http_requests_total{method="GET",route="/drop",status="hijacked"} 1`,
		`http_request_duration_seconds_count{method="GET",route="/things/:id"} 2`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("metrics lack %q\n%s", want, body)
		}
	}
}

func TestMetricsOptions(t *testing.T) {
	tests := []struct {
		name        string
		cfg         opsserver.Config
		wantRuntime bool
		wantHTTP    bool
	}{
		{name: "defaults: HTTP metrics only", wantHTTP: true},
		{name: "runtime collectors on request", cfg: opsserver.Config{RuntimeMetrics: true}, wantRuntime: true, wantHTTP: true},
		{name: "HTTP metrics can be turned off", cfg: opsserver.Config{DisableHTTPMetrics: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, base := start(t, tt.cfg, nil)
			get(t, base+"/healthz")
			_, body := get(t, base+"/metrics")
			if got := bytes.Contains(body, []byte("go_goroutines")); got != tt.wantRuntime {
				t.Errorf("go_goroutines exposed = %t, want %t", got, tt.wantRuntime)
			}
			if got := bytes.Contains(body, []byte("http_requests_total")); got != tt.wantHTTP {
				t.Errorf("http_requests_total exposed = %t, want %t", got, tt.wantHTTP)
			}
		})
	}
}

func TestTwoServersCanShareOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, a := start(t, opsserver.Config{Registry: reg, RuntimeMetrics: true}, nil)
	_, b := start(t, opsserver.Config{Registry: reg, RuntimeMetrics: true}, nil)
	get(t, a+"/healthz")
	get(t, b+"/healthz")
	_, body := get(t, a+"/metrics")
	want := `http_requests_total{method="GET",route="/healthz",status="200"} 2`
	if !bytes.Contains(body, []byte(want)) {
		t.Errorf("metrics lack %q:\n%s", want, body)
	}
}

func TestErrorsAreAnsweredAsJSON(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	_, base := start(t, opsserver.Config{Log: log, BodyLimit: "1K"}, func(e *echo.Echo) {
		e.POST("/echo", func(c echo.Context) error {
			b, err := io.ReadAll(c.Request().Body)
			if err != nil {
				return err
			}
			return c.Blob(http.StatusOK, "text/plain", b)
		})
		e.GET("/panic", func(echo.Context) error { panic("handler bug") })
		e.GET("/internal", func(echo.Context) error { return errors.New("secret database detail") })
	})
	big := strings.Repeat("x", 2048)
	tests := []struct {
		name     string
		method   string
		path     string
		body     io.Reader
		wantCode int
		want     opsserver.ErrorBody
	}{
		{"unknown route", http.MethodGet, "/nope", nil, 404, opsserver.ErrorBody{Error: "not_found", Message: "Not Found"}},
		{"wrong method", http.MethodDelete, "/healthz", nil, 405, opsserver.ErrorBody{Error: "method_not_allowed", Message: "Method Not Allowed"}},
		{"oversize body with length", http.MethodPost, "/echo", strings.NewReader(big), 413, opsserver.ErrorBody{Error: "request_entity_too_large", Message: "Request Entity Too Large"}},
		// A reader of unknown size is sent chunked: the limit applies while reading.
		{"oversize chunked body", http.MethodPost, "/echo", io.MultiReader(strings.NewReader(big)), 413, opsserver.ErrorBody{Error: "request_entity_too_large", Message: "Request Entity Too Large"}},
		{"panic becomes 500", http.MethodGet, "/panic", nil, 500, opsserver.ErrorBody{Error: "internal_server_error", Message: "internal server error"}},
		{"internal detail is not leaked", http.MethodGet, "/internal", nil, 500, opsserver.ErrorBody{Error: "internal_server_error", Message: "internal server error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", tt.method, tt.path, err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantCode {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantCode)
			}
			var got opsserver.ErrorBody
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatalf("decode error body: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("error body mismatch (-want +got):\n%s", diff)
			}
		})
	}
	// The server survived the panic and logged it with its stack, once.
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("after panic: healthz = %d", code)
	}
	if got := logs.String(); !strings.Contains(got, "panic in handler") || !strings.Contains(got, "goroutine") {
		t.Errorf("log lacks the panic and its stack:\n%s", got)
	}
	if got := logs.String(); !strings.Contains(got, "secret database detail") {
		t.Errorf("log lacks the internal error:\n%s", got)
	}
}

func TestServerTimeoutsCloseSlowConnections(t *testing.T) {
	tests := []struct {
		name string
		cfg  opsserver.Config
		// talk writes to a fresh connection; the server must then close it.
		talk func(conn net.Conn) error
	}{
		{
			name: "headers sent too slowly",
			cfg:  opsserver.Config{ReadHeaderTimeout: 100 * time.Millisecond},
			talk: func(conn net.Conn) error {
				_, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
				return err
			},
		},
		{
			name: "body sent too slowly",
			cfg:  opsserver.Config{ReadTimeout: 200 * time.Millisecond},
			talk: func(conn net.Conn) error {
				_, err := io.WriteString(conn, "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
				return err
			},
		},
		{
			name: "idle keep-alive connection",
			cfg:  opsserver.Config{IdleTimeout: 100 * time.Millisecond},
			talk: func(conn net.Conn) error {
				if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
					return err
				}
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					return err
				}
				return resp.Body.Close()
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := start(t, tt.cfg, func(e *echo.Echo) {
				e.POST("/slow", func(c echo.Context) error {
					_, err := io.ReadAll(c.Request().Body)
					return err
				})
			})
			conn, err := net.Dial("tcp", s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := tt.talk(conn); err != nil {
				t.Fatalf("talk: %v", err)
			}
			// The server closes the connection; we only wait much longer than
			// the timeout under test to avoid hanging if it does not.
			if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(io.Discard, conn)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("connection still open after 5s, want it closed by the server timeout")
			}
		})
	}
}

func TestStartFailsOnBadConfigurationAndBusyAddress(t *testing.T) {
	busy, _ := start(t, opsserver.Config{}, nil)
	tests := []struct {
		name    string
		cfg     opsserver.Config
		wantErr string
	}{
		{"unparsable body limit", opsserver.Config{Addr: "127.0.0.1:0", BodyLimit: "lots"}, `body limit "lots"`},
		{"address in use", opsserver.Config{Addr: busy.Addr()}, "listen on " + busy.Addr()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := opsserver.New(tt.cfg).Start(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Start error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestShutdownWaitsForInFlightRequests(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	s := opsserver.New(opsserver.Config{Addr: "127.0.0.1:0"})
	s.Echo().GET("/work", func(c echo.Context) error {
		close(entered)
		<-release
		return c.String(http.StatusOK, "done")
	})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	type result struct {
		code int
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + s.Addr() + "/work")
		if err != nil {
			got <- result{err: err}
			return
		}
		resp.Body.Close()
		got <- result{code: resp.StatusCode}
	}()
	<-entered

	shutdownDone := make(chan error, 1)
	go func() { shutdownDone <- s.Shutdown(context.Background()) }()
	select {
	case err := <-shutdownDone:
		t.Fatalf("Shutdown returned (%v) while a request was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if r := <-got; r.err != nil || r.code != http.StatusOK {
		t.Errorf("in-flight request = %d, %v; want 200", r.code, r.err)
	}
	if err := <-shutdownDone; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := s.Err(); err != nil {
		t.Errorf("Err after clean shutdown = %v", err)
	}
}

func TestShutdownCutsRequestsThatOutliveItsDeadline(t *testing.T) {
	handlerCtxDone := make(chan struct{})
	entered := make(chan struct{})
	s := opsserver.New(opsserver.Config{Addr: "127.0.0.1:0"})
	s.Echo().GET("/hang", func(c echo.Context) error {
		close(entered)
		<-c.Request().Context().Done()
		close(handlerCtxDone)
		return nil
	})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	go func() {
		if resp, err := http.Get("http://" + s.Addr() + "/hang"); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := s.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown error = %v, want deadline exceeded", err)
	}
	select {
	case <-handlerCtxDone:
	case <-time.After(30 * time.Second): // generous: a loaded -race run
		t.Error("the hanging handler's context was not cancelled")
	}
}

func TestRunServesUntilContextIsDone(t *testing.T) {
	s := opsserver.New(opsserver.Config{Addr: "127.0.0.1:0"})
	ctx, cancel := context.WithCancel(t.Context())
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx) }()

	var addr string
	// A poll for something that must happen: the bound only matters when it
	// never does, so it is far above what a loaded -race run needs.
	for deadline := time.Now().Add(30 * time.Second); addr == "" && time.Now().Before(deadline); {
		addr = s.Addr()
		time.Sleep(time.Millisecond)
	}
	if addr == "" {
		t.Fatal("server never bound")
	}
	if code, _ := get(t, "http://"+addr+"/healthz"); code != http.StatusOK {
		t.Errorf("healthz = %d", code)
	}
	cancel()
	if err := <-runErr; err != nil {
		t.Errorf("Run: %v", err)
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("server still answers after Run returned")
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines to log into.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
