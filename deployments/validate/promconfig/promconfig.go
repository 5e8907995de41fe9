package promconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// Config is a Prometheus configuration file.
type Config struct {
	Global        Global         `yaml:"global"`
	RuleFiles     []string       `yaml:"rule_files"`
	ScrapeConfigs []ScrapeConfig `yaml:"scrape_configs"`
}

// Global holds the defaults of every scrape job.
type Global struct {
	ScrapeInterval     string `yaml:"scrape_interval"`
	ScrapeTimeout      string `yaml:"scrape_timeout"`
	EvaluationInterval string `yaml:"evaluation_interval"`
}

// ScrapeConfig is one scrape job.
type ScrapeConfig struct {
	JobName        string         `yaml:"job_name"`
	MetricsPath    string         `yaml:"metrics_path"`
	Scheme         string         `yaml:"scheme"`
	ScrapeInterval string         `yaml:"scrape_interval"`
	ScrapeTimeout  string         `yaml:"scrape_timeout"`
	StaticConfigs  []StaticConfig `yaml:"static_configs"`
	DNSSDConfigs   []DNSSDConfig  `yaml:"dns_sd_configs"`
}

// StaticConfig is a fixed list of targets.
type StaticConfig struct {
	Targets []string          `yaml:"targets"`
	Labels  map[string]string `yaml:"labels"`
}

// DNSSDConfig finds targets by DNS names: with type A, one target per
// address, on Port.
type DNSSDConfig struct {
	Names           []string `yaml:"names"`
	Type            string   `yaml:"type"`
	Port            int      `yaml:"port"`
	RefreshInterval string   `yaml:"refresh_interval"`
}

// Load reads the file at path strictly and checks what Prometheus would
// refuse at start: bad durations, unnamed or duplicate jobs, relative
// metrics paths, DNS discovery without names or port.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read prometheus config: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("prometheus config %s: %w", path, err)
	}
	if err := dec.Decode(new(any)); !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("prometheus config %s: more than one YAML document", path)
	}
	if err := c.validate(); err != nil {
		return Config{}, fmt.Errorf("prometheus config %s: %w", path, err)
	}
	return c, nil
}

func (c Config) validate() error {
	var errs []error
	duration := func(where, v string) {
		if v == "" {
			return
		}
		if _, err := model.ParseDuration(v); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", where, v, err))
		}
	}
	duration("global.scrape_interval", c.Global.ScrapeInterval)
	duration("global.scrape_timeout", c.Global.ScrapeTimeout)
	duration("global.evaluation_interval", c.Global.EvaluationInterval)
	seen := map[string]bool{}
	for i, s := range c.ScrapeConfigs {
		at := fmt.Sprintf("scrape_configs[%d] (%s)", i, s.JobName)
		switch {
		case s.JobName == "":
			errs = append(errs, fmt.Errorf("%s: job_name is empty", at))
		case seen[s.JobName]:
			errs = append(errs, fmt.Errorf("%s: job_name used twice", at))
		}
		seen[s.JobName] = true
		if s.MetricsPath != "" && !strings.HasPrefix(s.MetricsPath, "/") {
			errs = append(errs, fmt.Errorf("%s: metrics_path %q: want an absolute path", at, s.MetricsPath))
		}
		if s.Scheme != "" && s.Scheme != "http" && s.Scheme != "https" {
			errs = append(errs, fmt.Errorf("%s: scheme %q: want http or https", at, s.Scheme))
		}
		duration(at+": scrape_interval", s.ScrapeInterval)
		duration(at+": scrape_timeout", s.ScrapeTimeout)
		if len(s.StaticConfigs)+len(s.DNSSDConfigs) == 0 {
			errs = append(errs, fmt.Errorf("%s: no static_configs and no dns_sd_configs: nothing to scrape", at))
		}
		for _, sc := range s.StaticConfigs {
			if len(sc.Targets) == 0 {
				errs = append(errs, fmt.Errorf("%s: static_configs entry without targets", at))
			}
		}
		for _, d := range s.DNSSDConfigs {
			if len(d.Names) == 0 {
				errs = append(errs, fmt.Errorf("%s: dns_sd_configs entry without names", at))
			}
			switch d.Type {
			case "", "SRV", "MX", "NS":
			case "A", "AAAA":
				if d.Port < 1 || d.Port > 65535 {
					errs = append(errs, fmt.Errorf("%s: dns_sd_configs of type %s needs a port", at, d.Type))
				}
			default:
				errs = append(errs, fmt.Errorf("%s: dns_sd_configs type %q: want SRV, A, AAAA, MX or NS", at, d.Type))
			}
			duration(at+": refresh_interval", d.RefreshInterval)
		}
	}
	return errors.Join(errs...)
}
