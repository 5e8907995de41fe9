package alertrules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestPrometheusRuleSpecIsTheRuleFile(t *testing.T) {
	rules := `# a comment
groups:
  - name: g
    rules:
      - alert: A
        expr: |
          up == 0

          or absent(up)
        labels: {severity: warning}
`
	var obj struct {
		Kind string `yaml:"kind"`
		Spec File   `yaml:"spec"`
	}
	out := PrometheusRule("x.yaml", []byte(rules))
	if err := yaml.Unmarshal(out, &obj); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var want File
	if err := yaml.Unmarshal([]byte(rules), &want); err != nil {
		t.Fatal(err)
	}
	// The block scalar keeps its blank line and its text.
	if obj.Kind != "PrometheusRule" || len(obj.Spec.Groups) != 1 || obj.Spec.Alerts()[0].Expr != want.Alerts()[0].Expr {
		t.Errorf("rendered %+v, want the rule file's groups under spec:\n%s", obj, out)
	}
	if !strings.Contains(string(out), "  # a comment\n") {
		t.Errorf("the comments are not kept:\n%s", out)
	}
}

func TestLoadRefusesUnknownKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.yaml")
	if err := os.WriteFile(path, []byte("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        anotations: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil {
		t.Error("Load accepted a misspelt key (anotations)")
	}
}
