package alertrules

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// File is a Prometheus rule file.
type File struct {
	Groups []Group `yaml:"groups"`
}

// Group is one rule group.
type Group struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval,omitempty"`
	Rules    []Rule `yaml:"rules"`
}

// Rule is an alerting or a recording rule.
type Rule struct {
	Alert         string            `yaml:"alert,omitempty"`
	Record        string            `yaml:"record,omitempty"`
	Expr          string            `yaml:"expr"`
	For           string            `yaml:"for,omitempty"`
	KeepFiringFor string            `yaml:"keep_firing_for,omitempty"`
	Labels        map[string]string `yaml:"labels,omitempty"`
	Annotations   map[string]string `yaml:"annotations,omitempty"`
}

// Alerts returns every alerting rule of the file, in file order.
func (f File) Alerts() []Rule {
	var out []Rule
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				out = append(out, r)
			}
		}
	}
	return out
}

// Load reads a rule file strictly: a key Prometheus would not know is an
// error here, as it is for Prometheus.
func Load(path string) (File, error) { return decodeStrict[File](path) }

// Tests is a promtool unit-test file (promtool test rules).
type Tests struct {
	RuleFiles          []string `yaml:"rule_files"`
	EvaluationInterval string   `yaml:"evaluation_interval"`
	Tests              []Test   `yaml:"tests"`
}

// Test is one test group: series, then the alerts expected at given times.
type Test struct {
	Name        string `yaml:"name"`
	Interval    string `yaml:"interval"`
	InputSeries []struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	} `yaml:"input_series"`
	AlertRuleTests []struct {
		EvalTime  string `yaml:"eval_time"`
		AlertName string `yaml:"alertname"`
		ExpAlerts []struct {
			ExpLabels      map[string]string `yaml:"exp_labels"`
			ExpAnnotations map[string]string `yaml:"exp_annotations"`
		} `yaml:"exp_alerts"`
	} `yaml:"alert_rule_test"`
}

// Coverage says, per alert name, how many test cases expect it to fire and
// how many expect it to stay quiet.
func (t Tests) Coverage() map[string][2]int {
	out := map[string][2]int{}
	for _, tg := range t.Tests {
		for _, a := range tg.AlertRuleTests {
			c := out[a.AlertName]
			if len(a.ExpAlerts) > 0 {
				c[0]++
			} else {
				c[1]++
			}
			out[a.AlertName] = c
		}
	}
	return out
}

// LoadTests reads a promtool unit-test file strictly.
func LoadTests(path string) (Tests, error) { return decodeStrict[Tests](path) }

// decodeStrict reads the one YAML document of the file at path into a T,
// refusing unknown keys.
func decodeStrict[T any](path string) (T, error) {
	var v T
	data, err := os.ReadFile(path)
	if err != nil {
		return v, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&v); err != nil {
		return v, fmt.Errorf("%s: %w", path, err)
	}
	if err := dec.Decode(new(any)); !errors.Is(err, io.EOF) {
		return v, fmt.Errorf("%s: more than one YAML document", path)
	}
	return v, nil
}

// PrometheusRule renders a rule file as the PrometheusRule of the
// Kubernetes overlays: a generated-file header, the object's metadata, and
// the rule file's text, comments included, indented under spec.
func PrometheusRule(source string, rules []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Code generated from %s by deployments/validate (TestPrometheusRuleIsGeneratedFromAlerts -update). DO NOT EDIT.\n", source)
	b.WriteString(`#
# The alert rules of deployments/prometheus/alerts.yaml, for the Prometheus
# Operator. Many installations only pick PrometheusRules with a given label,
# e.g. release: kube-prometheus-stack: add it in your overlay.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: reefer-dlq-alerts
  labels:
    app.kubernetes.io/name: reefer-dlq
    app.kubernetes.io/part-of: reefer-dlq
spec:
`)
	sc := bufio.NewScanner(bytes.NewReader(rules))
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			b.WriteString("\n")
			continue
		}
		b.WriteString("  " + line + "\n")
	}
	return b.Bytes()
}
