package manager

import (
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/pipeline/pipelinetest"
)

func TestConfigFromEnvDefaults(t *testing.T) {
	cfg, err := ConfigFromEnv(pipelinetest.Getenv(map[string]string{"DATABASE_URL": "sqlite:/tmp/reefers.db"}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Stage:         pipelinetest.DefaultStage("sqlite:/tmp/reefers.db"),
		HTTPAddr:      ":8080",
		ConsumerGroup: "reefer-manager",
		CommitMode:    CommitAfterHandoff,
		MaxInFlight:   256,
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
		"COMMIT_MODE":    "before-processing",
		"MAX_IN_FLIGHT":  "8",
	})
	cfg, err := ConfigFromEnv(pipelinetest.Getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Stage:         pipelinetest.StageFromEnv(),
		HTTPAddr:      "127.0.0.1:9000",
		ConsumerGroup: "g",
		CommitMode:    CommitBeforeProcessing,
		MaxInFlight:   8,
	}
	if diff := cmp.Diff(want, cfg, cmpopts.IgnoreFields(kafkaclient.Config{}, "Dial")); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
}

// TestConfigFromEnvRejectsBadValues proves that each bad value stops the
// start with a message that names the variable and the accepted form:
// the shared variables' (pipelinetest.BadStageValues) and this service's.
func TestConfigFromEnvRejectsBadValues(t *testing.T) {
	pipelinetest.CheckRefused(t, ConfigFromEnv, map[string]string{"DATABASE_URL": "sqlite:reefers.db"}, append(pipelinetest.BadStageValues(), []pipelinetest.BadValue{
		{Name: "database url scheme", Env: map[string]string{"DATABASE_URL": "mysql://x"}, Want: []string{"DATABASE_URL", "sqlite:<path>"}},
		{Name: "commit mode unknown", Env: map[string]string{"COMMIT_MODE": "never"}, Want: []string{`COMMIT_MODE "never"`, "after-handoff or before-processing"}},
		{Name: "in flight zero", Env: map[string]string{"MAX_IN_FLIGHT": "0"}, Want: []string{"MAX_IN_FLIGHT=0"}},
		{Name: "retry topic equals orders", Env: map[string]string{"RETRY_TOPIC": "orders"}, Want: []string{"RETRY_TOPIC and DLQ_TOPIC must differ"}},
		{Name: "topic with spaces", Env: map[string]string{"DLQ_TOPIC": " dlq"}, Want: []string{`DLQ_TOPIC " dlq"`}},
		{Name: "broker not host:port", Env: map[string]string{"KAFKA_BROKERS": "kafka"}, Want: []string{"KAFKA_BROKERS", "host:port"}},
		{Name: "shutdown timeout zero", Env: map[string]string{"SHUTDOWN_TIMEOUT": "0s"}, Want: []string{"SHUTDOWN_TIMEOUT=0s"}},
		{Name: "every problem at once", Env: map[string]string{"MAX_IN_FLIGHT": "0", "COMMIT_MODE": "x"}, Want: []string{"MAX_IN_FLIGHT=0", `COMMIT_MODE "x"`}},
	}...))
}

// TestConfigLogValueMasksSecrets: the configuration is logged at start;
// the database and Kafka passwords must not be.
func TestConfigLogValueMasksSecrets(t *testing.T) {
	cfg, err := ConfigFromEnv(pipelinetest.Getenv(pipelinetest.SecretEnv()))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("starting", "config", cfg)
	pipelinetest.CheckMasked(t, b.String(), cfg.String(), fmt.Sprintf("%v", cfg))
}
