package validate

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"go.yaml.in/yaml/v3"

	"github.com/reeferdlq/reefer-dlq/deployments/validate/alertrules"
	"github.com/reeferdlq/reefer-dlq/deployments/validate/dashboard"
	"github.com/reeferdlq/reefer-dlq/deployments/validate/kube"
	"github.com/reeferdlq/reefer-dlq/deployments/validate/promconfig"
)

var update = flag.Bool("update", false, "rewrite generated files (the PrometheusRule) instead of comparing them")

// notFromCode are the series an alert may name that no scan of the code
// finds.
var notFromCode = map[string]string{
	// Prometheus writes it for every scrape target.
	"up": "Prometheus, per target",
}

func alertsFile(t *testing.T) alertrules.File {
	t.Helper()
	f, err := alertrules.Load(repo(t, "deployments", "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Alerts()) == 0 {
		t.Fatal("alerts.yaml has no alert")
	}
	return f
}

// promtool runs Debian's promtool (package prometheus) in
// deployments/prometheus. A missing promtool fails the test: the rules
// would otherwise ship unchecked.
func promtool(t *testing.T, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed: the alert rules cannot be checked. Install it with " +
			"`apt-get install prometheus` (Debian's package ships promtool; .ci/run installs it) " +
			"or put a promtool from a Prometheus release on PATH")
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = repo(t, "deployments", "prometheus")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestAlertRulesPassPromtoolCheckAndTheirUnitTests(t *testing.T) {
	out := promtool(t, "check", "rules", "alerts.yaml")
	if want := fmt.Sprintf("SUCCESS: %d rules found", len(alertsFile(t).Alerts())); !strings.Contains(out, want) {
		t.Errorf("promtool check rules: want %q in\n%s", want, out)
	}
	out = promtool(t, "test", "rules", "alerts_test.yaml")
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules: no SUCCESS in\n%s", out)
	}
}

