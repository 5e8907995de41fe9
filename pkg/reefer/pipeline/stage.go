package pipeline

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/backoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/envconfig"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/telemetry"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
)

// Stage is the configuration every stage of the order pipeline
// (reefer-manager, order-retry) reads from the same variables with the
// same defaults. The tags are read by envconfig.Parse.
type Stage struct {
	// Kafka is the broker connection: KAFKA_BROKERS, KAFKA_CLIENT_ID,
	// KAFKA_TLS*, KAFKA_SASL*.
	Kafka kafkaclient.Config

	// DatabaseURL is the reefer database: postgres://user:pass@host/db, or
	// sqlite:<path> for the local demo. It has no default: a service that
	// silently wrote to a local file in production would be worse than one
	// that does not start.
	DatabaseURL string `env:"DATABASE_URL"`
	// FleetSize is the number of reefers seeded at start. Seeding is
	// idempotent and every stage has the same default, so whichever starts
	// first seeds.
	FleetSize int `env:"REEFER_FLEET_SIZE" envDefault:"1000"`

	// InventoryURL is the legacy container inventory's base URL.
	InventoryURL string `env:"INVENTORY_URL" envDefault:"http://localhost:8081"`
	// InventoryTimeout bounds every inventory call.
	InventoryTimeout time.Duration `env:"INVENTORY_TIMEOUT" envDefault:"2s"`
	// InventorySlowCallFloor is the least a call may run before it counts
	// as slow: when 10 calls at once run past the learnt threshold (never
	// below this floor), every call in flight fails at once and the
	// breaker opens, instead of every lane waiting out INVENTORY_TIMEOUT
	// (inventory.Config.SlowCallFloor). 0s turns that off; a floor at or
	// above INVENTORY_TIMEOUT never trips before the timeout.
	InventorySlowCallFloor time.Duration `env:"INVENTORY_SLOW_CALL_FLOOR" envDefault:"500ms"`
	// ReleaseInterval is how often the reefers of dead-lettered attempts
	// that the inventory could not release at once are tried again
	// (allocation.Releaser.Run).
	ReleaseInterval time.Duration `env:"RELEASE_INTERVAL" envDefault:"10s"`
	// ReleaseRecheckAfter is how old a release is when the sweep releases
	// it in the inventory once more, for an allocation call made before
	// the release that landed after it (allocation.Releaser.Recheck). It
	// must exceed INVENTORY_TIMEOUT; a call that lands later than this is
	// not caught.
	ReleaseRecheckAfter time.Duration `env:"RELEASE_RECHECK_AFTER" envDefault:"1m"`

	LogLevel  slog.Level `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat string     `env:"LOG_FORMAT" envDefault:"json"`

	OrdersTopic     string `env:"ORDERS_TOPIC" envDefault:"orders"`
	ContainersTopic string `env:"CONTAINERS_TOPIC" envDefault:"containers"`
	// RetryTopic receives the orders that failed with a transient error;
	// order-retry reads it and writes the ones that fail again back to it.
	RetryTopic string `env:"RETRY_TOPIC" envDefault:"order-retries"`
	DLQTopic   string `env:"DLQ_TOPIC" envDefault:"order-dead-letter"`

	// RetryMaxAttempts is the number of failed attempts, reefer-manager's
	// first one included, after which an order is dead-lettered with
	// max-attempts. With 5: attempt 1 in reefer-manager, 2 to 5 in
	// order-retry.
	RetryMaxAttempts    int            `env:"RETRY_MAX_ATTEMPTS" envDefault:"5"`
	RetryBaseDelay      time.Duration  `env:"RETRY_BASE_DELAY" envDefault:"1s"`
	RetryMaxDelay       time.Duration  `env:"RETRY_MAX_DELAY" envDefault:"1m"`
	RetryJitter         backoff.Jitter `env:"RETRY_JITTER" envDefault:"proportional"`
	RetryJitterFraction float64        `env:"RETRY_JITTER_FRACTION" envDefault:"0.1"`

	// MaxMessageBytes is the max.message.bytes of the orders, containers
	// and retry topics, and DLQMaxMessageBytes that of the dead-letter
	// topic: set them to what the topics are configured with. Records are
	// checked against them before they are written, so that a record too
	// large for the retry topic (its value plus the retry headers) is
	// dead-lettered as oversize at once instead of blocking its partition;
	// the dead letter keeps as much of the value as the dead-letter topic
	// takes. Defaults: Kafka's own default, 1048588. Give the dead-letter
	// topic more (the deployments use 2 MiB): a dead letter is its record
	// plus up to ~6 KiB of headers.
	MaxMessageBytes    int `env:"MAX_MESSAGE_BYTES" envDefault:"1048588"`
	DLQMaxMessageBytes int `env:"DLQ_MAX_MESSAGE_BYTES" envDefault:"1048588"`

	// ShutdownTimeout bounds the drain of the records being processed and
	// each closing step after it.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"20s"`

	// Group is the consumer-group timing of the stage's reader:
	// CONSUMER_SESSION_TIMEOUT, CONSUMER_HEARTBEAT_INTERVAL,
	// CONSUMER_REBALANCE_TIMEOUT.
	Group GroupTiming
	// MaxPendingBytes bounds the bytes of the records a stage holds between
	// fetching and finishing them (waiting in a lane or for their due time,
	// or running), keys, values and headers plus a fixed overhead per record
	// (consumer.RecordOverhead). At the bound the stage stops fetching until
	// records finish; nothing is dropped. A record larger than the bound is
	// taken alone. The default, consumer.DefaultMaxPendingBytes, holds
	// MAX_PENDING (10,000) retries of about 3 KB: smaller, order-retry stops
	// fetching before it holds MAX_PENDING and starts the retries behind
	// late (bench case 6); the memory it bounds is case 8's.
	MaxPendingBytes Bytes `env:"MAX_PENDING_BYTES" envDefault:"32MiB"`

	// Telemetry is the tracing: the standard OTEL_* variables
	// (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL,
	// OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, OTEL_RESOURCE_ATTRIBUTES,
	// ...). Without an endpoint tracing is off (see package telemetry).
	Telemetry telemetry.Config
}

