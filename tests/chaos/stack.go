package chaos

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/admin"
	"github.com/reeferdlq/reefer-dlq/tests/integration/outcomes"
)

// The topics of a campaign: the contract's names, on a broker of its own,
// with the broker's default max.message.bytes (kfake's, as Kafka's: 1 MiB
// + 12 bytes): the campaign does not raise the limit to hide what an
// oversize record does.
var Topics = outcomes.Topics{Orders: "orders", Containers: "containers", Retry: "order-retries", DeadLetter: "order-dead-letter"}

// ResolutionsTopic is where dlq records what it did with each dead letter.
const ResolutionsTopic = "order-dead-letter.resolutions"

// The consumer groups of the services (their CONSUMER_GROUP defaults).
const (
	ManagerGroup = "reefer-manager"
	RetryGroup   = "order-retry"
)

// Stack is everything a campaign runs: the broker in the test process,
// Postgres in a container behind a proxy, and the inventory mock and the
// four service replicas as processes.
type Stack struct {
	Dir       string // logs
	Bin       string // the binaries of make build
	Broker    *devbroker.Broker
	Kafka     kafkaclient.Config
	Postgres  *Postgres
	Inventory *Process
	Admin     *admin.Client
	Services  map[string]*Process // by replica name (Replicas)
	// env is the contract's environment every service and dlq run gets.
	env map[string]string
	// writer writes to the orders topic (Produce).
	writer *kafka.Writer
}

// BinDir returns the directory of the binaries: $CHAOS_BIN, else the
// repository's bin/ (what `make build` fills).
func BinDir() (string, error) {
	dir := os.Getenv("CHAOS_BIN")
	if dir == "" {
		_, file, _, ok := runtime.Caller(0)
		if !ok {
			return "", errors.New("cannot locate the repository: set CHAOS_BIN to the directory of make build's binaries")
		}
		dir = filepath.Join(filepath.Dir(file), "..", "..", "bin")
	}
	for _, name := range []string{"reefer-manager", "order-retry", "container-inventory-mock", "dlq"} {
		if _, err := exec.LookPath(filepath.Join(dir, name)); err != nil {
			return "", fmt.Errorf("binary %s missing in %s: run make build (or set CHAOS_BIN): %w", name, dir, err)
		}
	}
	return dir, nil
}

// StackConfig sizes a stack.
type StackConfig struct {
	// Fleet is the number of reefers the services seed.
	Fleet int
	// SessionTimeout is the consumer groups' session timeout: how long a
	// killed replica holds its partitions. 6 s is the broker's minimum.
	SessionTimeout time.Duration
}