func TestEveryAlertHasUnitTestsThatFireAndThatStayQuiet(t *testing.T) {
	tests, err := alertrules.LoadTests(repo(t, "deployments", "prometheus", "alerts_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tests.RuleFiles, []string{"alerts.yaml"}) {
		t.Errorf("alerts_test.yaml tests rule files %v, want [alerts.yaml]", tests.RuleFiles)
	}
	coverage := tests.Coverage()
	names := map[string]bool{}
	for _, a := range alertsFile(t).Alerts() {
		if names[a.Alert] {
			t.Errorf("alert %s is defined twice", a.Alert)
		}
		names[a.Alert] = true
		c := coverage[a.Alert]
		if c[0] == 0 {
			t.Errorf("alert %s: no unit test expects it to fire", a.Alert)
		}
		if c[1] == 0 {
			t.Errorf("alert %s: no unit test expects it to stay quiet", a.Alert)
		}
	}
	for name := range coverage {
		if !names[name] {
			t.Errorf("alerts_test.yaml tests alert %s, which alerts.yaml does not define", name)
		}
	}
}

func TestAlertRulesNameOnlyExportedMetricsAndLinkTheirRunbook(t *testing.T) {
	exported := exportedSeries(t)
	runbook, err := os.ReadFile(repo(t, "docs", "runbook.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := markdownAnchors(string(runbook))
	const runbookURL = "https://github.com/reeferdlq/reefer-dlq/blob/main/docs/runbook.md#"
	for _, a := range alertsFile(t).Alerts() {
		names, err := dashboard.MetricNames(a.Expr)
		if err != nil {
			t.Errorf("alert %s: %v", a.Alert, err)
		}
		for _, n := range names {
			_, fromCode := exported[n]
			_, known := notFromCode[n]
			if !fromCode && !known {
				t.Errorf("alert %s: metric %s is exported by no service (%s)", a.Alert, n, a.Expr)
			}
		}
		if s := a.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("alert %s: severity %q, want critical (pages) or warning (a ticket)", a.Alert, s)
		}
		for _, k := range []string{"summary", "description"} {
			if strings.TrimSpace(a.Annotations[k]) == "" {
				t.Errorf("alert %s: no %s annotation", a.Alert, k)
			}
		}
		url := a.Annotations["runbook_url"]
		anchor, ok := strings.CutPrefix(url, runbookURL)
		switch {
		case !ok:
			t.Errorf("alert %s: runbook_url %q: want %s<anchor>", a.Alert, url, runbookURL)
		case anchor != strings.ToLower(a.Alert):
			t.Errorf("alert %s: runbook_url anchor #%s, want #%s", a.Alert, anchor, strings.ToLower(a.Alert))
		case !anchors[anchor]:
			t.Errorf("alert %s: docs/runbook.md has no heading for #%s", a.Alert, anchor)
		}
	}
	// The known names must not hide a typo: each is used by some alert.
	used := map[string]bool{}
	for _, a := range alertsFile(t).Alerts() {
		names, _ := dashboard.MetricNames(a.Expr)
		for _, n := range names {
			used[n] = true
		}
	}
	for n, from := range notFromCode {
		if !used[n] {
			t.Errorf("%s (from %s) is listed as known but no alert uses it", n, from)
		}
	}
}

// markdownAnchors returns the anchors GitHub gives the headings of a
// Markdown document (lower case, spaces to dashes, punctuation dropped).
func markdownAnchors(doc string) map[string]bool {
	drop := regexp.MustCompile(`[^\p{L}\p{N} _-]`)
	out := map[string]bool{}
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		h = drop.ReplaceAllString(strings.ToLower(h), "")
		out[strings.ReplaceAll(h, " ", "-")] = true
	}
	return out
}

func TestPrometheusRuleIsGeneratedFromAlerts(t *testing.T) {
	src, err := os.ReadFile(repo(t, "deployments", "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := alertrules.PrometheusRule("deployments/prometheus/alerts.yaml", src)
	path := repo(t, "deployments", "k8s", "components", "alerts", "prometheusrule.yaml")
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: regenerate it with\n  cd deployments/validate && go test -run TestPrometheusRuleIsGeneratedFromAlerts -update .\n(diff -want +got):\n%s",
			path, cmp.Diff(string(want), string(got)))
	}
}

func TestProductionOverlayAppliesTheAlertRules(t *testing.T) {
	objs, err := kube.Render(repo(t, "deployments", "k8s", "overlays", "prod"))
	if err != nil {
		t.Fatal(err)
	}
	rule, ok := kube.Find[*monitoringv1.PrometheusRule](objs, "reefer-dlq-alerts")
	if !ok {
		t.Fatal("the prod overlay renders no PrometheusRule reefer-dlq-alerts")
	}
	// Compare through YAML: what the operator hands to Prometheus must be
	// the rules compose's Prometheus loads.
	type alert struct{ Alert, Expr, For string }
	var got []alert
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			got = append(got, alert{r.Alert, r.Expr.String(), string(ptrOr(r.For))})
		}
	}
	var want []alert
	for _, r := range alertsFile(t).Alerts() {
		want = append(want, alert{r.Alert, r.Expr, r.For})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PrometheusRule rules (-alerts.yaml +rendered):\n%s", diff)
	}
	if rule.Labels["app.kubernetes.io/part-of"] != "reefer-dlq" {
		t.Errorf("PrometheusRule labels %v: want app.kubernetes.io/part-of=reefer-dlq", rule.Labels)
	}
}

func ptrOr[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func TestComposePrometheusLoadsTheAlertRules(t *testing.T) {
	cfg, err := promconfig.Load(repo(t, "deployments", "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.RuleFiles) != 1 {
		t.Fatalf("prometheus.yml rule_files %v: want the one alerts file", cfg.RuleFiles)
	}
	data, err := os.ReadFile(repo(t, "deployments", "compose", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Services map[string]struct {
			Volumes []string `yaml:"volumes"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	mount := "../prometheus/alerts.yaml:" + cfg.RuleFiles[0] + ":ro"
	if !slices.Contains(file.Services["prometheus"].Volumes, mount) {
		t.Errorf("compose's prometheus mounts %v: want %s, the file rule_files names", file.Services["prometheus"].Volumes, mount)
	}
}
