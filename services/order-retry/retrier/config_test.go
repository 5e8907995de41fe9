package retrier_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/backoff"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/pipeline"
	"github.com/reeferdlq/reefer-dlq/services/order-retry/retrier"
)

// getenv serves a map as an environment.
func getenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigFromEnvDefaults(t *testing.T) {
	cfg, err := retrier.ConfigFromEnv(getenv(map[string]string{"DATABASE_URL": "sqlite:/tmp/reefers.db"}))
	if err != nil {
		t.Fatal(err)
	}
	want := retrier.Config{
		Stage: pipeline.Stage{
			Kafka:               kafkaclient.Config{Brokers: []string{"localhost:9092"}},
			DatabaseURL:         "sqlite:/tmp/reefers.db",
			FleetSize:           1000,
			InventoryURL:        "http://localhost:8081",
			InventoryTimeout:    2 * time.Second,
			LogLevel:            slog.LevelInfo,
			LogFormat:           "json",
			OrdersTopic:         "orders",
			ContainersTopic:     "containers",
			RetryTopic:          "order-retries",
			DLQTopic:            "order-dead-letter",
			RetryMaxAttempts:    5,
			RetryBaseDelay:      time.Second,
			RetryMaxDelay:       time.Minute,
			RetryJitter:         backoff.Proportional,
			RetryJitterFraction: 0.1,
			MaxMessageBytes:     1048588,
			DLQMaxMessageBytes:  1048588,
			ShutdownTimeout:     20 * time.Second,
			Group: pipeline.GroupTiming{
				SessionTimeout: 10 * time.Second, HeartbeatInterval: time.Second, RebalanceTimeout: 10 * time.Second,
			},
			MaxPendingBytes: 8 << 20,
		},
		HTTPAddr:      ":8082",
		ConsumerGroup: "order-retry",
		MaxPending:    10000,
		MaxInFlight:   64,
		MaxDueAhead:   time.Hour,
	}
	if diff := cmp.Diff(want, cfg, cmpopts.IgnoreFields(kafkaclient.Config{}, "Dial")); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestConfigFromEnvReadsEveryVariable(t *testing.T) {
	cfg, err := retrier.ConfigFromEnv(getenv(map[string]string{
		"KAFKA_BROKERS":               "k1:9092,k2:9093",
		"DATABASE_URL":                "postgres://reefer:secret@db:5432/reefers",
		"REEFER_FLEET_SIZE":           "50",
		"INVENTORY_URL":               "http://inventory:8081",
		"INVENTORY_TIMEOUT":           "750ms",
		"HTTP_ADDR":                   "127.0.0.1:9000",
		"LOG_LEVEL":                   "debug",
		"LOG_FORMAT":                  "text",
		"ORDERS_TOPIC":                "o",
		"CONTAINERS_TOPIC":            "c",
		"RETRY_TOPIC":                 "r",
		"DLQ_TOPIC":                   "d",
		"CONSUMER_GROUP":              "g",
		"CONSUMER_SESSION_TIMEOUT":    "12s",
		"CONSUMER_HEARTBEAT_INTERVAL": "2s",
		"CONSUMER_REBALANCE_TIMEOUT":  "20s",
		"MAX_PENDING_BYTES":           "4MiB",
		"RETRY_MAX_ATTEMPTS":          "3",
		"RETRY_BASE_DELAY":            "200ms",
		"RETRY_MAX_DELAY":             "10s",
		"RETRY_JITTER":                "decorrelated",
		"RETRY_JITTER_FRACTION":       "0.25",
		"MAX_PENDING":                 "500",
		"MAX_IN_FLIGHT":               "8",
		"MAX_DUE_AHEAD":               "15m",
		"SHUTDOWN_TIMEOUT":            "3s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := []any{cfg.Kafka.Brokers, cfg.DatabaseURL, cfg.FleetSize, cfg.InventoryURL, cfg.InventoryTimeout,
		cfg.HTTPAddr, cfg.LogLevel, cfg.LogFormat, cfg.OrdersTopic, cfg.ContainersTopic, cfg.RetryTopic,
		cfg.DLQTopic, cfg.ConsumerGroup, cfg.Group.SessionTimeout, cfg.RetryMaxAttempts, cfg.RetryBaseDelay,
		cfg.RetryMaxDelay, cfg.RetryJitter, cfg.RetryJitterFraction, cfg.MaxPending, cfg.MaxInFlight,
		cfg.MaxDueAhead, cfg.ShutdownTimeout, cfg.Group, cfg.MaxPendingBytes}
	want := []any{[]string{"k1:9092", "k2:9093"}, "postgres://reefer:secret@db:5432/reefers", 50,
		"http://inventory:8081", 750 * time.Millisecond, "127.0.0.1:9000", slog.LevelDebug, "text", "o", "c", "r",
		"d", "g", 12 * time.Second, 3, 200 * time.Millisecond, 10 * time.Second, backoff.Decorrelated, 0.25,
		500, 8, 15 * time.Minute, 3 * time.Second,
		pipeline.GroupTiming{SessionTimeout: 12 * time.Second, HeartbeatInterval: 2 * time.Second, RebalanceTimeout: 20 * time.Second},
		pipeline.Bytes(4 << 20)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
}

// TestConfigFromEnvRejectsBadValues proves that each bad value stops the
// start with a message that names the variable and the accepted form.
func TestConfigFromEnvRejectsBadValues(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"database url missing", map[string]string{"DATABASE_URL": ""}, []string{"DATABASE_URL is not set", "postgres://"}},
		{"duration not parsable", map[string]string{"RETRY_BASE_DELAY": "soon"}, []string{`RETRY_BASE_DELAY="soon"`, "a duration such as"}},
		{"timeout not positive", map[string]string{"INVENTORY_TIMEOUT": "-1s"}, []string{"INVENTORY_TIMEOUT=-1s", "positive duration"}},
		{"attempts not a number", map[string]string{"RETRY_MAX_ATTEMPTS": "five"}, []string{`RETRY_MAX_ATTEMPTS="five"`, "a whole number"}},
		{"attempts zero", map[string]string{"RETRY_MAX_ATTEMPTS": "0"}, []string{"RETRY_MAX_ATTEMPTS=0", ">= 1"}},
		{"max delay below base", map[string]string{"RETRY_BASE_DELAY": "10s", "RETRY_MAX_DELAY": "1s"}, []string{"RETRY_MAX_DELAY=1s", ">= RETRY_BASE_DELAY"}},
		{"jitter unknown", map[string]string{"RETRY_JITTER": "gaussian"}, []string{`RETRY_JITTER "gaussian"`, "proportional, full, equal or decorrelated"}},
		{"jitter fraction above one", map[string]string{"RETRY_JITTER_FRACTION": "1.5"}, []string{"RETRY_JITTER_FRACTION=1.5", "(0, 1]"}},
		{"jitter fraction not a number", map[string]string{"RETRY_JITTER_FRACTION": "ten"}, []string{`RETRY_JITTER_FRACTION="ten"`, "a number"}},
		{"in flight zero", map[string]string{"MAX_IN_FLIGHT": "0"}, []string{"MAX_IN_FLIGHT=0", ">= 1"}},
		{"pending below in flight", map[string]string{"MAX_PENDING": "10", "MAX_IN_FLIGHT": "20"}, []string{"MAX_PENDING=10", ">= MAX_IN_FLIGHT (20)"}},
		{"pending not a number", map[string]string{"MAX_PENDING": "lots"}, []string{`MAX_PENDING="lots"`, "a whole number"}},
		{"due horizon within the longest delay", map[string]string{"RETRY_MAX_DELAY": "1m", "MAX_DUE_AHEAD": "1m"},
			[]string{"MAX_DUE_AHEAD=1m0s", "above the longest retry delay, 1m6s"}},
		{"session timeout below the broker's minimum", map[string]string{"CONSUMER_SESSION_TIMEOUT": "1s"}, []string{"CONSUMER_SESSION_TIMEOUT=1s", "6s to 30m"}},
		{"heartbeat too slow for the session", map[string]string{"CONSUMER_HEARTBEAT_INTERVAL": "5s"}, []string{"CONSUMER_HEARTBEAT_INTERVAL=5s", "a third of CONSUMER_SESSION_TIMEOUT"}},
		{"rebalance timeout not a duration", map[string]string{"CONSUMER_REBALANCE_TIMEOUT": "soon"}, []string{`CONSUMER_REBALANCE_TIMEOUT="soon"`}},
		{"pending bytes unit unknown", map[string]string{"MAX_PENDING_BYTES": "16MB"}, []string{"MAX_PENDING_BYTES", "16MiB"}},
		{"fleet size negative", map[string]string{"REEFER_FLEET_SIZE": "-3"}, []string{"REEFER_FLEET_SIZE=-3"}},
		{"log level unknown", map[string]string{"LOG_LEVEL": "loud"}, []string{`LOG_LEVEL="loud"`, "debug, info, warn or error"}},
		{"log format unknown", map[string]string{"LOG_FORMAT": "xml"}, []string{`LOG_FORMAT "xml"`, "json or text"}},
		{"http addr without port", map[string]string{"HTTP_ADDR": "localhost"}, []string{`HTTP_ADDR "localhost"`, "[host]:port"}},
		{"inventory url relative", map[string]string{"INVENTORY_URL": "inventory:8081"}, []string{"INVENTORY_URL", "absolute http(s) URL"}},
		{"retry topic is the dead-letter topic", map[string]string{"DLQ_TOPIC": "order-retries"}, []string{"RETRY_TOPIC and DLQ_TOPIC", "must differ"}},
		{"retry topic is the orders topic", map[string]string{"RETRY_TOPIC": "orders"}, []string{"RETRY_TOPIC and ORDERS_TOPIC", "must differ"}},
		{"topic with spaces", map[string]string{"CONSUMER_GROUP": " g"}, []string{`CONSUMER_GROUP " g"`, "without spaces"}},
		{"kafka broker without port", map[string]string{"KAFKA_BROKERS": "kafka"}, []string{"KAFKA_BROKERS", "host:port"}},
		{"every bad variable at once", map[string]string{"MAX_IN_FLIGHT": "0", "LOG_FORMAT": "xml"}, []string{"MAX_IN_FLIGHT=0", `LOG_FORMAT "xml"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"DATABASE_URL": "sqlite:/tmp/reefers.db"}
			for k, v := range tt.env {
				env[k] = v
			}
			_, err := retrier.ConfigFromEnv(getenv(env))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestConfigLogValueMasksSecrets: the configuration is logged at start;
// the database and Kafka passwords must not be.
func TestConfigLogValueMasksSecrets(t *testing.T) {
	cfg, err := retrier.ConfigFromEnv(getenv(map[string]string{
		"DATABASE_URL":         "postgres://reefer:db-secret@db:5432/reefers",
		"KAFKA_SASL_MECHANISM": "plain",
		"KAFKA_SASL_USERNAME":  "svc",
		"KAFKA_SASL_PASSWORD":  "kafka-secret",
		"KAFKA_TLS":            "true",
	}))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("starting", "config", cfg)
	for _, out := range []string{b.String(), cfg.String()} {
		for _, secret := range []string{"db-secret", "kafka-secret"} {
			if strings.Contains(out, secret) {
				t.Errorf("%q leaks in %s", secret, out)
			}
		}
		if !strings.Contains(out, "reefer:xxxxx@db:5432") {
			t.Errorf("database URL not shown masked in %s", out)
		}
	}
}
