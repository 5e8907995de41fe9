package retrier

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/cmdline"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/envconfig"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/pipeline"
)

// Config is everything order-retry reads from its environment. The tags
// are read by envconfig.Parse in ConfigFromEnv; the local demo fills the
// struct itself and calls Run.
type Config struct {
	// Stage is what order-retry shares with reefer-manager: the broker,
	// the reefer database, the inventory, the topics (RETRY_TOPIC is read
	// here, and written for the records that fail again with attempts
	// left), the retry policy, logging and the shutdown bound.
	pipeline.Stage

	// HTTPAddr serves /healthz, /readyz and /metrics.
	HTTPAddr string `env:"HTTP_ADDR" envDefault:":8082"`
	// ConsumerGroup is the Kafka consumer group of the retry reader.
	ConsumerGroup string `env:"CONSUMER_GROUP" envDefault:"order-retry"`
	// MaxPending bounds the records held in memory, waiting for their due
	// time or running. At the bound the service stops fetching until one
	// finishes; it never drops a record. 10,000 records of 2 KiB are about
	// 20 MiB.
	MaxPending int `env:"MAX_PENDING" envDefault:"10000"`
	// MaxInFlight is how many due records are retried at the same time.
	MaxInFlight int `env:"MAX_IN_FLIGHT" envDefault:"64"`
	// MaxDueAhead is how far in the future an x-retry-due-at may lie. A
	// record due later (a producer's clock far ahead, a forged header)
	// would hold a pending slot and its partition's commits for that long;
	// it is dead-lettered as poison instead. It must exceed the longest
	// delay the retry policy can give.
	MaxDueAhead time.Duration `env:"MAX_DUE_AHEAD" envDefault:"1h"`
}

// ConfigFromEnv reads the configuration through getenv (os.Getenv in
// main, a map in tests) and validates it. The error names every bad
// variable and the form it accepts.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg, err := envconfig.Parse[Config](getenv)
	if err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate reports every invalid setting, each naming its variable and
// the accepted form.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if err := c.Stage.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		add("HTTP_ADDR %q: want [host]:port such as :8082", c.HTTPAddr)
	}
	if err := pipeline.CheckName("CONSUMER_GROUP", c.ConsumerGroup); err != nil {
		errs = append(errs, err)
	}
	// The input topic must be none of the outputs: success events or dead
	// letters read back as retries would be dead-lettered as poison, and
	// the dead letters of those read back again, without end.
	for _, t := range []struct{ name, value string }{
		{"ORDERS_TOPIC", c.OrdersTopic}, {"CONTAINERS_TOPIC", c.ContainersTopic}, {"DLQ_TOPIC", c.DLQTopic},
	} {
		if t.value == c.RetryTopic {
			add("RETRY_TOPIC and %s are both %q: the retry topic must differ from every topic this service writes events or dead letters to", t.name, t.value)
		}
	}
	if c.MaxInFlight < 1 {
		add("MAX_IN_FLIGHT=%d: want a whole number >= 1", c.MaxInFlight)
	}
	if c.MaxPending < c.MaxInFlight {
		add("MAX_PENDING=%d: want a whole number >= MAX_IN_FLIGHT (%d): running records count against it", c.MaxPending, c.MaxInFlight)
	}
	if len(errs) == 0 { // the bound needs a valid policy
		if bound := c.BackoffPolicy().Bound(); c.MaxDueAhead <= bound {
			add("MAX_DUE_AHEAD=%s: want a duration above the longest retry delay, %s (RETRY_MAX_DELAY plus jitter), such as 1h", c.MaxDueAhead, bound)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("invalid configuration: %w", errors.Join(errs...))
}

// LogValue prints the configuration with secrets masked: the database
// URL's password and the Kafka SASL password.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(append(c.Stage.LogAttrs(),
		slog.String("http_addr", c.HTTPAddr),
		slog.String("consumer_group", c.ConsumerGroup),
		slog.Int("max_pending", c.MaxPending),
		slog.Int("max_in_flight", c.MaxInFlight),
		slog.Duration("max_due_ahead", c.MaxDueAhead),
	)...)
}

// String masks secrets like LogValue, so that printing a Config with %v
// cannot leak them either.
func (c Config) String() string {
	return c.LogValue().String()
}

// Command is the service as a process, for cmdline.Main.
func Command() cmdline.Command {
	return pipeline.Command("order-retry", About, ConfigFromEnv, Run)
}
