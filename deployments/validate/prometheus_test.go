package validate

import (
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/reeferdlq/reefer-dlq/deployments/validate/promconfig"
	"github.com/reeferdlq/reefer-dlq/deployments/validate/services"
)

func TestPrometheusScrapesEveryServiceOnItsPort(t *testing.T) {
	cfg, err := promconfig.Load(repo(t, "deployments", "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// The ports come from the services' own configuration of the compose
	// file (read without Compose: the file itself, its anchors merged).
	composeEnv := composeFileEnv(t)
	for _, svc := range services.All() {
		env, ok := composeEnv[svc.Name]
		if !ok {
			t.Fatalf("compose.yaml has no service %s", svc.Name)
		}
		loaded, err := svc.Load(env)
		if err != nil {
			t.Fatal(err)
		}
		if loaded.Facts.HTTPAddr == "" {
			continue // the CLI serves nothing
		}
		want := port(t, loaded.Facts.HTTPAddr)
		found := 0
		for _, s := range cfg.ScrapeConfigs {
			for _, d := range s.DNSSDConfigs {
				if slices.Contains(d.Names, svc.Name) {
					found++
					if d.Type != "A" || d.Port != want {
						t.Errorf("job %s scrapes %s as %s on port %d; %s serves on %d (an A query finds every replica)", s.JobName, svc.Name, d.Type, d.Port, svc.Name, want)
					}
					if s.MetricsPath != "/metrics" {
						t.Errorf("job %s: metrics_path %q, want /metrics", s.JobName, s.MetricsPath)
					}
				}
			}
		}
		if found != 1 {
			t.Errorf("%s is scraped by %d jobs, want 1", svc.Name, found)
		}
	}
}

// composeFileEnv reads compose.yaml directly and returns each service's
// environment with the defaults of its ${VAR:-default} references: enough
// to learn the services' ports without a Compose binary.
func composeFileEnv(t *testing.T) map[string]map[string]string {
	t.Helper()
	data, err := os.ReadFile(repo(t, "deployments", "compose", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	out := map[string]map[string]string{}
	for name, s := range file.Services {
		env := map[string]string{}
		for k, v := range s.Environment {
			if strings.HasPrefix(v, "${") && strings.HasSuffix(v, "}") {
				if _, def, ok := strings.Cut(v[2:len(v)-1], ":-"); ok {
					v = def
				}
			}
			env[k] = v
		}
		out[name] = env
	}
	return out
}
