package harness

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/network"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/pkg/testkit/pgtest"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
	"github.com/reeferdlq/reefer-dlq/tests/integration/outcomes"
)

// startTimeout bounds Start: images checked, every container up and ready.
const startTimeout = 3 * time.Minute

// The network alias of the database and the URL the services use.
const (
	PostgresAlias = "postgres"
	DatabaseURL   = "postgres://" + pgtest.User + ":" + pgtest.Password + "@" + PostgresAlias + ":5432/" + pgtest.Database + "?sslmode=disable"
)

// Topics names the four topics of the contract for one stack.
type Topics = outcomes.Topics

// DefaultTopics are the contract's topic names.
func DefaultTopics() Topics {
	return Topics{Orders: "orders", Containers: "containers", Retry: "order-retries", DeadLetter: "order-dead-letter"}
}

// PrefixedTopics are the contract's names with prefix and a dot in front,
// for a scenario that also proves the services honour ORDERS_TOPIC and the
// others.
func PrefixedTopics(prefix string) Topics {
	d := DefaultTopics()
	return Topics{Orders: prefix + "." + d.Orders, Containers: prefix + "." + d.Containers,
		Retry: prefix + "." + d.Retry, DeadLetter: prefix + "." + d.DeadLetter}
}

// partitions gives each topic the contract's partition count.
func partitions(t Topics) map[string]int {
	d, counts := DefaultTopics(), kafkaclient.DefaultTopics()
	return map[string]int{
		t.Orders: counts[d.Orders], t.Containers: counts[d.Containers],
		t.Retry: counts[d.Retry], t.DeadLetter: counts[d.DeadLetter],
	}
}

// Options describes a stack. The zero value is a healthy stack with the
// contract's topic names, one reefer-manager and one order-retry.
type Options struct {
	// Topics; zero means DefaultTopics.
	Topics Topics
	// Faults is the inventory mock's fault profile at start; zero is healthy.
	// Change it while the test runs with Stack.Inventory.Admin.
	Faults faults.Profile
	// Env is added to the environment of reefer-manager and order-retry
	// (over ServiceEnv), ManagerEnv and RetryEnv to one of them only.
	Env, ManagerEnv, RetryEnv map[string]string
	// InventoryEnv is added to the inventory mock's environment.
	InventoryEnv map[string]string
	// Managers is the number of reefer-manager containers in the consumer
	// group; 0 means 1.
	Managers int
	// Images; zero fields are read from the environment (ImagesFromEnv).
	Images Images
}

// ServiceEnv is the environment reefer-manager and order-retry get before
// Options.Env: the stack's addresses and topics, and retry delays short
// enough for tests (100 ms base, 1 s cap) with the contract's 5 attempts
// and ±10% jitter.
func ServiceEnv(t Topics) map[string]string {
	return map[string]string{
		"KAFKA_BROKERS":         BrokerAddr,
		"DATABASE_URL":          DatabaseURL,
		"INVENTORY_URL":         InventoryURL,
		"INVENTORY_TIMEOUT":     "2s",
		"RELEASE_INTERVAL":      "1s",
		"ORDERS_TOPIC":          t.Orders,
		"CONTAINERS_TOPIC":      t.Containers,
		"RETRY_TOPIC":           t.Retry,
		"DLQ_TOPIC":             t.DeadLetter,
		"RETRY_MAX_ATTEMPTS":    "5",
		"RETRY_BASE_DELAY":      "100ms",
		"RETRY_MAX_DELAY":       "1s",
		"RETRY_JITTER":          "proportional",
		"RETRY_JITTER_FRACTION": "0.1",
		"REEFER_FLEET_SIZE":     "1000",
		"MAX_MESSAGE_BYTES":     strconv.Itoa(MaxMessageBytes),
		"DLQ_MAX_MESSAGE_BYTES": strconv.Itoa(DeadLetterMaxMessageBytes),
		"SHUTDOWN_TIMEOUT":      "10s",
		"LOG_FORMAT":            "json",
		"LOG_LEVEL":             "info",
	}
}

