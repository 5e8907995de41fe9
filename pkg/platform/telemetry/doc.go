// Package telemetry turns the standard OTEL_* environment variables into
// an OpenTelemetry TracerProvider, and gives a service the two small
// pieces every traced Go service needs: a slog handler that stamps each
// log line with the active span's trace_id and span_id, and HTTP
// instrumentation (a client Transport that injects traceparent, a server
// middleware that continues it).
//
// The provider is a value the service passes down explicitly (a Config
// field of each component that creates spans); nothing here sets the
// otel package's globals, so two services in one process (the demo, the
// tests) keep their own providers.
//
// When no endpoint is set (neither OTEL_EXPORTER_OTLP_ENDPOINT nor
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), or OTEL_SDK_DISABLED=true, or
// OTEL_TRACES_EXPORTER=none, the provider is the OpenTelemetry no-op one:
// no SDK, no exporter, no goroutine, and a span costs one small
// allocation at most. W3C trace context still travels: a no-op span
// carries its parent's context, so a traceparent that came in goes out
// unchanged.
//
// A variable with a bad value stops the service at start, with an error
// that names it (see Config.Validate).
package telemetry