// Validate reports every invalid shared setting, each naming its variable
// and the accepted form, joined into one error (nil when all are valid).
// Which topics must differ depends on which one a stage reads, so that
// rule is the service's own.
func (s Stage) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if err := s.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := checkDatabaseURL(s.DatabaseURL); err != nil {
		errs = append(errs, err)
	}
	if s.FleetSize < 1 {
		add("REEFER_FLEET_SIZE=%d: want a whole number >= 1", s.FleetSize)
	}
	if u, err := url.Parse(s.InventoryURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("INVENTORY_URL %q: want an absolute http(s) URL such as http://localhost:8081", s.InventoryURL)
	}
	if s.ReleaseInterval <= 0 {
		add("RELEASE_INTERVAL=%s: want a positive duration such as 10s", s.ReleaseInterval)
	}
	if s.InventoryTimeout <= 0 {
		add("INVENTORY_TIMEOUT=%s: want a positive duration such as 2s", s.InventoryTimeout)
	}
	if s.InventorySlowCallFloor < 0 {
		add("INVENTORY_SLOW_CALL_FLOOR=%s: want 0s (off) or a positive duration such as 500ms", s.InventorySlowCallFloor)
	}
	if s.ReleaseRecheckAfter <= s.InventoryTimeout {
		add("RELEASE_RECHECK_AFTER=%s: want a duration above INVENTORY_TIMEOUT (%s), such as 1m: an allocation call can land that long after a release", s.ReleaseRecheckAfter, s.InventoryTimeout)
	}
	if s.LogFormat != "json" && s.LogFormat != "text" {
		add("LOG_FORMAT %q: want json or text", s.LogFormat)
	}
	for _, t := range []struct{ name, value string }{
		{"ORDERS_TOPIC", s.OrdersTopic}, {"CONTAINERS_TOPIC", s.ContainersTopic},
		{"RETRY_TOPIC", s.RetryTopic}, {"DLQ_TOPIC", s.DLQTopic},
	} {
		if err := CheckName(t.name, t.value); err != nil {
			errs = append(errs, err)
		}
	}
	if s.RetryMaxAttempts < 1 {
		add("RETRY_MAX_ATTEMPTS=%d: want a whole number >= 1", s.RetryMaxAttempts)
	}
	if s.RetryBaseDelay <= 0 {
		add("RETRY_BASE_DELAY=%s: want a positive duration such as 1s", s.RetryBaseDelay)
	}
	if s.RetryMaxDelay < s.RetryBaseDelay {
		add("RETRY_MAX_DELAY=%s: want a duration >= RETRY_BASE_DELAY (%s), such as 1m", s.RetryMaxDelay, s.RetryBaseDelay)
	}
	if _, err := backoff.ParseJitter(string(s.RetryJitter)); err != nil {
		add("RETRY_JITTER %q: want proportional, full, equal or decorrelated", s.RetryJitter)
	}
	if !(s.RetryJitterFraction > 0 && s.RetryJitterFraction <= 1) {
		add("RETRY_JITTER_FRACTION=%v: want a number in (0, 1] such as 0.1", s.RetryJitterFraction)
	}
	for _, v := range []struct {
		name  string
		value int
	}{{"MAX_MESSAGE_BYTES", s.MaxMessageBytes}, {"DLQ_MAX_MESSAGE_BYTES", s.DLQMaxMessageBytes}} {
		if v.value < minMessageBytes {
			add("%s=%d: want the topic's max.message.bytes, at least %d, such as 1048588", v.name, v.value, minMessageBytes)
		}
	}
	if s.ShutdownTimeout <= 0 {
		add("SHUTDOWN_TIMEOUT=%s: want a positive duration such as 20s", s.ShutdownTimeout)
	}
	if err := s.Group.Validate(); err != nil {
		errs = append(errs, err)
	}
	if s.MaxPendingBytes < 64<<10 {
		add("MAX_PENDING_BYTES=%s: want at least 64KiB, such as 16MiB", s.MaxPendingBytes)
	}
	if err := s.Telemetry.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// minMessageBytes is the smallest MAX_MESSAGE_BYTES accepted: a dead