// StartStack starts everything and returns once every service answers
// /readyz. Everything stops when the test ends.
func StartStack(t testing.TB, cfg StackConfig) (*Stack, error) {
	// Postgres first: with -short, pgtest leaves the test out (the
	// repository's convention for tests that need Docker).
	pg, err := StartPostgres(t)
	if err != nil {
		return nil, err
	}
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	s := &Stack{Dir: t.TempDir(), Bin: bin, Services: map[string]*Process{}, Postgres: pg}
	if dir := os.Getenv("CHAOS_LOG_DIR"); dir != "" {
		s.Dir = filepath.Join(dir, strings.NewReplacer("/", "_", "=", "-").Replace(t.Name()))
		if err := os.MkdirAll(s.Dir, 0o755); err != nil {
			return nil, err
		}
	}

	s.Broker, err = devbroker.Start(t.Context(), devbroker.Config{Topics: kafkaclient.DefaultTopics()})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { s.Broker.Close() })
	s.Kafka = kafkaclient.Config{Brokers: []string{s.Broker.Addr()}}
	if s.writer, err = s.Kafka.NewWriter(Topics.Orders); err != nil {
		return nil, err
	}
	s.writer.BatchBytes = 2 * maxMessageBytes // the oversize record is one
	t.Cleanup(func() { s.writer.Close() })

	s.Inventory, err = NewProcess("container-inventory-mock", filepath.Join(bin, "container-inventory-mock"), s.Dir, map[string]string{
		"LOG_LEVEL": "warn", "LOG_FORMAT": "json", "FAULT_MAX_HANG": "30s", "CALL_LOG_SIZE": "100",
	})
	if err != nil {
		return nil, err
	}
	t.Cleanup(s.Inventory.Close)
	if err := s.Inventory.Start(); err != nil {
		return nil, err
	}
	s.Admin = admin.New("http://"+s.Inventory.Addr, "")

	s.env = map[string]string{
		"KAFKA_BROKERS":    s.Broker.Addr(),
		"ORDERS_TOPIC":     Topics.Orders,
		"CONTAINERS_TOPIC": Topics.Containers,
		"RETRY_TOPIC":      Topics.Retry,
		"DLQ_TOPIC":        Topics.DeadLetter,
	}
	service := maps.Clone(s.env)
	maps.Copy(service, map[string]string{
		"DATABASE_URL":      s.Postgres.DSN(),
		"INVENTORY_URL":     "http://" + s.Inventory.Addr,
		"INVENTORY_TIMEOUT": "1s",
		"RELEASE_INTERVAL":  "1s",
		// A release is done once more 4 s later: an allocation call made
		// before it (1 s timeout) has landed by then.
		"RELEASE_RECHECK_AFTER": "4s",
		// Short retries (0.1, 0.2, 0.4, 0.8 s): the retry budget is shorter
		// than most faults, so that max-attempts dead letters (and then
		// redrives) happen in every campaign.
		"RETRY_MAX_ATTEMPTS":       "5",
		"RETRY_BASE_DELAY":         "100ms",
		"RETRY_MAX_DELAY":          "1s",
		"REEFER_FLEET_SIZE":        strconv.Itoa(cfg.Fleet),
		"CONSUMER_SESSION_TIMEOUT": cfg.SessionTimeout.String(),
		"SHUTDOWN_TIMEOUT":         "10s",
		"LOG_FORMAT":               "json",
		"LOG_LEVEL":                "info",
	})
	for _, name := range Replicas {
		bin := filepath.Join(bin, "reefer-manager")
		if name[:len("order-retry")] == "order-retry" {
			bin = filepath.Join(s.Bin, "order-retry")
		}
		env := maps.Clone(service)
		env["KAFKA_CLIENT_ID"] = name
		p, err := NewProcess(name, bin, s.Dir, env)
		if err != nil {
			return nil, err
		}
		t.Cleanup(p.Close)
		s.Services[name] = p
	}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := s.Inventory.WaitReady(ctx); err != nil {
		return nil, err
	}
	// One replica first: it migrates and seeds the database, the others
	// find it done.
	first := s.Services[Replicas[0]]
	if err := first.Start(); err != nil {
		return nil, err
	}
	if err := first.WaitReady(ctx); err != nil {
		return nil, err
	}
	for _, name := range Replicas[1:] {
		if err := s.Services[name].Start(); err != nil {
			return nil, err
		}
	}
	for _, name := range Replicas[1:] {
		if err := s.Services[name].WaitReady(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Sources are the stack's sources for outcomes.Collect.
func (s *Stack) Sources() outcomes.Sources {
	return outcomes.Sources{Kafka: s.Kafka, Topics: Topics, DatabaseURL: s.Postgres.DSN(), Inventory: s.Admin}
}

// DLQ runs the dlq CLI with the stack's environment and returns its
// combined output. Exit code 3 (nothing matched the filters) is not an
// error.
func (s *Stack) DLQ(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.Bin, "dlq"), args...)
	cmd.Env = append(os.Environ(), "DLQ_OPERATOR=chaos-nemesis", "NO_COLOR=1")
	for k, v := range s.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 3 {
		return string(out), nil
	}
	if err != nil {
		return string(out), fmt.Errorf("dlq %v: %w: %s", args, err, out)
	}
	return string(out), nil
}

// Lags returns, for each service group, the records it has not committed
// on its input topic.
func (s *Stack) Lags(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	for group, topic := range map[string]string{ManagerGroup: Topics.Orders, RetryGroup: Topics.Retry} {
		lag, err := outcomes.Lag(ctx, s.Kafka, group, topic)
		if err != nil {
			return nil, err
		}
		out[group] = lag
	}
	return out, nil
}