// Stack is the whole suite in containers on one Docker network: the
// broker (alias kafka), Postgres (postgres), the inventory mock
// (inventory), reefer-manager-1..n and order-retry.
type Stack struct {
	t       testing.TB
	Network *testcontainers.DockerNetwork
	Images  Images
	Topics  Topics

	Broker    *Broker
	Postgres  *pgtest.Container
	Inventory *Inventory
	Managers  []*Service
	Retry     *Service

	managerEnv map[string]string
	writer     *kafka.Writer

	mu       sync.Mutex
	produced map[[sha256.Size]byte]bool // records the test wrote (contract.go)
}

// Start starts a stack for the test and returns once every service answers
// /readyz. Everything is removed when the test ends. It fails the test
// when Docker, an image or a container is missing or broken, and skips it
// with -short (the repository's convention: `make test-unit`).
func Start(t testing.TB, opts Options) *Stack {
	t.Helper()
	if testing.Short() {
		t.Skip("integration: needs a Docker engine; skipped with -short")
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	var wg sync.WaitGroup
	// When a start fails the test on this goroutine (pgtest does), the
	// starts running on others must end before the test's clean-up runs.
	defer func() { cancel(); wg.Wait() }()

	s := &Stack{t: t, Images: withDefaults(opts.Images), Topics: opts.Topics}
	if s.Topics == (Topics{}) {
		s.Topics = DefaultTopics()
	}
	if err := checkEngine(ctx, s.Images.all()); err != nil {
		t.Fatalf("integration: %v", err)
	}

	nw, err := network.New(ctx)
	testcontainers.CleanupNetwork(t, nw)
	if err != nil {
		t.Fatalf("integration: create a Docker network: %v%s", err, setupHint())
	}
	s.Network = nw

	// The broker and the inventory start while Postgres does (pgtest
	// fails the test itself, so it runs on the test's goroutine).
	var (
		brokerErr, invErr   error
		tookB, tookI, tookP time.Duration
	)
	wg.Go(func() {
		start := time.Now()
		s.Broker, brokerErr = startBroker(ctx, t, nw, s.Images.Kafka)
		if brokerErr == nil {
			brokerErr = s.Broker.CreateTopics(ctx, partitions(s.Topics), map[string]int{s.Topics.DeadLetter: DeadLetterMaxMessageBytes})
		}
		tookB = time.Since(start)
	})
	wg.Go(func() {
		start := time.Now()
		s.Inventory, invErr = startInventory(ctx, t, nw, s.Images.Inventory, opts.Faults, opts.InventoryEnv)
		tookI = time.Since(start)
	})
	start := time.Now()
	s.Postgres = pgtest.StartContainer(t,
		testcontainers.WithLogger(log.TestLogger(t)),
		testcontainers.WithImage(s.Images.Postgres),
		network.WithNetwork([]string{PostgresAlias}, nw))
	keepLogs(t, PostgresAlias, s.Postgres.Container)
	tookP = time.Since(start)
	wg.Wait()
	if err := errors.Join(brokerErr, invErr); err != nil {
		t.Fatalf("integration: %v%s", err, setupHint())
	}

	s.writer, err = s.Broker.Kafka.NewWriter("")
	if err != nil {
		t.Fatalf("integration: %v", err)
	}
	// No batch larger than the orders and retry topics take.
	s.writer.BatchBytes = int64(retrymeta.MaxRecordSize(MaxMessageBytes))
	t.Cleanup(func() { s.writer.Close() })

	env := merge(ServiceEnv(s.Topics), opts.Env)
	s.managerEnv = merge(env, opts.ManagerEnv)
	retryEnv := merge(env, opts.RetryEnv)
	managers := max(opts.Managers, 1)
	var (
		mu   sync.Mutex
		errs []error
	)
	servicesStart := time.Now()
	wg.Go(func() {
		svc, err := StartService(ctx, t, nw, ServiceSpec{Name: "order-retry", Image: s.Images.Retry, Port: "8082", Env: retryEnv})
		mu.Lock()
		defer mu.Unlock()
		s.Retry, errs = svc, append(errs, err)
	})
	s.Managers = make([]*Service, managers)
	for i := range managers {
		wg.Go(func() {
			svc, err := s.startManager(ctx, i+1)
			mu.Lock()
			defer mu.Unlock()
			s.Managers[i], errs = svc, append(errs, err)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("integration: %v", err)
	}
	t.Logf("integration: stack ready in %s (broker %s, inventory %s, postgres %s, services %s); broker %s (%s) published on %s",
		time.Since(began).Round(time.Millisecond), tookB.Round(time.Millisecond), tookI.Round(time.Millisecond),
		tookP.Round(time.Millisecond), time.Since(servicesStart).Round(time.Millisecond),
		s.Images.Kafka, s.Broker.Spec.Kind, s.Broker.HostAddr)
	if testing.Verbose() {
		s.logWatchHints()
	}
	s.registerContractCheck()
	return s
}

// AddManager starts one more reefer-manager in the same consumer group
// (reefer-manager-<n+1>) and returns once it is ready.
func (s *Stack) AddManager(ctx context.Context) (*Service, error) {
	svc, err := s.startManager(ctx, len(s.Managers)+1)
	if err != nil {
		return nil, err
	}
	s.Managers = append(s.Managers, svc)
	return svc, nil
}

func (s *Stack) startManager(ctx context.Context, n int) (*Service, error) {
	return StartService(ctx, s.t, s.Network, ServiceSpec{
		Name:  "reefer-manager-" + strconv.Itoa(n),
		Image: s.Images.Manager,
		Port:  "8080",
		Env:   merge(s.managerEnv, map[string]string{"KAFKA_CLIENT_ID": "reefer-manager-" + strconv.Itoa(n)}),
	})
}

// Kafka is the client configuration of the test process (see Broker.Kafka).
func (s *Stack) Kafka() kafkaclient.Config { return s.Broker.Kafka }

// Sources are the stack's sources for outcomes.Collect. Call it again after
// a Postgres restart: the published port may change.
func (s *Stack) Sources() outcomes.Sources {
	return outcomes.Sources{
		Kafka:       s.Kafka(),
		Topics:      s.Topics,
		DatabaseURL: s.Postgres.DSN(s.t),
		Inventory:   s.Inventory.Admin,
	}
}

// Outcomes collects the outcome of every order now (see outcomes.Collect).
func (s *Stack) Outcomes(ctx context.Context) (*outcomes.Report, error) {
	return outcomes.Collect(ctx, s.Sources())
}

// The consumer groups of the services (their CONSUMER_GROUP defaults).
const (
	ManagerGroup = "reefer-manager"
	RetryGroup   = "order-retry"
)

// WaitSettled waits until every order of ids is in a terminal state and
// the services have committed every record of their input topics (so
// nothing is still in flight that could change an outcome), then returns
// the report. On timeout it returns the last report with the error.
func (s *Stack) WaitSettled(ctx context.Context, ids []string) (*outcomes.Report, error) {
	var last *outcomes.Report
	err := retryUntil(ctx, time.Second, func() error {
		r, err := s.Outcomes(ctx)
		if err != nil {
			return err
		}
		last = r
		if pending := r.States(ids)[outcomes.Pending]; len(pending) > 0 {
			return fmt.Errorf("%d of %d orders have no outcome yet (first: %s)", len(pending), len(ids), pending[0])
		}
		return s.idle(ctx)
	})
	if err != nil {
		return last, fmt.Errorf("wait for %d orders to settle: %w", len(ids), err)
	}
	return last, nil
}

// WaitQuiet waits until the services have committed every record of their
// input topics and the outcome of the orders ids has not changed for
// quiet, then returns the report. Unlike WaitSettled it does not need every
// order to end: it is how a test waits when it expects orders to be lost.
func (s *Stack) WaitQuiet(ctx context.Context, ids []string, quiet time.Duration) (*outcomes.Report, error) {
	var (
		last      *outcomes.Report
		lastSeen  string
		stableFor time.Time
	)
	err := retryUntil(ctx, 500*time.Millisecond, func() error {
		r, err := s.Outcomes(ctx)
		if err != nil {
			return err
		}
		last = r
		if err := s.idle(ctx); err != nil {
			lastSeen = ""
			return err
		}
		if sum := r.Summary(ids); sum != lastSeen {
			lastSeen, stableFor = sum, time.Now()
		}
		if since := time.Since(stableFor); since < quiet {
			return fmt.Errorf("outcome unchanged for %s of %s: %s", since.Round(time.Millisecond), quiet, lastSeen)
		}
		return nil
	})
	if err != nil {
		return last, fmt.Errorf("wait for %d orders to go quiet: %w", len(ids), err)
	}
	return last, nil
}

// WaitGroupStable waits until the consumer group is Stable with exactly
// members members, which together hold every partition of topic.
//
// The crash scenario calls it to kill only members of a settled group.
// That is no longer needed for recovery: kfake never expires a member that
// died between its JoinGroup and the answer to it (it arms the session
// timer only after a delivered answer), but devbroker's reaper now removes
// such a member after its session timeout, as Kafka does (see package
// devbroker and TestGroupRecoversFromAMemberKilledWhileJoining).
func (s *Stack) WaitGroupStable(ctx context.Context, group, topic string, members int) error {
	want := partitions(s.Topics)[topic]
	return retryUntil(ctx, 250*time.Millisecond, func() error {
		st, ms, err := outcomes.GroupState(ctx, s.Kafka(), group, topic)
		if err != nil {
			return err
		}
		held := 0
		for _, m := range ms {
			held += len(m.Partitions)
		}
		if st != "Stable" || len(ms) != members || held != want {
			return fmt.Errorf("group %s is %s with members %v, want Stable with %d members holding the %d partitions of %s", group, st, ms, members, want, topic)
		}
		return nil
	})
}

// idle reports an error while a service group has uncommitted records.
func (s *Stack) idle(ctx context.Context) error {
	for _, g := range []struct{ group, topic string }{{ManagerGroup, s.Topics.Orders}, {RetryGroup, s.Topics.Retry}} {
		lag, err := outcomes.Lag(ctx, s.Kafka(), g.group, g.topic)
		if err != nil {
			return err
		}
		if lag > 0 {
			return fmt.Errorf("group %s has %d uncommitted records on %s", g.group, lag, g.topic)
		}
	}
	return nil
}

// logWatchHints prints, for go test -v, how to watch this stack's topics
// while the test runs.
func (s *Stack) logWatchHints() {
	netName := s.Network.Name
	s.t.Logf(`integration: watch this stack while it runs (network %s):
  docker run --rm --network %s %s list --brokers %s --topic %s
  docker run --rm --network %s %s stats --brokers %s --topic %s
  docker logs -f $(docker ps -q --filter network=%s --filter ancestor=%s | head -1)
  curl -s -H 'Authorization: Bearer %s' %s/admin/stats`,
		netName,
		netName, s.Images.DLQ, BrokerAddr, s.Topics.DeadLetter,
		netName, s.Images.DLQ, BrokerAddr, s.Topics.DeadLetter,
		netName, s.Images.Manager,
		AdminToken, s.Inventory.Admin.BaseURL)
}

// setupHint explains the usual cause of a failed start on an engine that
// cannot pull: testcontainers' reaper.
func setupHint() string {
	var hints []string
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") != "true" {
		hints = append(hints, "on an engine that cannot pull images set TESTCONTAINERS_RYUK_DISABLED=true (exactly `true`)")
	}
	if _, err := os.Stat("/.dockerenv"); err == nil && os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" {
		hints = append(hints, "inside a container set TESTCONTAINERS_HOST_OVERRIDE=localhost")
	}
	if len(hints) == 0 {
		return ""
	}
	return " (" + strings.Join(hints, "; ") + ", as `make test` does)"
}

func withDefaults(im Images) Images {
	env := ImagesFromEnv()
	for _, f := range []struct {
		dst *string
		def string
	}{
		{&im.Kafka, env.Kafka}, {&im.Postgres, env.Postgres}, {&im.Inventory, env.Inventory},
		{&im.Manager, env.Manager}, {&im.Retry, env.Retry}, {&im.DLQ, env.DLQ},
	} {
		if *f.dst == "" {
			*f.dst = f.def
		}
	}
	return im
}

// merge returns a copy of base with over's entries on top.
func merge(base, over map[string]string) map[string]string {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, over)
	return out
}