// letter's headers alone take up to ~6 KiB.
const minMessageBytes = 16 << 10

// Topics lists every topic the stage writes to, for handoff.Metrics.Init.
func (s Stage) Topics() []string {
	return []string{s.OrdersTopic, s.ContainersTopic, s.RetryTopic, s.DLQTopic}
}

// Router is the stage's hand-off: the outcome events on the orders and
// containers topics (as source), failed records on the retry and
// dead-letter topics, with the stage's back-off, attempts and record
// sizes. w writes every topic but the dead-letter one, which dlq writes
// (see NewHandoffWriters); blockage may be nil.
func (s Stage) Router(w, dlq handoff.Writer, source string, blockage *handoff.Blockage) *orders.Router {
	return &orders.Router{
		Router: handoff.Router{
			Writer:           w,
			DeadLetterWriter: dlq,
			Topics:           handoff.Topics{Retry: s.RetryTopic, DeadLetter: s.DLQTopic},
			Policy:           s.BackoffPolicy(),
			MaxAttempts:      s.RetryMaxAttempts,
			MaxMessageBytes:  s.TopicMaxMessageBytes(),
			Blockage:         blockage,
		},
		OrdersTopic:     s.OrdersTopic,
		ContainersTopic: s.ContainersTopic,
		Source:          source,
	}
}

// TopicMaxMessageBytes is the max.message.bytes of every topic the stage
// writes to, for handoff.Router.MaxMessageBytes.
func (s Stage) TopicMaxMessageBytes() map[string]int {
	return map[string]int{
		s.OrdersTopic:     s.MaxMessageBytes,
		s.ContainersTopic: s.MaxMessageBytes,
		s.RetryTopic:      s.MaxMessageBytes,
		s.DLQTopic:        s.DLQMaxMessageBytes,
	}
}

