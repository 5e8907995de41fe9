package manager

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/reeferdlq/reefer-dlq/pkg/backoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaclient"
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
// tags are read by github.com/caarlos0/env/v11 in ConfigFromEnv; the
// local demo fills the struct itself and calls Run.
type Config struct {
	// Kafka is the broker connection: KAFKA_BROKERS, KAFKA_CLIENT_ID,
	// KAFKA_TLS*, KAFKA_SASL*.
	Kafka kafkaclient.Config

	// DatabaseURL is the reefer database: postgres://user:pass@host/db, or
	// sqlite:<path> for the local demo. It has no default: a service
	// that silently wrote to a local file in production would be worse
	// than one that does not start.
	DatabaseURL string `env:"DATABASE_URL"`
	// FleetSize is the number of reefers seeded at start (idempotent).
	FleetSize int `env:"REEFER_FLEET_SIZE" envDefault:"1000"`

	// InventoryURL is the legacy container inventory's base URL.
	InventoryURL string `env:"INVENTORY_URL" envDefault:"http://localhost:8081"`
	// InventoryTimeout bounds every inventory call.
	InventoryTimeout time.Duration `env:"INVENTORY_TIMEOUT" envDefault:"2s"`

	// HTTPAddr serves /healthz, /readyz and /metrics.
	HTTPAddr  string     `env:"HTTP_ADDR" envDefault:":8080"`
	LogLevel  slog.Level `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat string     `env:"LOG_FORMAT" envDefault:"json"`

	OrdersTopic     string `env:"ORDERS_TOPIC" envDefault:"orders"`
	ContainersTopic string `env:"CONTAINERS_TOPIC" envDefault:"containers"`
	RetryTopic      string `env:"RETRY_TOPIC" envDefault:"order-retries"`
	DLQTopic        string `env:"DLQ_TOPIC" envDefault:"order-dead-letter"`
	// ConsumerGroup is the Kafka consumer group of the orders reader.
	ConsumerGroup string `env:"CONSUMER_GROUP" envDefault:"reefer-manager"`

	// RetryMaxAttempts is the number of failed attempts (this service's
	// included) after which an order is dead-lettered with max-attempts.
	RetryMaxAttempts    int            `env:"RETRY_MAX_ATTEMPTS" envDefault:"5"`
	RetryBaseDelay      time.Duration  `env:"RETRY_BASE_DELAY" envDefault:"1s"`
	RetryMaxDelay       time.Duration  `env:"RETRY_MAX_DELAY" envDefault:"1m"`
	RetryJitter         backoff.Jitter `env:"RETRY_JITTER" envDefault:"proportional"`
	RetryJitterFraction float64        `env:"RETRY_JITTER_FRACTION" envDefault:"0.1"`

	// CommitMode is CommitAfterHandoff (default) or CommitBeforeProcessing.
	CommitMode string `env:"COMMIT_MODE" envDefault:"after-handoff"`
	// MaxInFlight bounds the records being processed at once.
	MaxInFlight int `env:"MAX_IN_FLIGHT" envDefault:"256"`
	// ShutdownTimeout bounds the drain of in-flight records and each
	// closing step after it.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"20s"`
}

// ConfigFromEnv reads the configuration through getenv (os.Getenv in
// main, a map in tests) and validates it. The error names every bad
// variable and the form it accepts.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var cfg Config
	params, err := env.GetFieldParams(&cfg)
	if err != nil {
		return Config{}, fmt.Errorf("read configuration: %w", err)
	}
	// env/v11 reads a map, not a function: fill the map with exactly the
	// variables the struct declares.
	environ := make(map[string]string, len(params))
	for _, p := range params {
		if v := getenv(p.Key); v != "" {
			environ[p.Key] = v
		}
	}
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: environ}); err != nil {
		return Config{}, fmt.Errorf("read configuration: %w", explainParseErrors(err, environ))
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
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := checkDatabaseURL(c.DatabaseURL); err != nil {
		errs = append(errs, err)
	}
	if c.FleetSize < 1 {
		errs = append(errs, fmt.Errorf("REEFER_FLEET_SIZE=%d: want a whole number >= 1", c.FleetSize))
	}
	if u, err := url.Parse(c.InventoryURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("INVENTORY_URL %q: want an absolute http(s) URL such as http://localhost:8081", c.InventoryURL))
	}
	if c.InventoryTimeout <= 0 {
		errs = append(errs, fmt.Errorf("INVENTORY_TIMEOUT=%s: want a positive duration such as 2s", c.InventoryTimeout))
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("HTTP_ADDR %q: want [host]:port such as :8080", c.HTTPAddr))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("LOG_FORMAT %q: want json or text", c.LogFormat))
	}
	for _, t := range []struct{ name, value string }{
		{"ORDERS_TOPIC", c.OrdersTopic}, {"CONTAINERS_TOPIC", c.ContainersTopic},
		{"RETRY_TOPIC", c.RetryTopic}, {"DLQ_TOPIC", c.DLQTopic}, {"CONSUMER_GROUP", c.ConsumerGroup},
	} {
		if strings.TrimSpace(t.value) != t.value || t.value == "" {
			errs = append(errs, fmt.Errorf("%s %q: want a non-empty name without spaces", t.name, t.value))
		}
	}
	if c.RetryTopic == c.OrdersTopic || c.DLQTopic == c.OrdersTopic {
		errs = append(errs, fmt.Errorf("RETRY_TOPIC and DLQ_TOPIC must differ from ORDERS_TOPIC (%q): a failed order written back to its input would loop", c.OrdersTopic))
	}
	if c.RetryMaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("RETRY_MAX_ATTEMPTS=%d: want a whole number >= 1", c.RetryMaxAttempts))
	}
	if c.RetryBaseDelay <= 0 {
		errs = append(errs, fmt.Errorf("RETRY_BASE_DELAY=%s: want a positive duration such as 1s", c.RetryBaseDelay))
	}
	if c.RetryMaxDelay < c.RetryBaseDelay {
		errs = append(errs, fmt.Errorf("RETRY_MAX_DELAY=%s: want a duration >= RETRY_BASE_DELAY (%s), such as 1m", c.RetryMaxDelay, c.RetryBaseDelay))
	}
	if _, err := backoff.ParseJitter(string(c.RetryJitter)); err != nil {
		errs = append(errs, fmt.Errorf("RETRY_JITTER %q: want proportional, full, equal or decorrelated", c.RetryJitter))
	}
	if !(c.RetryJitterFraction > 0 && c.RetryJitterFraction <= 1) {
		errs = append(errs, fmt.Errorf("RETRY_JITTER_FRACTION=%v: want a number in (0, 1] such as 0.1", c.RetryJitterFraction))
	}
	if c.CommitMode != CommitAfterHandoff && c.CommitMode != CommitBeforeProcessing {
		errs = append(errs, fmt.Errorf("COMMIT_MODE %q: want %s or %s", c.CommitMode, CommitAfterHandoff, CommitBeforeProcessing))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("MAX_IN_FLIGHT=%d: want a whole number >= 1", c.MaxInFlight))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("SHUTDOWN_TIMEOUT=%s: want a positive duration such as 20s", c.ShutdownTimeout))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("invalid configuration: %w", errors.Join(errs...))
}

