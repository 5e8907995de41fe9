// Package pipelinetest holds what the configuration tests of both
// pipeline services check alike: the shared variables' defaults, one
// value of each, and the bad values every service must refuse. Each
// service runs them through its own ConfigFromEnv, so that both still
// prove they read every shared variable. Tests only.
package pipelinetest

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/backoff"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/telemetry"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/pipeline"
)

// Getenv serves a map as an environment.
func Getenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// DefaultStage is the Stage of an environment that sets DATABASE_URL to
// databaseURL and nothing else: the documented defaults.
func DefaultStage(databaseURL string) pipeline.Stage {
	return pipeline.Stage{
		Kafka:                  kafkaclient.Config{Brokers: []string{"localhost:9092"}},
		DatabaseURL:            databaseURL,
		FleetSize:              1000,
		InventoryURL:           "http://localhost:8081",
		InventoryTimeout:       2 * time.Second,
		InventorySlowCallFloor: 500 * time.Millisecond,
		ReleaseInterval:        10 * time.Second,
		ReleaseRecheckAfter:    time.Minute,
		LogLevel:               slog.LevelInfo,
		LogFormat:              "json",
		OrdersTopic:            "orders",
		ContainersTopic:        "containers",
		RetryTopic:             "order-retries",
		DLQTopic:               "order-dead-letter",
		RetryMaxAttempts:       5,
		RetryBaseDelay:         time.Second,
		RetryMaxDelay:          time.Minute,
		RetryJitter:            backoff.Proportional,
		RetryJitterFraction:    0.1,
		MaxMessageBytes:        1048588,
		DLQMaxMessageBytes:     1048588,
		ShutdownTimeout:        20 * time.Second,
		Group: pipeline.GroupTiming{
			SessionTimeout: 10 * time.Second, HeartbeatInterval: time.Second, RebalanceTimeout: 10 * time.Second,
		},
		MaxPendingBytes: 32 << 20,
		Telemetry:       telemetry.DefaultConfig(),
	}
}

// StageEnv sets every shared variable but the Kafka security ones to a
// value other than its default; StageFromEnv is the Stage it must give.
func StageEnv() map[string]string {
	return map[string]string{
		"KAFKA_BROKERS":                      "k1:9092,k2:9093",
		"DATABASE_URL":                       "postgres://reefer:secret@db:5432/reefers",
		"REEFER_FLEET_SIZE":                  "50",
		"INVENTORY_URL":                      "http://inventory:8081",
		"INVENTORY_TIMEOUT":                  "750ms",
		"INVENTORY_SLOW_CALL_FLOOR":          "100ms",
		"RELEASE_INTERVAL":                   "3s",
		"RELEASE_RECHECK_AFTER":              "20s",
		"LOG_LEVEL":                          "debug",
		"LOG_FORMAT":                         "text",
		"ORDERS_TOPIC":                       "o",
		"CONTAINERS_TOPIC":                   "c",
		"RETRY_TOPIC":                        "r",
		"DLQ_TOPIC":                          "d",
		"RETRY_MAX_ATTEMPTS":                 "3",
		"RETRY_BASE_DELAY":                   "200ms",
		"RETRY_MAX_DELAY":                    "10s",
		"RETRY_JITTER":                       "decorrelated",
		"RETRY_JITTER_FRACTION":              "0.25",
		"MAX_MESSAGE_BYTES":                  "65536",
		"DLQ_MAX_MESSAGE_BYTES":              "131072",
		"SHUTDOWN_TIMEOUT":                   "3s",
		"CONSUMER_SESSION_TIMEOUT":           "12s",
		"CONSUMER_HEARTBEAT_INTERVAL":        "2s",
		"CONSUMER_REBALANCE_TIMEOUT":         "20s",
		"MAX_PENDING_BYTES":                  "4MiB",
		"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://collector:4318",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/custom/traces",
		"OTEL_EXPORTER_OTLP_PROTOCOL":        "grpc",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
		"OTEL_SERVICE_NAME":                  "svc",
		"OTEL_RESOURCE_ATTRIBUTES":           "team=reefer",
		"OTEL_TRACES_SAMPLER":                "parentbased_traceidratio",
		"OTEL_TRACES_SAMPLER_ARG":            "0.25",
		"OTEL_TRACES_EXPORTER":               "none",
		"OTEL_SDK_DISABLED":                  "true",
	}
}