// NewHandoffWriters returns the two writers of the hand-off: w for the
// orders, containers and retry topics, dlq for the dead-letter topic. The
// BatchBytes of each is its topics' max.message.bytes minus a record
// batch's overhead, so that neither ever sends a batch that its topic
// refuses as too large (one that would fail every record in it, however
// small; see retrymeta.RecordSize). Close both.
func (s Stage) NewHandoffWriters() (w, dlq *kafka.Writer, err error) {
	if w, err = s.Kafka.NewWriter(""); err != nil {
		return nil, nil, err
	}
	if dlq, err = s.Kafka.NewWriter(""); err != nil {
		_ = w.Close()
		return nil, nil, err
	}
	w.BatchBytes = int64(retrymeta.MaxRecordSize(s.MaxMessageBytes))
	dlq.BatchBytes = int64(retrymeta.MaxRecordSize(s.DLQMaxMessageBytes))
	return w, dlq, nil
}

// CheckName accepts a topic or consumer group name: not empty, no
// surrounding spaces (a space pasted into a manifest would otherwise name
// a different topic, silently).
func CheckName(variable, value string) error {
	if strings.TrimSpace(value) != value || value == "" {
		return fmt.Errorf("%s %q: want a non-empty name without spaces", variable, value)
	}
	return nil
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
	return fmt.Errorf("DATABASE_URL %q: %s", envconfig.RedactURL(s), forms)
}

// BackoffPolicy is the retry delay policy the RETRY_* settings describe.
// Call it on a validated Stage.
func (s Stage) BackoffPolicy() backoff.Policy {
	jitter, _ := backoff.ParseJitter(string(s.RetryJitter)) // Validate has checked it
	return backoff.Policy{
		Base:     s.RetryBaseDelay,
		Max:      s.RetryMaxDelay,
		Jitter:   jitter,
		Fraction: s.RetryJitterFraction,
	}
}

// NewLogger builds the service's logger from LOG_LEVEL and LOG_FORMAT.
// A line logged with a context that holds a span carries its trace_id
// and span_id.
func (s Stage) NewLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: s.LogLevel}
	if s.LogFormat == "text" {
		return slog.New(telemetry.LogHandler(slog.NewTextHandler(w, opts)))
	}
	return slog.New(telemetry.LogHandler(slog.NewJSONHandler(w, opts)))
}

// LogAttrs are the shared settings for the configuration line a service
// logs at start, with secrets masked: the database URL's password and the
// Kafka SASL password (kafkaclient.Config masks its own).
func (s Stage) LogAttrs() []slog.Attr {
	return []slog.Attr{
		slog.Any("kafka", s.Kafka),
		slog.String("database_url", envconfig.RedactURL(s.DatabaseURL)),
		slog.Int("fleet_size", s.FleetSize),
		slog.String("inventory_url", envconfig.RedactURL(s.InventoryURL)),
		slog.Duration("inventory_timeout", s.InventoryTimeout),
		slog.Duration("inventory_slow_call_floor", s.InventorySlowCallFloor),
		slog.String("log_level", s.LogLevel.String()),
		slog.String("log_format", s.LogFormat),
		slog.String("orders_topic", s.OrdersTopic),
		slog.String("containers_topic", s.ContainersTopic),
		slog.String("retry_topic", s.RetryTopic),
		slog.String("dlq_topic", s.DLQTopic),
		slog.Int("retry_max_attempts", s.RetryMaxAttempts),
		slog.Duration("retry_base_delay", s.RetryBaseDelay),
		slog.Duration("retry_max_delay", s.RetryMaxDelay),
		slog.String("retry_jitter", string(s.RetryJitter)),
		slog.Float64("retry_jitter_fraction", s.RetryJitterFraction),
		slog.Int("max_message_bytes", s.MaxMessageBytes),
		slog.Int("dlq_max_message_bytes", s.DLQMaxMessageBytes),
		slog.Duration("shutdown_timeout", s.ShutdownTimeout),
		slog.Duration("consumer_session_timeout", s.Group.SessionTimeout),
		slog.Duration("consumer_heartbeat_interval", s.Group.HeartbeatInterval),
		slog.Duration("consumer_rebalance_timeout", s.Group.RebalanceTimeout),
		slog.String("max_pending_bytes", s.MaxPendingBytes.String()),
		slog.Any("tracing", s.Telemetry),
	}
}
