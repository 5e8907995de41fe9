package manager

import (
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/cmdline"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/envconfig"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/pipeline"
)

// Commit modes (COMMIT_MODE). See the README for the loss window of
// CommitBeforeProcessing.
const (
	// CommitAfterHandoff commits a record's offset only once its outcome
	// (success events, retry record or dead letter) is acknowledged by the
	// broker. A crash re-delivers unfinished records; nothing is lost.
	CommitAfterHandoff = "after-handoff"
	// CommitBeforeProcessing commits each record as soon as it is fetched,
	// then processes it: the approach the pattern's source describes. A
	// crash between the commit and the hand-off loses the record.
	CommitBeforeProcessing = "before-processing"
)

// Config is everything reefer-manager reads from its environment. The
// tags are read by envconfig.Parse in ConfigFromEnv; the local demo fills
// the struct itself and calls Run.
type Config struct {
	// Stage is what reefer-manager shares with order-retry: the broker,
	// the reefer database, the inventory, the topics, the retry policy,
	// logging and the shutdown bound.
	pipeline.Stage

	// HTTPAddr serves /healthz, /readyz and /metrics.
	HTTPAddr string `env:"HTTP_ADDR" envDefault:":8080"`
	// ConsumerGroup is the Kafka consumer group of the orders reader.
	ConsumerGroup string `env:"CONSUMER_GROUP" envDefault:"reefer-manager"`
	// CommitMode is CommitAfterHandoff (default) or CommitBeforeProcessing.
	CommitMode string `env:"COMMIT_MODE" envDefault:"after-handoff"`
	// MaxInFlight bounds the records being processed at once.
	MaxInFlight int `env:"MAX_IN_FLIGHT" envDefault:"256"`
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
	if err := c.Stage.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("HTTP_ADDR %q: want [host]:port such as :8080", c.HTTPAddr))
	}
	if err := pipeline.CheckName("CONSUMER_GROUP", c.ConsumerGroup); err != nil {
		errs = append(errs, err)
	}
	// This service reads ORDERS_TOPIC; a failed order written back to it
	// would be read again without end.
	if c.RetryTopic == c.OrdersTopic || c.DLQTopic == c.OrdersTopic {
		errs = append(errs, fmt.Errorf("RETRY_TOPIC and DLQ_TOPIC must differ from ORDERS_TOPIC (%q): a failed order written back to its input would loop", c.OrdersTopic))
	}
	if c.CommitMode != CommitAfterHandoff && c.CommitMode != CommitBeforeProcessing {
		errs = append(errs, fmt.Errorf("COMMIT_MODE %q: want %s or %s", c.CommitMode, CommitAfterHandoff, CommitBeforeProcessing))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("MAX_IN_FLIGHT=%d: want a whole number >= 1", c.MaxInFlight))
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
		slog.String("commit_mode", c.CommitMode),
		slog.Int("max_in_flight", c.MaxInFlight),
	)...)
}

// String masks secrets like LogValue, so that printing a Config with %v
// cannot leak them either.
func (c Config) String() string {
	return c.LogValue().String()
}

// Command is the service as a process, for cmdline.Main.
func Command() cmdline.Command {
	return pipeline.Command("reefer-manager", About, ConfigFromEnv, Run)
}
