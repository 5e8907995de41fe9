package validate

import (
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

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
