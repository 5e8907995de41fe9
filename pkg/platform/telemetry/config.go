package telemetry

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/envconfig"
)

// The export protocols of OTEL_EXPORTER_OTLP_PROTOCOL.
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// The samplers of OTEL_TRACES_SAMPLER, as the OpenTelemetry specification
// names them.
const (
	SamplerAlwaysOn                = "always_on"
	SamplerAlwaysOff               = "always_off"
	SamplerTraceIDRatio            = "traceidratio"
	SamplerParentBasedAlwaysOn     = "parentbased_always_on"
	SamplerParentBasedAlwaysOff    = "parentbased_always_off"
	SamplerParentBasedTraceIDRatio = "parentbased_traceidratio"
)

// Config is the tracing configuration, read from the variables the
// OpenTelemetry specification defines (envconfig.Parse reads the tags).
// The zero value, like an environment that sets none of them, is tracing
// off at no cost.
type Config struct {
	// Endpoint is the OTLP collector's base URL, for example
	// http://jaeger:4318 (http/protobuf: /v1/traces is appended) or
	// http://jaeger:4317 (grpc). Empty, and TracesEndpoint empty: tracing
	// is off.
	Endpoint string `env:"OTEL_EXPORTER_OTLP_ENDPOINT"`
	// TracesEndpoint is the traces URL itself, used as is; it wins over
	// Endpoint.
	TracesEndpoint string `env:"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"`
	// Protocol is http/protobuf or grpc; TracesProtocol wins over it.
	Protocol       string `env:"OTEL_EXPORTER_OTLP_PROTOCOL" envDefault:"http/protobuf"`
	TracesProtocol string `env:"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"`
	// ServiceName is the service.name resource attribute; empty means the
	// service's own name.
	ServiceName string `env:"OTEL_SERVICE_NAME"`
	// ResourceAttributes are more resource attributes: key=value pairs
	// separated by commas, values percent-encoded
	// (deployment.environment.name=prod,service.namespace=reefer).
	ResourceAttributes string `env:"OTEL_RESOURCE_ATTRIBUTES"`
	// Sampler and SamplerArg choose which traces are kept (see the
	// Sampler* constants); the ratio samplers take a SamplerArg in [0, 1]
	// (default 1).
	Sampler    string `env:"OTEL_TRACES_SAMPLER" envDefault:"parentbased_always_on"`
	SamplerArg string `env:"OTEL_TRACES_SAMPLER_ARG"`
	// Exporter is otlp or none.
	Exporter string `env:"OTEL_TRACES_EXPORTER" envDefault:"otlp"`
	// Disabled turns tracing off whatever else is set.
	Disabled bool `env:"OTEL_SDK_DISABLED"`

	// Provider, when set, is used as it is and the variables above are
	// ignored: the demo's in-memory recorder, a test's exporter.
	Provider trace.TracerProvider `env:"-"`
}

// DefaultConfig is the configuration of an environment that sets no
// OTEL_* variable: tracing off, and the specification's defaults.
func DefaultConfig() Config {
	return Config{Protocol: ProtocolHTTP, Sampler: SamplerParentBasedAlwaysOn, Exporter: "otlp"}
}

// ConfigFromEnv reads and validates the OTEL_* variables through getenv.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c, err := envconfig.Parse[Config](getenv)
	if err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Enabled reports whether the configuration exports spans.
func (c Config) Enabled() bool {
	return !c.Disabled && c.Exporter != "none" && c.endpoint() != ""
}

func (c Config) endpoint() string {
	if c.TracesEndpoint != "" {
		return c.TracesEndpoint
	}
	return c.Endpoint
}

func (c Config) protocol() string {
	if c.TracesProtocol != "" {
		return c.TracesProtocol
	}
	if c.Protocol == "" {
		return ProtocolHTTP
	}
	return c.Protocol
}

// Validate reports every invalid variable, each named with its value and
// the accepted form; it checks them even when tracing is off, so that a
// typo does not wait for the day someone sets the endpoint.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, e := range []struct{ name, value string }{
		{"OTEL_EXPORTER_OTLP_ENDPOINT", c.Endpoint}, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", c.TracesEndpoint},
	} {
		if e.value == "" {
			continue
		}
		if u, err := url.Parse(e.value); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("%s %q: want an absolute http(s) URL such as http://jaeger:4318", e.name, envconfig.RedactURL(e.value))
		}
	}
	for _, p := range []struct{ name, value string }{
		{"OTEL_EXPORTER_OTLP_PROTOCOL", c.Protocol}, {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", c.TracesProtocol},
	} {
		if p.value != "" && p.value != ProtocolHTTP && p.value != ProtocolGRPC {
			add("%s %q: want http/protobuf or grpc", p.name, p.value)
		}
	}
	switch c.Sampler {
	case "", SamplerAlwaysOn, SamplerAlwaysOff, SamplerParentBasedAlwaysOn, SamplerParentBasedAlwaysOff:
	case SamplerTraceIDRatio, SamplerParentBasedTraceIDRatio:
		if _, err := c.ratio(); err != nil {
			errs = append(errs, err)
		}
	default:
		add("OTEL_TRACES_SAMPLER %q: want always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio", c.Sampler)
	}
	if c.Exporter != "" && c.Exporter != "otlp" && c.Exporter != "none" {
		add("OTEL_TRACES_EXPORTER %q: want otlp or none", c.Exporter)
	}
	if _, err := parseResourceAttributes(c.ResourceAttributes); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ratio is the sampling ratio of the traceidratio samplers: 1 by default.
func (c Config) ratio() (float64, error) {
	if c.SamplerArg == "" {
		return 1, nil
	}
	r, err := strconv.ParseFloat(c.SamplerArg, 64)
	if err != nil || r < 0 || r > 1 {
		return 0, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG %q: want a ratio in [0, 1] such as 0.25", c.SamplerArg)
	}
	return r, nil
}

// parseResourceAttributes reads OTEL_RESOURCE_ATTRIBUTES: key=value pairs
// separated by commas, values percent-encoded.
func parseResourceAttributes(s string) ([]attribute.KeyValue, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []attribute.KeyValue
	for pair := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES %q: %q is not key=value; want key=value pairs separated by commas", s, pair)
		}
		dec, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES %q: the value of %s is not percent-encoded properly", s, k)
		}
		out = append(out, attribute.String(k, dec))
	}
	return out, nil
}

// LogValue is the configuration for the start log line: no secrets are
// read here (OTEL_EXPORTER_OTLP_HEADERS stays the exporter's own).
func (c Config) LogValue() slog.Value {
	if c.Provider != nil {
		return slog.GroupValue(slog.String("provider", "given"))
	}
	if !c.Enabled() {
		return slog.GroupValue(slog.Bool("enabled", false))
	}
	return slog.GroupValue(
		slog.Bool("enabled", true),
		slog.String("endpoint", envconfig.RedactURL(c.endpoint())),
		slog.String("protocol", c.protocol()),
		slog.String("sampler", c.Sampler),
		slog.String("sampler_arg", c.SamplerArg),
	)
}
