package validate

import (
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/reeferdlq/reefer-dlq/deployments/validate/kube"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/telemetry"
)

// TestComposeServicesExportTracesToJaegerUnderObserve: every compose
// service that creates spans takes OTEL_EXPORTER_OTLP_ENDPOINT from the
// environment (tracing off when it is unset), and `make up` with the
// observe profile sets it to the jaeger service's OTLP/HTTP port, a value
// the services' own parser accepts.
func TestComposeServicesExportTracesToJaegerUnderObserve(t *testing.T) {
	const passThrough = "${OTEL_EXPORTER_OTLP_ENDPOINT:-}"
	svcs := composeServices(t)
	for _, name := range []string{"reefer-manager", "order-retry", "container-inventory-mock", "dlq", "dlq-watch"} {
		s, ok := svcs[name]
		if !ok {
			t.Errorf("compose.yaml has no %s service", name)
			continue
		}
		if got := s.Environment["OTEL_EXPORTER_OTLP_ENDPOINT"]; got != passThrough {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT=%q, want %q", name, got, passThrough)
		}
		env := map[string]string{}
		for k, v := range s.Environment {
			if strings.HasPrefix(k, "OTEL_") && !strings.Contains(v, "${") {
				env[k] = v
			}
		}
		if _, err := telemetry.ConfigFromEnv(func(k string) string { return env[k] }); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	makefile, err := os.ReadFile(repo(t, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	const set = "OTEL_EXPORTER_OTLP_ENDPOINT=$${OTEL_EXPORTER_OTLP_ENDPOINT:-"
	i := strings.Index(string(makefile), set)
	if i < 0 {
		t.Fatalf("Makefile: no %s...} in make up", set)
	}
	endpoint, _, _ := strings.Cut(string(makefile[i+len(set):]), "}")
	cfg, err := telemetry.ConfigFromEnv(func(k string) string {
		if k == "OTEL_EXPORTER_OTLP_ENDPOINT" {
			return endpoint
		}
		return ""
	})
	if err != nil || !cfg.Enabled() {
		t.Fatalf("make up's endpoint %q: %v (enabled %v)", endpoint, err, cfg.Enabled())
	}
	u, _ := url.Parse(endpoint)
	host, port, _ := net.SplitHostPort(u.Host)
	j, ok := svcs[host]
	if !ok || !slices.Equal(j.Profiles, []string{"observe"}) {
		t.Errorf("make up's endpoint %s names %q: want the observe profile's trace backend", endpoint, host)
	}
	if port != "4318" || cfg.Protocol != telemetry.ProtocolHTTP {
		t.Errorf("make up's endpoint %s with protocol %s: want the OTLP/HTTP port 4318 and http/protobuf", endpoint, cfg.Protocol)
	}
}

// TestKubernetesOverlaysConfigureTraces: in production (prod and the
// Strimzi overlays) every Deployment of the suite exports traces to the
// cluster's collector over OTLP/gRPC with a parent-based ratio sampler (so
// a kept trace is whole across services) and names its environment; the
// services' own parser accepts the settings. In dev, tracing is off until
// an endpoint is set, and every trace is kept then.
func TestKubernetesOverlaysConfigureTraces(t *testing.T) {
	for _, o := range overlays(t) {
		t.Run(o.name, func(t *testing.T) {
			objs, err := kube.Render(repo(t, "deployments", "k8s", "overlays", o.name))
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range kube.All[*appsv1.Deployment](objs) {
				if d.Name == "container-inventory-mock" {
					continue // the legacy service's stand-in: dev only
				}
				env := containerEnv(t, objs, o, d.Spec.Template.Spec, d.Spec.Template.Spec.Containers[0])
				cfg, err := telemetry.ConfigFromEnv(func(k string) string { return env[k] })
				if err != nil {
					t.Errorf("%s: %v", d.Name, err)
					continue
				}
				wantEnv := "deployment.environment.name=" + o.name
				if o.name != "dev" {
					wantEnv = "deployment.environment.name=prod"
				}
				if got := env["OTEL_RESOURCE_ATTRIBUTES"]; got != wantEnv {
					t.Errorf("%s: OTEL_RESOURCE_ATTRIBUTES=%q, want %q", d.Name, got, wantEnv)
				}
				if o.name == "dev" {
					if cfg.Enabled() || cfg.Sampler != telemetry.SamplerParentBasedAlwaysOn {
						t.Errorf("%s: tracing enabled %t, sampler %s; want off until an endpoint is set, then every trace", d.Name, cfg.Enabled(), cfg.Sampler)
					}
					continue
				}
				if !cfg.Enabled() || cfg.Protocol != telemetry.ProtocolGRPC || cfg.Sampler != telemetry.SamplerParentBasedTraceIDRatio {
					t.Errorf("%s: enabled %t, protocol %s, sampler %s; want OTLP/gRPC with parentbased_traceidratio", d.Name, cfg.Enabled(), cfg.Protocol, cfg.Sampler)
				}
				if u, err := url.Parse(env["OTEL_EXPORTER_OTLP_ENDPOINT"]); err != nil || u.Port() != "4317" || !strings.HasSuffix(u.Hostname(), ".svc") {
					t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT=%q: want the collector's in-cluster OTLP/gRPC address (name.namespace.svc:4317)", d.Name, env["OTEL_EXPORTER_OTLP_ENDPOINT"])
				}
			}
		})
	}
}
