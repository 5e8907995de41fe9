// Package validate checks the deployments of deployments/ (the compose
// stack, the Kustomize overlays, Prometheus' and Grafana's configuration)
// without running them: this project's CI has no image registry, so Kafka,
// Postgres, Prometheus and Grafana cannot be pulled there. The tests of
// this package are the whole product; the packages below it do the work:
//
//   - compose: `docker compose config` for every combination of profiles;
//   - kube: the overlays rendered with the Kustomize Go API and decoded
//     strictly into the typed Kubernetes structs, with cross-object checks;
//   - services: each service's own ConfigFromEnv run on the environment a
//     deployment gives it, recording the variables it reads;
//   - metrics: the metric families the services' source defines;
//   - dashboard: the Grafana dashboard's PromQL, parsed by Prometheus' parser;
//   - promconfig: the Prometheus configuration, read strictly;
//   - alertrules: the alert rules and their promtool unit tests, and the
//     PrometheusRule generated from them (promtool itself checks and
//     tests the rules: Debian's package prometheus).
//
// What this proves: the files are well-formed, consistent with each other
// and with the code (names, ports, topics, variables, metrics). What it
// cannot prove: that the public images behave as their documentation says.
package validate