// StageFromEnv is the Stage that StageEnv must give.
func StageFromEnv() pipeline.Stage {
	return pipeline.Stage{
		Kafka:                  kafkaclient.Config{Brokers: []string{"k1:9092", "k2:9093"}},
		DatabaseURL:            "postgres://reefer:secret@db:5432/reefers",
		FleetSize:              50,
		InventoryURL:           "http://inventory:8081",
		InventoryTimeout:       750 * time.Millisecond,
		InventorySlowCallFloor: 100 * time.Millisecond,
		ReleaseInterval:        3 * time.Second,
		ReleaseRecheckAfter:    20 * time.Second,
		LogLevel:               slog.LevelDebug,
		LogFormat:              "text",
		OrdersTopic:            "o",
		ContainersTopic:        "c",
		RetryTopic:             "r",
		DLQTopic:               "d",
		RetryMaxAttempts:       3,
		RetryBaseDelay:         200 * time.Millisecond,
		RetryMaxDelay:          10 * time.Second,
		RetryJitter:            backoff.Decorrelated,
		RetryJitterFraction:    0.25,
		MaxMessageBytes:        65536,
		DLQMaxMessageBytes:     131072,
		ShutdownTimeout:        3 * time.Second,
		Group: pipeline.GroupTiming{
			SessionTimeout: 12 * time.Second, HeartbeatInterval: 2 * time.Second, RebalanceTimeout: 20 * time.Second,
		},
		MaxPendingBytes: 4 << 20,
		Telemetry: telemetry.Config{
			Endpoint: "http://collector:4318", TracesEndpoint: "http://collector:4318/custom/traces",
			Protocol: "grpc", TracesProtocol: "http/protobuf", ServiceName: "svc", ResourceAttributes: "team=reefer",
			Sampler: "parentbased_traceidratio", SamplerArg: "0.25", Exporter: "none", Disabled: true,
		},
	}
}

// BadValue is one environment a service must refuse, and what its error
// must say: the variable and the accepted form.
type BadValue struct {
	Name string
	Env  map[string]string
	Want []string // substrings of the error
}

