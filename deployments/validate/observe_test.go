package validate

import (
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/reeferdlq/reefer-dlq/deployments/validate/promconfig"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/dlq"
)

// composeService is what these checks read of a service of compose.yaml,
// straight from the file (no Compose binary needed).
type composeService struct {
	Image       string            `yaml:"image"`
	Profiles    []string          `yaml:"profiles"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	DependsOn   yaml.Node         `yaml:"depends_on"`
}

func composeServices(t *testing.T) map[string]composeService {
	t.Helper()
	data, err := os.ReadFile(repo(t, "deployments", "compose", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return file.Services
}

// publishedPorts returns the container ports a service publishes, and
// fails on a port published beyond loopback.
func publishedPorts(t *testing.T, name string, s composeService) []int {
	t.Helper()
	var out []int
	for _, p := range s.Ports {
		parts := strings.Split(p, ":")
		if len(parts) != 3 || parts[0] != "127.0.0.1" {
			t.Errorf("%s publishes %q: want 127.0.0.1:host:container", name, p)
			continue
		}
		n, err := strconv.Atoi(parts[2])
		if err != nil {
			t.Errorf("%s publishes %q: %v", name, p, err)
			continue
		}
		out = append(out, n)
	}
	return out
}

func TestComposeObserveProfileHasATraceBackendGrafanaReads(t *testing.T) {
	svcs := composeServices(t)
	j, ok := svcs["jaeger"]
	if !ok {
		t.Fatal("compose.yaml has no jaeger service")
	}
	if !slices.Equal(j.Profiles, []string{"observe"}) {
		t.Errorf("jaeger profiles %v, want [observe]", j.Profiles)
	}
	if !strings.HasPrefix(j.Image, "jaegertracing/all-in-one:1.") {
		t.Errorf("jaeger image %s: the variables below are those of Jaeger's v1 all-in-one", j.Image)
	}
	// v1 all-in-one accepts OTLP only when told to.
	if j.Environment["COLLECTOR_OTLP_ENABLED"] != "true" {
		t.Errorf("jaeger COLLECTOR_OTLP_ENABLED=%q: want true, or it accepts no OTLP", j.Environment["COLLECTOR_OTLP_ENABLED"])
	}
	ports := publishedPorts(t, "jaeger", j)
	for _, p := range []int{4317, 4318, 16686} { // OTLP gRPC, OTLP HTTP, UI and query API
		if !slices.Contains(ports, p) {
			t.Errorf("jaeger publishes %v, want %d among them", ports, p)
		}
	}

	data, err := os.ReadFile(repo(t, "deployments", "grafana", "provisioning", "datasources", "jaeger.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var prov struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type, Access, URL string
			Editable                     bool
		} `yaml:"datasources"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&prov); err != nil && err != io.EOF {
		t.Fatalf("jaeger.yaml: %v", err)
	}
	if prov.APIVersion != 1 || len(prov.Datasources) != 1 {
		t.Fatalf("jaeger.yaml: apiVersion %d, %d data sources: want 1 and 1", prov.APIVersion, len(prov.Datasources))
	}
	ds := prov.Datasources[0]
	u, err := url.Parse(ds.URL)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Type != "jaeger" || ds.UID == "" || u.Scheme != "http" || u.Host != net.JoinHostPort("jaeger", "16686") {
		t.Errorf("Grafana data source %+v: want type jaeger, a uid, url http://jaeger:16686 (the compose service and its query port)", ds)
	}
	var deps []string
	switch g := svcs["grafana"].DependsOn; g.Kind {
	case yaml.SequenceNode:
		_ = g.Decode(&deps)
	case yaml.MappingNode:
		var m map[string]any
		_ = g.Decode(&m)
		for k := range m {
			deps = append(deps, k)
		}
	}
	if !slices.Contains(deps, "jaeger") {
		t.Errorf("grafana depends on %v: want jaeger, whose data source it provisions", deps)
	}
}

func TestComposeDeadLetterWatchIsScrapedOnItsMetricsAddress(t *testing.T) {
	svcs := composeServices(t)
	w, ok := svcs["dlq-watch"]
	if !ok {
		t.Fatal("compose.yaml has no dlq-watch service: nobody exports dlq_dead_letters_pending")
	}
	// The command must parse with the real CLI: an unknown flag would make
	// the container exit at start.
	cmd := dlq.NewCommand(dlq.Env{Stdout: io.Discard, Stderr: io.Discard})
	watch, args, err := cmd.Find(w.Command)
	if err != nil || watch.Name() != "watch" {
		t.Fatalf("dlq-watch command %v is not dlq watch: %v", w.Command, err)
	}
	if err := watch.ParseFlags(args); err != nil {
		t.Fatalf("dlq-watch command %v: %v", w.Command, err)
	}
	addr, _ := watch.Flags().GetString("metrics-addr")
	health, _ := watch.Flags().GetString("when-healthy")
	if addr == "" {
		t.Fatalf("dlq-watch command %v has no --metrics-addr: no metrics", w.Command)
	}
	if u, err := url.Parse(health); err != nil || u.Hostname() != "container-inventory-mock" {
		t.Errorf("dlq-watch --when-healthy %q: want the inventory mock's service", health)
	}
	if w.Environment["DLQ_TOPIC"] != "order-dead-letter" || w.Environment["RETRY_TOPIC"] != "order-retries" {
		t.Errorf("dlq-watch topics DLQ_TOPIC=%q RETRY_TOPIC=%q: want the pipeline's", w.Environment["DLQ_TOPIC"], w.Environment["RETRY_TOPIC"])
	}

	cfg, err := promconfig.Load(repo(t, "deployments", "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	want := port(t, addr)
	found := false
	for _, s := range cfg.ScrapeConfigs {
		for _, d := range s.DNSSDConfigs {
			if slices.Contains(d.Names, "dlq-watch") {
				found = true
				if s.JobName != "dlq-watch" || d.Type != "A" || d.Port != want {
					t.Errorf("job %s scrapes dlq-watch as %s on %d; want job dlq-watch (the alerts name it), type A, port %d", s.JobName, d.Type, d.Port, want)
				}
			}
		}
	}
	if !found {
		t.Error("prometheus.yml does not scrape dlq-watch")
	}
}
