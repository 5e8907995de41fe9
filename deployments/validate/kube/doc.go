// Package kube renders a Kustomize overlay the way `kubectl apply -k` does
// and decodes every object strictly into the typed Kubernetes API structs,
// with no cluster and no network.
//
// Why strict typed decoding: Kustomize itself treats manifests as loose
// YAML, and the API server's defaults differ by version and flags, so a
// misspelled field ("readinessprobe"), a number where a string belongs
// (value: 256 in an env entry) or a field of another API version is only
// found when someone applies the overlay. Decoding with sigs.k8s.io/json in
// strict mode (case-sensitive, no unknown and no duplicate fields) into
// k8s.io/api types finds them at test time.
//
// Every kind the overlays may contain is listed in this package (see
// Decode); an object of any other kind, a CustomResource included, is an
// error until its Go type is added, so nothing escapes the check unnoticed.
// The one CustomResource used, the Prometheus Operator's ServiceMonitor, is
// decoded into its own Go type.
package kube
