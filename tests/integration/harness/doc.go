// Package harness runs the whole reefer-dlq suite in containers for a test:
// a Docker network with the broker (alias kafka), Postgres (postgres), the
// inventory mock (inventory), reefer-manager-1..n and order-retry, each
// from an image named in the environment, all removed when the test ends.
//
//	s := harness.Start(t, harness.Options{Faults: faults.Profile{ErrorRate: 0.3}})
//	_ = s.ProduceOrders(ctx, harness.Orders("O", 100)...)
//	report, err := s.WaitSettled(ctx, ids) // every order ended, nothing in flight
//
// Images. The defaults are what `make images` builds with nothing pulled
// (reefer-dlq/...:dev and reefer-dlq/postgres:15); KAFKA_IMAGE,
// POSTGRES_IMAGE, INVENTORY_MOCK_IMAGE, REEFER_MANAGER_IMAGE,
// ORDER_RETRY_IMAGE and DLQ_IMAGE replace them. A missing local image fails
// the test with "run `make images`"; a public one is left to the engine to
// pull. The broker is started as a generic container: devbroker by flags,
// any other image as a single-node KRaft apache/kafka by environment
// (BrokerSpecFor).
//
// Networking. The broker advertises kafka:9092, which every container
// resolves. The test process, outside the network, uses a kafka-go dial
// function (DialRedirect) that sends connections for kafka:9092 to the
// published port: no host networking, no second listener, the same on
// Linux and Docker Desktop. Stack.Kafka returns that client configuration.
//
// Testcontainers' reaper stays on by default, so a killed run leaves no
// containers. On an engine without a registry set
// TESTCONTAINERS_RYUK_DISABLED=true (exactly "true"; `make test
// NO_REGISTRY=1` and .ci/run do), and TESTCONTAINERS_HOST_OVERRIDE=localhost
// when the tests themselves run in a container (the Makefile does). When a
// scenario ends the harness checks every record the services wrote against
// docs/asyncapi.yaml (package contract). `go test -short` skips every test that
// calls Start.
//
// Logs. Each container's whole log is saved as <alias>.log in the test's
// artifact directory (go test -artifacts -outputdir DIR keeps them), and a
// failed test prints the last lines of each.
package harness
