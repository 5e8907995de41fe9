// Package pgtest gives a test its own throwaway PostgreSQL server, running in
// a container started with testcontainers-go.
//
// The image is $POSTGRES_IMAGE, by default reefer-dlq/postgres:15, which
// `make images` builds from Debian packages so that tests run on machines
// that cannot pull from any registry. A user with a registry can point the
// same tests at a public image (POSTGRES_IMAGE=postgres:16).
//
// Tests that call Start need a Docker engine. They are integration tests by
// this repository's convention: `go test -short` (what `make test-unit` runs)
// skips them, and without -short a missing engine or image is a test failure
// with a message that says what to do, never a silent skip.
//
// The container is removed when the test ends, and testcontainers' reaper
// (Ryuk) removes it if the test process is killed. Only on an engine without
// a registry must the reaper be disabled (TESTCONTAINERS_RYUK_DISABLED=true:
// its image cannot be pulled; `make test NO_REGISTRY=1` and .ci/run do it).
// Inside a container set TESTCONTAINERS_HOST_OVERRIDE=localhost (the
// Makefile does).
package pgtest
