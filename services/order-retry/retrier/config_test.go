package retrier_test

import (
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/pipeline/pipelinetest"
	"github.com/reeferdlq/reefer-dlq/services/order-retry/retrier"
)

func TestConfigFromEnvDefaults(t *testing.T) {
	cfg, err := retrier.ConfigFromEnv(pipelinetest.Getenv(map[string]string{"DATABASE_URL": "sqlite:/tmp/reefers.db"}))
	if err != nil {
		t.Fatal(err)
	}
	want := retrier.Config{
		Stage:         pipelinetest.DefaultStage("sqlite:/tmp/reefers.db"),
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
	env := pipelinetest.StageEnv()
	maps.Copy(env, map[string]string{
		"HTTP_ADDR":      "127.0.0.1:9000",
		"CONSUMER_GROUP": "g",
		"MAX_PENDING":    "500",
		"MAX_IN_FLIGHT":  "8",
		"MAX_DUE_AHEAD":  "15m",
	})
	cfg, err := retrier.ConfigFromEnv(pipelinetest.Getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	want := retrier.Config{
		Stage:         pipelinetest.StageFromEnv(),
		HTTPAddr:      "127.0.0.1:9000",
		ConsumerGroup: "g",
		MaxPending:    500,
		MaxInFlight:   8,
		MaxDueAhead:   15 * time.Minute,
	}
	if diff := cmp.Diff(want, cfg, cmpopts.IgnoreFields(kafkaclient.Config{}, "Dial")); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
}

// TestConfigFromEnvRejectsBadValues proves that each bad value stops the
// start with a message that names the variable and the accepted form:
// the shared variables' (pipelinetest.BadStageValues) and this service's.
func TestConfigFromEnvRejectsBadValues(t *testing.T) {
	pipelinetest.CheckRefused(t, retrier.ConfigFromEnv, map[string]string{"DATABASE_URL": "sqlite:/tmp/reefers.db"}, append(pipelinetest.BadStageValues(), []pipelinetest.BadValue{
		{Name: "in flight zero", Env: map[string]string{"MAX_IN_FLIGHT": "0"}, Want: []string{"MAX_IN_FLIGHT=0", ">= 1"}},
		{Name: "pending below in flight", Env: map[string]string{"MAX_PENDING": "10", "MAX_IN_FLIGHT": "20"}, Want: []string{"MAX_PENDING=10", ">= MAX_IN_FLIGHT (20)"}},
		{Name: "pending not a number", Env: map[string]string{"MAX_PENDING": "lots"}, Want: []string{`MAX_PENDING="lots"`, "a whole number"}},
		{Name: "due horizon within the longest delay", Env: map[string]string{"RETRY_MAX_DELAY": "1m", "MAX_DUE_AHEAD": "1m"},
			Want: []string{"MAX_DUE_AHEAD=1m0s", "above the longest retry delay, 1m6s"}},
		{Name: "retry topic is the dead-letter topic", Env: map[string]string{"DLQ_TOPIC": "order-retries"}, Want: []string{"RETRY_TOPIC and DLQ_TOPIC", "must differ"}},
		{Name: "retry topic is the orders topic", Env: map[string]string{"RETRY_TOPIC": "orders"}, Want: []string{"RETRY_TOPIC and ORDERS_TOPIC", "must differ"}},
		{Name: "topic with spaces", Env: map[string]string{"CONSUMER_GROUP": " g"}, Want: []string{`CONSUMER_GROUP " g"`, "without spaces"}},
		{Name: "kafka broker without port", Env: map[string]string{"KAFKA_BROKERS": "kafka"}, Want: []string{"KAFKA_BROKERS", "host:port"}},
		{Name: "every bad variable at once", Env: map[string]string{"MAX_IN_FLIGHT": "0", "LOG_FORMAT": "xml"}, Want: []string{"MAX_IN_FLIGHT=0", `LOG_FORMAT "xml"`}},
	}...))
}

// TestConfigLogValueMasksSecrets: the configuration is logged at start;
// the database and Kafka passwords must not be.
func TestConfigLogValueMasksSecrets(t *testing.T) {
	cfg, err := retrier.ConfigFromEnv(pipelinetest.Getenv(pipelinetest.SecretEnv()))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("starting", "config", cfg)
	pipelinetest.CheckMasked(t, b.String(), cfg.String(), fmt.Sprintf("%v", cfg))
}
