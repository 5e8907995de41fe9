package retrier

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/backoff"
	"github.com/reeferdlq/reefer-dlq/pkg/envconfig"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaclient"
)

// Config is everything order-retry reads from its environment. The tags
// are read by envconfig.Parse in ConfigFromEnv; the local demo fills the
// struct itself and calls Run.
type Config struct {
	// Kafka is the broker connection: KAFKA_BROKERS, KAFKA_CLIENT_ID,
	// KAFKA_TLS*, KAFKA_SASL*.
	Kafka kafkaclient.Config

	// DatabaseURL is the reefer database reefer-manager writes too:
	// postgres://user:pass@host/db, or sqlite:<path> for the local demo. No
	// default: a service that silently wrote to a local file in production
	// would be worse than one that does not start.
	DatabaseURL string `env:"DATABASE_URL"`
	// FleetSize is the number of reefers seeded at start (idempotent, and
	// the same default as reefer-manager, so whichever starts first seeds).
	FleetSize int `env:"REEFER_FLEET_SIZE" envDefault:"1000"`

	// InventoryURL is the legacy container inventory's base URL.
	InventoryURL string `env:"INVENTORY_URL" envDefault:"http://localhost:8081"`
	// InventoryTimeout bounds every inventory call.
	InventoryTimeout time.Duration `env:"INVENTORY_TIMEOUT" envDefault:"2s"`

	// HTTPAddr serves /healthz, /readyz and /metrics.
	HTTPAddr  string     `env:"HTTP_ADDR" envDefault:":8082"`
	LogLevel  slog.Level `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat string     `env:"LOG_FORMAT" envDefault:"json"`

	OrdersTopic     string `env:"ORDERS_TOPIC" envDefault:"orders"`
	ContainersTopic string `env:"CONTAINERS_TOPIC" envDefault:"containers"`
	// RetryTopic is read (the records to retry) and written (the records
	// that fail again and have attempts left).
	RetryTopic string `env:"RETRY_TOPIC" envDefault:"order-retries"`
	DLQTopic   string `env:"DLQ_TOPIC" envDefault:"order-dead-letter"`
	// ConsumerGroup is the Kafka consumer group of the retry reader.
	ConsumerGroup string `env:"CONSUMER_GROUP" envDefault:"order-retry"`
	// SessionTimeout is how long the group waits for a member that stopped
	// sending heartbeats (a crashed process) before giving its partitions
	// to the others; records it held wait that long, plus their due time.
	// Heartbeats go every tenth of it. Brokers accept 6s to 30m by default.
	SessionTimeout time.Duration `env:"CONSUMER_SESSION_TIMEOUT" envDefault:"30s"`

	// RetryMaxAttempts is the number of failed attempts, reefer-manager's
	// first one included, after which an order is dead-lettered with
	// max-attempts. With 5: attempt 1 in reefer-manager, 2 to 5 here.
	RetryMaxAttempts    int            `env:"RETRY_MAX_ATTEMPTS" envDefault:"5"`
	RetryBaseDelay      time.Duration  `env:"RETRY_BASE_DELAY" envDefault:"1s"`
	RetryMaxDelay       time.Duration  `env:"RETRY_MAX_DELAY" envDefault:"1m"`
	RetryJitter         backoff.Jitter `env:"RETRY_JITTER" envDefault:"proportional"`
	RetryJitterFraction float64        `env:"RETRY_JITTER_FRACTION" envDefault:"0.1"`

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
	// ShutdownTimeout bounds the drain of running retries and each closing
	// step after it.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"20s"`
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

	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	if strings.TrimSpace(c.DatabaseURL) == "" {
		// The form is checked by reeferstore.Open, the first thing Run does.
		add("DATABASE_URL is not set: want postgres://user:password@host:5432/db or sqlite:<path>")
	}
	if c.FleetSize < 1 {
		add("REEFER_FLEET_SIZE=%d: want a whole number >= 1", c.FleetSize)
	}
	if u, err := url.Parse(c.InventoryURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("INVENTORY_URL %q: want an absolute http(s) URL such as http://localhost:8081", c.InventoryURL)
	}
	if c.InventoryTimeout <= 0 {
		add("INVENTORY_TIMEOUT=%s: want a positive duration such as 2s", c.InventoryTimeout)
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		add("HTTP_ADDR %q: want [host]:port such as :8082", c.HTTPAddr)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		add("LOG_FORMAT %q: want json or text", c.LogFormat)
	}
	topics := []struct{ name, value string }{
		{"ORDERS_TOPIC", c.OrdersTopic}, {"CONTAINERS_TOPIC", c.ContainersTopic},
		{"RETRY_TOPIC", c.RetryTopic}, {"DLQ_TOPIC", c.DLQTopic},
	}
	for _, t := range append(topics, struct{ name, value string }{"CONSUMER_GROUP", c.ConsumerGroup}) {
		if strings.TrimSpace(t.value) != t.value || t.value == "" {
			add("%s %q: want a non-empty name without spaces", t.name, t.value)
		}
	}
	// The input topic must be none of the outputs: success events or dead
	// letters read back as retries would be dead-lettered as poison, and
	// the dead letters of those read back again, without end.
	for _, t := range topics {
		if t.name != "RETRY_TOPIC" && t.value == c.RetryTopic {
			add("RETRY_TOPIC and %s are both %q: the retry topic must differ from every topic this service writes events or dead letters to", t.name, t.value)
		}
	}
	if c.SessionTimeout < 6*time.Second || c.SessionTimeout > 30*time.Minute {
		add("CONSUMER_SESSION_TIMEOUT=%s: want a duration from 6s to 30m (the broker's group session bounds), such as 30s", c.SessionTimeout)
	}
	if c.RetryMaxAttempts < 1 {
		add("RETRY_MAX_ATTEMPTS=%d: want a whole number >= 1", c.RetryMaxAttempts)
	}
	if c.RetryBaseDelay <= 0 {
		add("RETRY_BASE_DELAY=%s: want a positive duration such as 1s", c.RetryBaseDelay)
	}
	if c.RetryMaxDelay < c.RetryBaseDelay {
		add("RETRY_MAX_DELAY=%s: want a duration >= RETRY_BASE_DELAY (%s), such as 1m", c.RetryMaxDelay, c.RetryBaseDelay)
	}
	if _, err := backoff.ParseJitter(string(c.RetryJitter)); err != nil {
		add("RETRY_JITTER %q: want proportional, full, equal or decorrelated", c.RetryJitter)
	}
	if !(c.RetryJitterFraction > 0 && c.RetryJitterFraction <= 1) {
		add("RETRY_JITTER_FRACTION=%v: want a number in (0, 1] such as 0.1", c.RetryJitterFraction)
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
	if c.ShutdownTimeout <= 0 {
		add("SHUTDOWN_TIMEOUT=%s: want a positive duration such as 20s", c.ShutdownTimeout)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("invalid configuration: %w", errors.Join(errs...))
}

// BackoffPolicy is the retry delay policy the configuration describes.
func (c Config) BackoffPolicy() backoff.Policy {
	jitter, _ := backoff.ParseJitter(string(c.RetryJitter)) // Validate has checked it
	return backoff.Policy{
		Base:     c.RetryBaseDelay,
		Max:      c.RetryMaxDelay,
		Jitter:   jitter,
		Fraction: c.RetryJitterFraction,
	}
}

// NewLogger builds the service's logger from LOG_LEVEL and LOG_FORMAT.
func NewLogger(w io.Writer, c Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// LogValue prints the configuration with secrets masked: the database
// URL's password and the Kafka SASL password.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Any("kafka", c.Kafka),
		slog.String("database_url", envconfig.RedactURL(c.DatabaseURL)),
		slog.Int("fleet_size", c.FleetSize),
		slog.String("inventory_url", envconfig.RedactURL(c.InventoryURL)),
		slog.Duration("inventory_timeout", c.InventoryTimeout),
		slog.String("http_addr", c.HTTPAddr),
		slog.String("log_level", c.LogLevel.String()),
		slog.String("log_format", c.LogFormat),
		slog.String("orders_topic", c.OrdersTopic),
		slog.String("containers_topic", c.ContainersTopic),
		slog.String("retry_topic", c.RetryTopic),
		slog.String("dlq_topic", c.DLQTopic),
		slog.String("consumer_group", c.ConsumerGroup),
		slog.Duration("consumer_session_timeout", c.SessionTimeout),
		slog.Int("retry_max_attempts", c.RetryMaxAttempts),
		slog.Duration("retry_base_delay", c.RetryBaseDelay),
		slog.Duration("retry_max_delay", c.RetryMaxDelay),
		slog.String("retry_jitter", string(c.RetryJitter)),
		slog.Float64("retry_jitter_fraction", c.RetryJitterFraction),
		slog.Int("max_pending", c.MaxPending),
		slog.Int("max_in_flight", c.MaxInFlight),
		slog.Duration("max_due_ahead", c.MaxDueAhead),
		slog.Duration("shutdown_timeout", c.ShutdownTimeout),
	)
}

// String masks secrets like LogValue, so that printing a Config with %v
// cannot leak them either.
func (c Config) String() string {
	return c.LogValue().String()
}
