package harness

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// HostAlias is the name under which a service container reaches the test
// process (Docker's host-gateway): an in-test receiver listens there.
const HostAlias = "host.docker.internal"

// Span is one span a TraceReceiver received, flattened for assertions.
type Span struct {
	Service       string // the resource's service.name
	TraceID       string // hex
	SpanID        string
	ParentSpanID  string // "" for a root
	Name          string
	Kind          string // server, client, producer, consumer, internal
	Attrs         map[string]string
	Links         []Link
	Start, End    time.Time
	StatusError   bool
	StatusMessage string
}

// Link is a span's link to another span.
type Link struct {
	TraceID, SpanID string
	Attrs           map[string]string
}

// TraceReceiver is an OTLP/HTTP trace receiver of the test's own: it
// decodes the protobuf ExportTraceServiceRequest the services post to
// /v1/traces and keeps every span. The services reach it at
// Endpoint() (set OTEL_EXPORTER_OTLP_ENDPOINT to it).
type TraceReceiver struct {
	port int
	mu   sync.Mutex
	got  []Span
}

// StartTraceReceiver listens on every interface (a container reaches the
// test process through Docker's gateway) until the test ends.
func StartTraceReceiver(tb testing.TB) *TraceReceiver {
	tb.Helper()
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		tb.Fatalf("trace receiver: %v", err)
	}
	r := &TraceReceiver{port: ln.Addr().(*net.TCPAddr).Port}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.export)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return r
}

// Endpoint is the base URL of the receiver as a service container
// reaches it: OTEL_EXPORTER_OTLP_ENDPOINT.
func (r *TraceReceiver) Endpoint() string {
	return "http://" + HostAlias + ":" + strconv.Itoa(r.port)
}

// Env is the tracing environment of a service that exports to r: every
// span kept, exported every 200 ms.
func (r *TraceReceiver) Env() map[string]string {
	return map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": r.Endpoint(),
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_TRACES_SAMPLER":         "always_on",
		"OTEL_BSP_SCHEDULE_DELAY":     "200",
	}
}

func (r *TraceReceiver) export(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 32<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var in collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &in); err != nil {
		http.Error(w, "not an ExportTraceServiceRequest: "+err.Error(), http.StatusBadRequest)
		return
	}
	var spans []Span
	for _, rs := range in.GetResourceSpans() {
		service := attrs(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				spans = append(spans, flatten(service, s))
			}
		}
	}
	r.mu.Lock()
	r.got = append(r.got, spans...)
	r.mu.Unlock()
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func flatten(service string, s *tracepb.Span) Span {
	out := Span{
		Service:       service,
		TraceID:       hex.EncodeToString(s.GetTraceId()),
		SpanID:        hex.EncodeToString(s.GetSpanId()),
		ParentSpanID:  hex.EncodeToString(s.GetParentSpanId()),
		Name:          s.GetName(),
		Kind:          kindName(s.GetKind()),
		Attrs:         attrs(s.GetAttributes()),
		Start:         time.Unix(0, int64(s.GetStartTimeUnixNano())),
		End:           time.Unix(0, int64(s.GetEndTimeUnixNano())),
		StatusError:   s.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR,
		StatusMessage: s.GetStatus().GetMessage(),
	}
	for _, l := range s.GetLinks() {
		out.Links = append(out.Links, Link{TraceID: hex.EncodeToString(l.GetTraceId()), SpanID: hex.EncodeToString(l.GetSpanId()), Attrs: attrs(l.GetAttributes())})
	}
	return out
}

func kindName(k tracepb.Span_SpanKind) string {
	switch k {
	case tracepb.Span_SPAN_KIND_SERVER:
		return "server"
	case tracepb.Span_SPAN_KIND_CLIENT:
		return "client"
	case tracepb.Span_SPAN_KIND_PRODUCER:
		return "producer"
	case tracepb.Span_SPAN_KIND_CONSUMER:
		return "consumer"
	}
	return "internal"
}

// attrs renders attribute values as strings (ints in decimal).
func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		v := kv.GetValue()
		switch x := v.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = x.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = strconv.FormatInt(x.IntValue, 10)
		case *commonpb.AnyValue_BoolValue:
			m[kv.GetKey()] = strconv.FormatBool(x.BoolValue)
		case *commonpb.AnyValue_DoubleValue:
			m[kv.GetKey()] = strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
		default:
			m[kv.GetKey()] = fmt.Sprint(v)
		}
	}
	return m
}

// Spans returns a copy of every span received so far.
func (r *TraceReceiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.got...)
}

// Wait polls Spans until check returns nil or ctx ends; it returns
// check's last error then.
func (r *TraceReceiver) Wait(ctx context.Context, check func([]Span) error) error {
	for {
		err := check(r.Spans())
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (waited until %v)", err, context.Cause(ctx))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
