package services

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/dlq"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/resolution"
	"github.com/reeferdlq/reefer-dlq/services/order-retry/retrier"
	"github.com/reeferdlq/reefer-dlq/services/reefer-manager/manager"
)

// Facts are what a deployment needs to know about a configured service.
type Facts struct {
	// HTTPAddr serves /healthz, /readyz and /metrics; empty for the CLI.
	HTTPAddr string
	// Group is the consumer group and Consumes the topic it reads; both
	// empty for a service that consumes nothing.
	Group, Consumes string
	// Brokers are the Kafka bootstrap brokers; empty when not used.
	Brokers []string
	// ReadinessPath is what a Kubernetes readiness probe should GET:
	// /readyz, except for the inventory mock, whose /readyz fails during an
	// injected outage that must reach callers as 503s (use /healthz).
	ReadinessPath string
	// Kafka is what the program does on Kafka, as its configuration says:
	// the ACLs a deployment must grant it, and no more.
	Kafka Access
}

// Access lists the topics a program reads and writes and the consumer
// groups whose offsets it commits.
type Access struct {
	Reads, Writes, Groups []string
}

// Service is one program of the suite, named as its compose service and
// its Kubernetes Deployment and container are.
type Service struct {
	Name string
	load func(getenv func(string) string) (Facts, error)
}

// Runtime lists the variables the Go runtime reads, which a deployment may
// set for any service (GOMEMLIMIT from the container's memory limit).
var Runtime = []string{"GOMEMLIMIT", "GOGC", "GOMAXPROCS", "GODEBUG", "GOTRACEBACK"}

// All returns the suite's programs: the two consumers, the inventory mock
// and the dlq CLI.
func All() []Service {
	return []Service{
		{Name: "reefer-manager", load: func(getenv func(string) string) (Facts, error) {
			cfg, err := manager.ConfigFromEnv(getenv)
			return Facts{HTTPAddr: cfg.HTTPAddr, Group: cfg.ConsumerGroup, Consumes: cfg.OrdersTopic, Brokers: cfg.Kafka.Brokers, ReadinessPath: "/readyz",
				// It emits events to orders and containers and hands
				// failures to the retry and dead-letter topics.
				Kafka: Access{Reads: []string{cfg.OrdersTopic}, Groups: []string{cfg.ConsumerGroup},
					Writes: []string{cfg.OrdersTopic, cfg.ContainersTopic, cfg.RetryTopic, cfg.DLQTopic}}}, err
		}},
		{Name: "order-retry", load: func(getenv func(string) string) (Facts, error) {
			cfg, err := retrier.ConfigFromEnv(getenv)
			return Facts{HTTPAddr: cfg.HTTPAddr, Group: cfg.ConsumerGroup, Consumes: cfg.RetryTopic, Brokers: cfg.Kafka.Brokers, ReadinessPath: "/readyz",
				// A successful retry emits reefer-manager's events; a
				// failed one republishes to the retry or dead-letter topic.
				Kafka: Access{Reads: []string{cfg.RetryTopic}, Groups: []string{cfg.ConsumerGroup},
					Writes: []string{cfg.OrdersTopic, cfg.ContainersTopic, cfg.RetryTopic, cfg.DLQTopic}}}, err
		}},
		{Name: "container-inventory-mock", load: func(getenv func(string) string) (Facts, error) {
			cfg, err := inventorymock.ConfigFromEnv(getenv)
			return Facts{HTTPAddr: cfg.HTTPAddr, ReadinessPath: "/healthz"}, err
		}},
		{Name: "dlq", load: func(getenv func(string) string) (Facts, error) { return loadDLQ(nil, getenv) }},
	}
}

// Lookup returns the service named name.
func Lookup(name string) (Service, bool) {
	i := slices.IndexFunc(All(), func(s Service) bool { return s.Name == name })
	if i < 0 {
		return Service{}, false
	}
	return All()[i], true
}

// Loaded is the outcome of Load.
type Loaded struct {
	Facts Facts
	// Read lists, sorted, every variable the service looked up.
	Read []string
	// Unread lists, sorted, the variables of env that the service never
	// looked up, the Go runtime's excepted.
	Unread []string
}

// Load configures the service from env exactly as its main does at start.
// The error is the service's own refusal of a value; Unread is filled
// either way.
func (s Service) Load(env map[string]string) (Loaded, error) {
	read := map[string]bool{}
	getenv := func(key string) string {
		read[key] = true
		return env[key]
	}
	facts, err := s.load(getenv)
	out := Loaded{Facts: facts, Read: slices.Sorted(maps.Keys(read))}
	for k := range env {
		if !read[k] && !slices.Contains(Runtime, k) {
			out.Unread = append(out.Unread, k)
		}
	}
	slices.Sort(out.Unread)
	if err != nil {
		return out, fmt.Errorf("%s refuses its configuration: %w", s.Name, err)
	}
	return out, nil
}

// LoadDLQ configures the dlq command as a deployment runs it, with args
// (default "stats") and env; it reports a refused flag or variable, and
// what the command does on Kafka: it reads the dead-letter topic and the
// resolution log, writes the retry topic (redrive and watch --to retry; --to
// original writes to each letter's original topic instead, taken from
// ORDERS_TOPIC here) and the resolution log, and commits the redrive group.
func LoadDLQ(args []string, env map[string]string) (Loaded, error) {
	s := Service{Name: "dlq", load: func(getenv func(string) string) (Facts, error) { return loadDLQ(args, getenv) }}
	return s.Load(env)
}

// loadDLQ runs the dlq command with the global flag --timeout 0s, which it
// refuses only after it has read and applied every variable it knows: the
// refusal proves the environment was accepted, and nothing reaches out to a
// broker.
func loadDLQ(args []string, getenv func(string) string) (Facts, error) {
	if len(args) == 0 {
		args = []string{"stats"}
	}
	var stdout, stderr bytes.Buffer
	code := dlq.Run(context.Background(), append(slices.Clone(args), "--timeout", "0s"), dlq.Env{
		Stdin:  strings.NewReader(""),
		Stdout: &stdout, Stderr: &stderr,
		Getenv: getenv,
	})
	if code != dlq.ExitUsage || !strings.Contains(stderr.String(), "--timeout 0s") {
		return Facts{}, fmt.Errorf("dlq %s --timeout 0s: exit code %d, want %d with a complaint about --timeout only: %s",
			strings.Join(args, " "), code, dlq.ExitUsage, strings.TrimSpace(stderr.String()))
	}
	or := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	topic := or("DLQ_TOPIC", dlq.DefaultTopic)
	resolutions := or("DLQ_RESOLUTIONS_TOPIC", resolution.TopicFor(topic))
	target := or("RETRY_TOPIC", dlq.DefaultRetry)
	if i := slices.Index(args, "--to"); i >= 0 && i+1 < len(args) && args[i+1] == "original" {
		target = or("ORDERS_TOPIC", "orders")
	}
	return Facts{Kafka: Access{
		Reads:  []string{topic, resolutions},
		Writes: []string{target, resolutions},
		Groups: []string{or("DLQ_REDRIVE_GROUP", resolution.DefaultGroup)},
	}}, nil
}
