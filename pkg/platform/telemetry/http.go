package telemetry

import (
	"context"
	"net"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the spans this package
// creates.
const ScopeName = "github.com/reeferdlq/reefer-dlq/pkg/platform/telemetry"

// Transport returns a RoundTripper that wraps each request of next in a
// client span (HTTP semantic conventions v1.43.0) and sends the span's
// context in the traceparent header, so that the server continues the
// trace. A nil next means http.DefaultTransport.
func Transport(tp trace.TracerProvider, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{tracer: tp.Tracer(ScopeName), next: next, prop: Propagator()}
}

type transport struct {
	tracer trace.Tracer
	next   http.RoundTripper
	prop   propagation.TextMapPropagator
}

// routeKey is the context key of WithRoute.
type routeKey struct{}

// WithRoute returns ctx naming the URL template of the request it will
// carry (/containers/{containerID}/allocation), so that Transport names
// the span after it (PUT /containers/{containerID}/allocation) rather
// than after the method alone.
func WithRoute(ctx context.Context, template string) context.Context {
	return context.WithValue(ctx, routeKey{}, template)
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	name := r.Method
	attrs := append(serverAddr(r.URL.Host),
		semconv.HTTPRequestMethodKey.String(r.Method),
		semconv.URLFull(r.URL.Redacted()))
	if tmpl, ok := r.Context().Value(routeKey{}).(string); ok && tmpl != "" {
		name += " " + tmpl
		attrs = append(attrs, semconv.URLTemplate(tmpl))
	}
	ctx, span := t.tracer.Start(r.Context(), name,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	// A RoundTripper must not change the caller's request.
	r = r.Clone(ctx)
	t.prop.Inject(ctx, propagation.HeaderCarrier(r.Header))
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
		span.SetStatus(codes.Error, err.Error())
	} else {
		endStatus(span, resp.StatusCode, 400)
	}
	span.End()
	return resp, err
}

// StartServerSpan starts the server span of an incoming request,
// continuing the caller's trace from its headers, and returns the request
// with the span's context. route is the matched route template
// (/containers/:containerID/allocation), "" when unknown. End the span
// with EndServerSpan.
func StartServerSpan(tracer trace.Tracer, r *http.Request, route string) (*http.Request, trace.Span) {
	ctx := Propagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	name := r.Method
	attrs := []attribute.KeyValue{semconv.HTTPRequestMethodKey.String(r.Method), semconv.URLPath(r.URL.Path)}
	if route != "" {
		name += " " + route
		attrs = append(attrs, semconv.HTTPRoute(route))
	}
	ctx, span := tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	return r.WithContext(ctx), span
}

// EndServerSpan records the response status on a server span and ends
// it: a 5xx is an error of the server, a 4xx the client's (not an error
// of this span, as the HTTP conventions say).
func EndServerSpan(span trace.Span, status int) {
	endStatus(span, status, 500)
	span.End()
}

func endStatus(span trace.Span, status, errorFrom int) {
	span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	if status >= errorFrom {
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
		span.SetStatus(codes.Error, http.StatusText(status))
	}
}

func serverAddr(hostport string) []attribute.KeyValue {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return []attribute.KeyValue{semconv.ServerAddress(hostport)}
	}
	attrs := []attribute.KeyValue{semconv.ServerAddress(host)}
	if p, err := strconv.Atoi(port); err == nil {
		attrs = append(attrs, semconv.ServerPort(p))
	}
	return attrs
}

// errorType is the error.type of a failed round trip: timeout, or the
// error's Go type.
func errorType(err error) string {
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return "timeout"
	}
	return "_OTHER"
}
