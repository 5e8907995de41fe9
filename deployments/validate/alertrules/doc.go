// Package alertrules reads the suite's Prometheus alert rules
// (deployments/prometheus/alerts.yaml) and their promtool unit tests, and
// renders the rules as the PrometheusRule the Kubernetes overlays apply.
//
// One file is the source: compose's Prometheus loads alerts.yaml as it is,
// and the PrometheusRule is that same text, indented under spec: a
// Prometheus rule file is exactly a PrometheusRule's spec. So the Kubernetes
// copy cannot drift: a test renders it again and compares it byte for byte
// with the committed one. (Kustomize cannot wrap a file into an object, so
// the copy is generated rather than referenced.)
//
// Checking the rules themselves is promtool's job (`promtool check rules`
// and `promtool test rules`); this package only reads what the tests need
// to cross-check: every alert's expression, labels and annotations, and
// which alerts each unit test expects to fire or to stay quiet.
package alertrules
