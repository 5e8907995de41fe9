package promconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func load(t *testing.T, yaml string) (Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load(path)
}

func TestLoadAcceptsTheSubset(t *testing.T) {
	c, err := load(t, `
global: {scrape_interval: 5s, evaluation_interval: 1m}
scrape_configs:
  - job_name: a
    metrics_path: /metrics
    dns_sd_configs: [{names: [a], type: A, port: 8080, refresh_interval: 10s}]
  - job_name: b
    static_configs: [{targets: ["localhost:9090"], labels: {env: dev}}]
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ScrapeConfigs) != 2 || c.ScrapeConfigs[0].DNSSDConfigs[0].Port != 8080 {
		t.Errorf("decoded %+v", c)
	}
}

func TestLoadRefuses(t *testing.T) {
	cases := map[string]struct{ yaml, wantErr string }{
		"an unknown key":           {"scrape_configs: [{job_name: a, metric_path: /m, static_configs: [{targets: [x]}]}]", "field metric_path not found"},
		"a bad duration":           {"global: {scrape_interval: 5 seconds}", `global.scrape_interval "5 seconds"`},
		"a job without a name":     {"scrape_configs: [{static_configs: [{targets: [x]}]}]", "job_name is empty"},
		"a job named twice":        {"scrape_configs: [{job_name: a, static_configs: [{targets: [x]}]}, {job_name: a, static_configs: [{targets: [y]}]}]", "job_name used twice"},
		"a job with no targets":    {"scrape_configs: [{job_name: a}]", "nothing to scrape"},
		"an A lookup without port": {"scrape_configs: [{job_name: a, dns_sd_configs: [{names: [a], type: A}]}]", "needs a port"},
		"a relative metrics path":  {"scrape_configs: [{job_name: a, metrics_path: metrics, static_configs: [{targets: [x]}]}]", "want an absolute path"},
		"two documents":            {"global: {}\n---\nglobal: {}\n", "more than one YAML document"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := load(t, tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Load error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