// BadStageValues are the bad values of the shared variables.
func BadStageValues() []BadValue {
	return []BadValue{
		{Name: "database url missing", Env: map[string]string{"DATABASE_URL": ""}, Want: []string{"DATABASE_URL is not set", "postgres://"}},
		{Name: "duration not parsable", Env: map[string]string{"RETRY_BASE_DELAY": "soon"}, Want: []string{`RETRY_BASE_DELAY="soon"`, "a duration such as"}},
		{Name: "timeout not positive", Env: map[string]string{"INVENTORY_TIMEOUT": "-1s"}, Want: []string{"INVENTORY_TIMEOUT=-1s", "positive duration"}},
		{Name: "slow-call floor negative", Env: map[string]string{"INVENTORY_SLOW_CALL_FLOOR": "-1s"}, Want: []string{"INVENTORY_SLOW_CALL_FLOOR=-1s", "0s (off) or a positive duration"}},
		{Name: "attempts not a number", Env: map[string]string{"RETRY_MAX_ATTEMPTS": "five"}, Want: []string{`RETRY_MAX_ATTEMPTS="five"`, "a whole number"}},
		{Name: "attempts zero", Env: map[string]string{"RETRY_MAX_ATTEMPTS": "0"}, Want: []string{"RETRY_MAX_ATTEMPTS=0", ">= 1"}},
		{Name: "max delay below base", Env: map[string]string{"RETRY_BASE_DELAY": "10s", "RETRY_MAX_DELAY": "1s"}, Want: []string{"RETRY_MAX_DELAY=1s", ">= RETRY_BASE_DELAY"}},
		{Name: "jitter unknown", Env: map[string]string{"RETRY_JITTER": "gaussian"}, Want: []string{`RETRY_JITTER "gaussian"`, "proportional, full, equal or decorrelated"}},
		{Name: "jitter fraction above one", Env: map[string]string{"RETRY_JITTER_FRACTION": "1.5"}, Want: []string{"RETRY_JITTER_FRACTION=1.5", "(0, 1]"}},
		{Name: "jitter fraction not a number", Env: map[string]string{"RETRY_JITTER_FRACTION": "ten"}, Want: []string{`RETRY_JITTER_FRACTION="ten"`, "a number"}},
		{Name: "fleet size negative", Env: map[string]string{"REEFER_FLEET_SIZE": "-3"}, Want: []string{"REEFER_FLEET_SIZE=-3"}},
		{Name: "log level unknown", Env: map[string]string{"LOG_LEVEL": "loud"}, Want: []string{`LOG_LEVEL="loud"`, "debug, info, warn or error"}},
		{Name: "log format unknown", Env: map[string]string{"LOG_FORMAT": "xml"}, Want: []string{`LOG_FORMAT "xml"`, "json or text"}},
		{Name: "http addr without port", Env: map[string]string{"HTTP_ADDR": "localhost"}, Want: []string{`HTTP_ADDR "localhost"`, "[host]:port"}},
		{Name: "inventory url relative", Env: map[string]string{"INVENTORY_URL": "inventory:8081"}, Want: []string{"INVENTORY_URL", "absolute http(s) URL"}},
		{Name: "session timeout below the broker's minimum", Env: map[string]string{"CONSUMER_SESSION_TIMEOUT": "1s"}, Want: []string{"CONSUMER_SESSION_TIMEOUT=1s", "6s to 30m"}},
		{Name: "heartbeat too slow for the session", Env: map[string]string{"CONSUMER_HEARTBEAT_INTERVAL": "5s"}, Want: []string{"CONSUMER_HEARTBEAT_INTERVAL=5s", "a third of CONSUMER_SESSION_TIMEOUT"}},
		{Name: "rebalance timeout not a duration", Env: map[string]string{"CONSUMER_REBALANCE_TIMEOUT": "soon"}, Want: []string{`CONSUMER_REBALANCE_TIMEOUT="soon"`}},
		{Name: "pending bytes unit unknown", Env: map[string]string{"MAX_PENDING_BYTES": "16MB"}, Want: []string{"MAX_PENDING_BYTES", "16MiB"}},
		{Name: "otlp endpoint without scheme", Env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, Want: []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4318"}},
		{Name: "otlp protocol unknown", Env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, Want: []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf or grpc"}},
		{Name: "sampler unknown", Env: map[string]string{"OTEL_TRACES_SAMPLER": "sometimes"}, Want: []string{"OTEL_TRACES_SAMPLER"}},
		{Name: "sampler ratio above 1", Env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, Want: []string{"OTEL_TRACES_SAMPLER_ARG"}},
	}
}

// CheckRefused runs each case through fromEnv, on top of base, and fails
// the test for every case it accepts or whose error does not say what
// the case wants.
func CheckRefused[C any](t *testing.T, fromEnv func(func(string) string) (C, error), base map[string]string, cases []BadValue) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.Env {
				env[k] = v
			}
			_, err := fromEnv(Getenv(env))
			if err == nil {
				t.Fatal("ConfigFromEnv accepted the configuration")
			}
			for _, w := range tt.Want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// CheckMasked fails the test when any of outs (the logged or printed
// configuration) shows the database or Kafka password of SecretEnv, or
// does not show the database URL redacted.
func CheckMasked(t *testing.T, outs ...string) {
	t.Helper()
	for _, out := range outs {
		for _, secret := range []string{"db-secret", "kafka-secret"} {
			if strings.Contains(out, secret) {
				t.Errorf("secret %q printed: %s", secret, out)
			}
		}
		if !strings.Contains(out, "reefer:xxxxx@db:5432") {
			t.Errorf("database URL not shown redacted: %s", out)
		}
	}
}

// SecretEnv is an environment with a database and a Kafka password.
func SecretEnv() map[string]string {
	return map[string]string{
		"DATABASE_URL":         "postgres://reefer:db-secret@db:5432/reefers",
		"KAFKA_SASL_MECHANISM": "plain",
		"KAFKA_SASL_USERNAME":  "svc",
		"KAFKA_SASL_PASSWORD":  "kafka-secret",
		"KAFKA_TLS":            "true",
	}
}