// checkDatabaseURL accepts the forms reeferstore.Open reads; Open checks
// the details, this catches a wrong kind of value before anything starts.
func checkDatabaseURL(s string) error {
	const forms = "want postgres://user:password@host:5432/db, sqlite:<path>, file:<path> or a path ending in .db"
	lower := strings.ToLower(s)
	switch {
	case s == "":
		return errors.New("DATABASE_URL is not set: " + forms)
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"),
		strings.HasPrefix(lower, "sqlite:"), strings.HasPrefix(lower, "file:"),
		strings.HasSuffix(strings.SplitN(lower, "?", 2)[0], ".db"):
		return nil
	}
	return fmt.Errorf("DATABASE_URL %q: %s", redactURL(s), forms)
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
		slog.String("database_url", redactURL(c.DatabaseURL)),
		slog.Int("fleet_size", c.FleetSize),
		slog.String("inventory_url", redactURL(c.InventoryURL)),
		slog.Duration("inventory_timeout", c.InventoryTimeout),
		slog.String("http_addr", c.HTTPAddr),
		slog.String("log_level", c.LogLevel.String()),
		slog.String("log_format", c.LogFormat),
		slog.String("orders_topic", c.OrdersTopic),
		slog.String("containers_topic", c.ContainersTopic),
		slog.String("retry_topic", c.RetryTopic),
		slog.String("dlq_topic", c.DLQTopic),
		slog.String("consumer_group", c.ConsumerGroup),
		slog.Int("retry_max_attempts", c.RetryMaxAttempts),
		slog.Duration("retry_base_delay", c.RetryBaseDelay),
		slog.Duration("retry_max_delay", c.RetryMaxDelay),
		slog.String("retry_jitter", string(c.RetryJitter)),
		slog.Float64("retry_jitter_fraction", c.RetryJitterFraction),
		slog.String("commit_mode", c.CommitMode),
		slog.Int("max_in_flight", c.MaxInFlight),
		slog.Duration("shutdown_timeout", c.ShutdownTimeout),
	)
}

// String masks secrets like LogValue, so that printing a Config with %v
// cannot leak them either.
func (c Config) String() string {
	return c.LogValue().String()
}

// redactURL hides the password of a URL (postgres://user:xxxxx@host/db).
// Values that are not URLs with credentials are returned unchanged.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// explainParseErrors rewrites env/v11's parse errors, which name the Go
// field ("RetryBaseDelay"), into errors that name the variable and the
// accepted form ("RETRY_BASE_DELAY="soon": want a duration such as 1s").
func explainParseErrors(err error, environ map[string]string) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	keys := fieldKeys(reflect.TypeFor[Config](), nil)
	out := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			out = append(out, e)
			continue
		}
		key := strings.Join(keys[pe.Name], " or ")
		// Two fields may share a Go name (in nested structs); the one the
		// environment sets is the culprit, since defaults always parse.
		for _, k := range keys[pe.Name] {
			if _, ok := environ[k]; ok {
				key = k
				break
			}
		}
		out = append(out, fmt.Errorf("%s=%q: want %s", key, environ[key], acceptedForm(pe.Type)))
	}
	return errors.Join(out...)
}

// fieldKeys maps each Go field name of t (nested structs included) to the
// environment variables it is read from.
func fieldKeys(t reflect.Type, into map[string][]string) map[string][]string {
	if into == nil {
		into = map[string][]string{}
	}
	for f := range t.Fields() {
		key, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		switch {
		case key == "-":
		case key != "":
			into[f.Name] = append(into[f.Name], key)
		case f.Type.Kind() == reflect.Struct:
			fieldKeys(f.Type, into)
		}
	}
	return into
}

func acceptedForm(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[time.Duration]():
		return "a duration such as 500ms, 2s or 1m"
	case reflect.TypeFor[slog.Level]():
		return "debug, info, warn or error"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "a whole number"
	case reflect.Float64, reflect.Float32:
		return "a number such as 0.1"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "a comma-separated list"
	}
	return fmt.Sprintf("a value of type %s", t)
}
