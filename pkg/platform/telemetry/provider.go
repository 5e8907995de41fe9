package telemetry

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Provider is a TracerProvider with its shutdown. Pass Provider (the
// embedded interface) to the components that create spans; call Shutdown
// last, after them, so that the spans they ended are exported.
type Provider struct {
	trace.TracerProvider
	shutdown func(context.Context) error
}

// Tracing is the provider to give the components that create spans:
// nil when tracing is off, so that they skip their tracing work
// altogether (their Tracing fields take nil for "no spans").
func (p *Provider) Tracing() trace.TracerProvider {
	if _, off := p.TracerProvider.(noop.TracerProvider); off {
		return nil
	}
	return p.TracerProvider
}

// Shutdown flushes the spans not exported yet and stops the exporter,
// within ctx. It does nothing for a no-op or a given provider.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.shutdown == nil {
		return nil
	}
	if err := p.shutdown(ctx); err != nil {
		return fmt.Errorf("shut down tracing: %w", err)
	}
	return nil
}

// New builds the provider c describes for the service named service (the
// service.name resource attribute unless OTEL_SERVICE_NAME says another)
// of version version. With tracing off it returns the no-op provider. The
// exporter connects lazily: an unreachable collector costs dropped spans
// and a log line of the SDK, never the service's start.
func New(ctx context.Context, c Config, service, version string) (*Provider, error) {
	if c.Provider != nil {
		return &Provider{TracerProvider: c.Provider}, nil
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if !c.Enabled() {
		return &Provider{TracerProvider: noop.NewTracerProvider()}, nil
	}
	exp, err := c.exporter(ctx)
	if err != nil {
		return nil, err
	}
	sampler, err := c.sampler()
	if err != nil {
		return nil, err
	}
	res, err := c.resource(service, version)
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sampler),
		sdktrace.WithResource(res),
	)
	return &Provider{TracerProvider: tp, shutdown: tp.Shutdown}, nil
}

// exporter is the OTLP exporter of the configured protocol. An endpoint
// from OTEL_EXPORTER_OTLP_ENDPOINT is a base URL: the http/protobuf
// exporter posts to its /v1/traces.
func (c Config) exporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	endpoint := c.endpoint()
	if c.protocol() == ProtocolGRPC {
		exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(endpoint))
		if err != nil {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT %q: start the grpc exporter: %w", endpoint, err)
		}
		return exp, nil
	}
	if c.TracesEndpoint == "" {
		endpoint = strings.TrimSuffix(endpoint, "/") + "/v1/traces"
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT %q: start the http/protobuf exporter: %w", endpoint, err)
	}
	return exp, nil
}

func (c Config) sampler() (sdktrace.Sampler, error) {
	ratio, err := c.ratio()
	if err != nil {
		return nil, err
	}
	switch c.Sampler {
	case SamplerAlwaysOn:
		return sdktrace.AlwaysSample(), nil
	case SamplerAlwaysOff:
		return sdktrace.NeverSample(), nil
	case SamplerTraceIDRatio:
		return sdktrace.TraceIDRatioBased(ratio), nil
	case SamplerParentBasedAlwaysOff:
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case SamplerParentBasedTraceIDRatio:
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	}
	return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
}

// resource is service.name and service.version, then
// OTEL_RESOURCE_ATTRIBUTES (which may override the version), then
// OTEL_SERVICE_NAME.
func (c Config) resource(service, version string) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{semconv.ServiceName(service)}
	if version != "" {
		attrs = append(attrs, semconv.ServiceVersion(version))
	}
	more, err := parseResourceAttributes(c.ResourceAttributes)
	if err != nil {
		return nil, err
	}
	attrs = append(attrs, more...)
	if c.ServiceName != "" {
		attrs = append(attrs, semconv.ServiceName(c.ServiceName))
	}
	// A set keeps the last value of a repeated key.
	set := attribute.NewSet(attrs...)
	return resource.NewWithAttributes(semconv.SchemaURL, set.ToSlice()...), nil
}

// Propagator is the W3C propagation every component of the suite uses:
// traceparent and tracestate, and baggage.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}
