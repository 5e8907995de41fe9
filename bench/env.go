package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
)

// env is what every case shares: the embedded broker, the Postgres server,
// the parameters, and where logs and profiles go.
type env struct {
	p      params
	log    *slog.Logger // the bench's progress, on stderr
	svcLog *slog.Logger // the in-process services' own logs, into a file
	broker *devbroker.Broker
	kafka  kafkaclient.Config
	pg     *postgresServer
	// runID keeps the databases of concurrent runs on one --postgres
	// server apart.
	runID string
	bins  *binaries
}

// topics are one case's topics: the contract's four, prefixed by the case
// so that no case reads another's records.
type topics struct {
	Orders, Containers, Retry, DLQ string
}

// newTopics creates the case's topics with the contract's partition counts.
func (e *env) newTopics(ctx context.Context, prefix string) (topics, error) {
	t := topics{
		Orders:     prefix + ".orders",
		Containers: prefix + ".containers",
		Retry:      prefix + ".order-retries",
		DLQ:        prefix + ".order-dead-letter",
	}
	def := kafkaclient.DefaultTopics()
	want := map[string]int{
		t.Orders:     def["orders"],
		t.Containers: def["containers"],
		t.Retry:      def["order-retries"],
		t.DLQ:        def["order-dead-letter"],
	}
	if err := e.kafka.EnsureTopics(ctx, want); err != nil {
		return topics{}, fmt.Errorf("create the topics of %s: %w", prefix, err)
	}
	return t, nil
}

// partitions returns the partition count of a topic created by newTopics.
func partitions(topic string) int {
	def := kafkaclient.DefaultTopics()
	for name, n := range def {
		if strings.HasSuffix(topic, "."+name) {
			return n
		}
	}
	return 1
}

// database creates a fresh database for a case.
func (e *env) database(ctx context.Context, name string) (string, error) {
	return e.pg.database(ctx, "bench_"+e.runID+"_"+name)
}

// inventory starts a container-inventory-mock in this process with the
// given fault profile. Each case gets its own, so that no case inherits
// another's allocations (the mock answers 409 to a container allocated to
// another order). callLog is how many calls it remembers.
func (e *env) inventory(ctx context.Context, profile faults.Profile, callLog int) (*inventorymock.Service, func(), error) {
	svc, err := inventorymock.New(inventorymock.Config{
		HTTPAddr:     "127.0.0.1:0",
		FaultProfile: profile,
		CallLogSize:  max(callLog, 1000),
	}, e.svcLog.With("service", "container-inventory-mock"))
	if err != nil {
		return nil, nil, fmt.Errorf("inventory mock: %w", err)
	}
	if err := svc.Start(ctx); err != nil {
		return nil, nil, err
	}
	stop := func() {
		// Its callers have stopped by now. A graceful shutdown would still
		// wait 5 s for connections a client dialled but never used (net/http
		// counts them as active that long), so it gets a second, then the
		// connections are cut.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := svc.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			e.log.Warn("stop inventory mock", "error", err)
		}
	}
	return svc, stop, nil
}

// preset returns a fault profile of the mock by name.
func preset(name string) faults.Profile {
	p, ok := faults.Preset(name)
	if !ok {
		panic("bench: no fault preset " + name) // names are constants of this program
	}
	return p
}

// hangProfile holds every call until the client gives up: an inventory
// that accepts connections and never answers.
func hangProfile() faults.Profile { return faults.Profile{TimeoutRate: 1} }
