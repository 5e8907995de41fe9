package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/telemetry"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestNoEndpointIsTheNoOpProvider(t *testing.T) {
	for _, vars := range []map[string]string{
		{},
		{"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"},
	} {
		cfg, err := telemetry.ConfigFromEnv(env(vars))
		if err != nil {
			t.Fatalf("%v: %v", vars, err)
		}
		p, err := telemetry.New(t.Context(), cfg, "svc", "v1")
		if err != nil {
			t.Fatalf("%v: %v", vars, err)
		}
		if cfg.Enabled() || p.Tracing() != nil {
			t.Errorf("%v: enabled %v, Tracing %v; want off", vars, cfg.Enabled(), p.Tracing())
		}
		_, span := p.Tracer("t").Start(t.Context(), "s")
		if span.IsRecording() {
			t.Errorf("%v: span records, want the no-op provider", vars)
		}
		if err := p.Shutdown(t.Context()); err != nil {
			t.Error(err)
		}
	}
}

// TestBadValuesNameTheirVariable: a bad value stops the service at
// start; the error names the variable.
func TestBadValuesNameTheirVariable(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://collector/v1/traces"},
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"},
		{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "thrift"},
		{"OTEL_TRACES_SAMPLER", "sometimes"},
		{"OTEL_TRACES_EXPORTER", "zipkin"},
		{"OTEL_RESOURCE_ATTRIBUTES", "team"},
		{"OTEL_RESOURCE_ATTRIBUTES", "team=%zz"},
		{"OTEL_SDK_DISABLED", "maybe"},
	} {
		_, err := telemetry.ConfigFromEnv(env(map[string]string{tc.name: tc.value}))
		if err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s=%q: error %v, want one naming %s", tc.name, tc.value, err, tc.name)
		}
	}
	for _, arg := range []string{"2", "-0.1", "half"} {
		vars := map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": arg}
		if _, err := telemetry.ConfigFromEnv(env(vars)); err == nil || !strings.Contains(err.Error(), "OTEL_TRACES_SAMPLER_ARG") {
			t.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: error %v, want one naming it", arg, err)
		}
	}
}

// collector is an OTLP/HTTP endpoint that keeps what it is sent.
type collector struct {
	mu    sync.Mutex
	paths []string
	reqs  []*collectortrace.ExportTraceServiceRequest
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.paths, c.reqs = append(c.paths, r.URL.Path), append(c.reqs, &req)
	c.mu.Unlock()
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// TestShutdownFlushesToTheEndpoint: http/protobuf to the base URL's
// /v1/traces, the resource from OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES, every span out by the end of Shutdown.
func TestShutdownFlushesToTheEndpoint(t *testing.T) {
	c := &collector{}
	srv := httptest.NewServer(c)
	defer srv.Close()
	cfg, err := telemetry.ConfigFromEnv(env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL,
		"OTEL_SERVICE_NAME":           "renamed",
		"OTEL_RESOURCE_ATTRIBUTES":    "deployment.environment.name=test,team=reefer%20ops",
		"OTEL_TRACES_SAMPLER":         "traceidratio",
		"OTEL_TRACES_SAMPLER_ARG":     "1",
	}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := telemetry.New(t.Context(), cfg, "svc", "v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	_, span := p.Tracer("t").Start(t.Context(), "one")
	span.End()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.reqs) != 1 || c.paths[0] != "/v1/traces" {
		t.Fatalf("got %d exports to %v, want 1 to /v1/traces", len(c.reqs), c.paths)
	}
	rs := c.reqs[0].GetResourceSpans()[0]
	got := map[string]string{}
	for _, kv := range rs.GetResource().GetAttributes() {
		got[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	for k, v := range map[string]string{"service.name": "renamed", "service.version": "v1.2.3", "deployment.environment.name": "test", "team": "reefer ops"} {
		if got[k] != v {
			t.Errorf("resource %s = %q, want %q", k, got[k], v)
		}
	}
	if n := len(rs.GetScopeSpans()[0].GetSpans()); n != 1 {
		t.Errorf("%d spans exported, want 1", n)
	}
}

func TestGRPCProtocolBuildsLazily(t *testing.T) {
	cfg, err := telemetry.ConfigFromEnv(env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
	}))
	if err != nil {
		t.Fatal(err)
	}
	// Nothing listens: the service starts anyway, and spans are dropped.
	p, err := telemetry.New(t.Context(), cfg, "svc", "")
	if err != nil || p.Tracing() == nil {
		t.Fatalf("New: %v, %v; want a recording provider", p, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_ = p.Shutdown(ctx) // the export fails: nothing listens
}

func TestLogHandlerAddsTheSpanIDs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "c")
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, span := tp.Tracer("t").Start(t.Context(), "s")
	log.InfoContext(ctx, "in a span")
	log.InfoContext(t.Context(), "outside")
	log.Info("no context")
	span.End()

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3", len(lines))
	}
	for i, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if m["trace_id"] != span.SpanContext().TraceID().String() || m["span_id"] != span.SpanContext().SpanID().String() || m["component"] != "c" {
				t.Errorf("line %s: want the span's trace_id and span_id, and the logger's attributes", line)
			}
			continue
		}
		if _, ok := m["trace_id"]; ok {
			t.Errorf("line %s: a trace_id without a span", line)
		}
	}
}

// TestHTTPContinuesTheTrace: the client span's context travels in
// traceparent, and the server span is its child.
func TestHTTPContinuesTheTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	var header string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header = r.Header.Get("traceparent")
		_, span := telemetry.StartServerSpan(tp.Tracer("server"), r, "/containers/:id/allocation")
		w.WriteHeader(http.StatusServiceUnavailable)
		telemetry.EndServerSpan(span, http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	client := &http.Client{Transport: telemetry.Transport(tp, nil)}
	ctx := telemetry.WithRoute(t.Context(), "/containers/{id}/allocation")
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, srv.URL+"/containers/C-1/allocation", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	var clientSpan, serverSpan sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		switch s.SpanKind() {
		case trace.SpanKindClient:
			clientSpan = s
		case trace.SpanKindServer:
			serverSpan = s
		}
	}
	if clientSpan == nil || serverSpan == nil {
		t.Fatalf("spans %v, want a client and a server span", rec.Ended())
	}
	if clientSpan.Name() != "PUT /containers/{id}/allocation" || serverSpan.Name() != "PUT /containers/:id/allocation" {
		t.Errorf("names %q and %q", clientSpan.Name(), serverSpan.Name())
	}
	if serverSpan.Parent().SpanID() != clientSpan.SpanContext().SpanID() || !strings.Contains(header, clientSpan.SpanContext().SpanID().String()) {
		t.Errorf("server parent %v, traceparent %q; want the client span %v", serverSpan.Parent().SpanID(), header, clientSpan.SpanContext().SpanID())
	}
	if clientSpan.Status().Code.String() != "Error" || serverSpan.Status().Code.String() != "Error" {
		t.Errorf("statuses %v and %v, want errors for a 503", clientSpan.Status(), serverSpan.Status())
	}
}
