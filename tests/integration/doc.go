// Package integration holds the end-to-end scenarios of reefer-dlq: the
// broker, Postgres, the inventory mock, reefer-manager and order-retry run
// as containers on one Docker network (package harness starts them), the
// tests drive orders in, break things on purpose, and end by checking the
// outcome of every order (package outcomes). See README.md.
package integration
