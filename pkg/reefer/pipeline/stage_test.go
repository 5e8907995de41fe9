package pipeline_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/backoff"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/envconfig"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/pipeline"
)

// service stands for a service's Config: the shared Stage embedded, plus
// a setting of its own.
type service struct {
	pipeline.Stage
	Own int `env:"OWN" envDefault:"7"`
}

func parse(t *testing.T, env map[string]string) service {
	t.Helper()
	if _, ok := env["DATABASE_URL"]; !ok {
		env["DATABASE_URL"] = "sqlite:/tmp/reefers.db"
	}
	cfg, err := envconfig.Parse[service](func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestEmbeddedStageReadsItsVariables(t *testing.T) {
	cfg := parse(t, map[string]string{"RETRY_TOPIC": "r", "REEFER_FLEET_SIZE": "9", "OWN": "3"})
	if cfg.RetryTopic != "r" || cfg.FleetSize != 9 || cfg.Own != 3 || cfg.OrdersTopic != "orders" {
		t.Errorf("got retry topic %q, fleet %d, own %d, orders topic %q", cfg.RetryTopic, cfg.FleetSize, cfg.Own, cfg.OrdersTopic)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("defaults rejected: %v", err)
	}
}

// TestValidateNamesEveryBadVariable: each message names the variable and
// the accepted form, and all problems come at once.
func TestValidateNamesEveryBadVariable(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"database url missing", map[string]string{"DATABASE_URL": ""}, []string{"DATABASE_URL is not set", "postgres://"}},
		{"database url scheme, password masked", map[string]string{"DATABASE_URL": "mysql://u:secret@x/db"},
			[]string{`DATABASE_URL "mysql://u:xxxxx@x/db"`, "sqlite:<path>"}},
		{"fleet size", map[string]string{"REEFER_FLEET_SIZE": "0"}, []string{"REEFER_FLEET_SIZE=0", ">= 1"}},
		{"inventory url", map[string]string{"INVENTORY_URL": "inventory:8081"}, []string{"INVENTORY_URL", "absolute http(s) URL"}},
		{"inventory timeout", map[string]string{"INVENTORY_TIMEOUT": "-1s"}, []string{"INVENTORY_TIMEOUT=-1s", "positive duration"}},
		{"release interval", map[string]string{"RELEASE_INTERVAL": "0s"}, []string{"RELEASE_INTERVAL=0s", "positive duration"}},
		{"release recheck", map[string]string{"RELEASE_RECHECK_AFTER": "2s"}, []string{"RELEASE_RECHECK_AFTER=2s", "above INVENTORY_TIMEOUT (2s)"}},
		{"log format", map[string]string{"LOG_FORMAT": "xml"}, []string{`LOG_FORMAT "xml"`, "json or text"}},
		{"topic", map[string]string{"CONTAINERS_TOPIC": "c "}, []string{`CONTAINERS_TOPIC "c "`, "without spaces"}},
		{"attempts", map[string]string{"RETRY_MAX_ATTEMPTS": "0"}, []string{"RETRY_MAX_ATTEMPTS=0", ">= 1"}},
		{"base delay", map[string]string{"RETRY_BASE_DELAY": "0s"}, []string{"RETRY_BASE_DELAY=0s", "positive duration"}},
		{"max delay", map[string]string{"RETRY_BASE_DELAY": "10s", "RETRY_MAX_DELAY": "1s"}, []string{"RETRY_MAX_DELAY=1s", ">= RETRY_BASE_DELAY (10s)"}},
		{"jitter", map[string]string{"RETRY_JITTER": "gaussian"}, []string{`RETRY_JITTER "gaussian"`, "proportional, full, equal or decorrelated"}},
		{"jitter fraction", map[string]string{"RETRY_JITTER_FRACTION": "0"}, []string{"RETRY_JITTER_FRACTION=0", "(0, 1]"}},
		{"shutdown timeout", map[string]string{"SHUTDOWN_TIMEOUT": "0s"}, []string{"SHUTDOWN_TIMEOUT=0s", "positive duration"}},
		{"kafka", map[string]string{"KAFKA_BROKERS": "kafka"}, []string{"KAFKA_BROKERS", "host:port"}},
		{"session timeout", map[string]string{"CONSUMER_SESSION_TIMEOUT": "1s"}, []string{"CONSUMER_SESSION_TIMEOUT=1s", "6s to 30m"}},
		{"heartbeat above a third of the session", map[string]string{"CONSUMER_HEARTBEAT_INTERVAL": "4s"}, []string{"CONSUMER_HEARTBEAT_INTERVAL=4s", "a third of CONSUMER_SESSION_TIMEOUT (10s)"}},
		{"heartbeat zero", map[string]string{"CONSUMER_HEARTBEAT_INTERVAL": "0s"}, []string{"CONSUMER_HEARTBEAT_INTERVAL=0s", "positive duration"}},
		{"rebalance timeout", map[string]string{"CONSUMER_REBALANCE_TIMEOUT": "0s"}, []string{"CONSUMER_REBALANCE_TIMEOUT=0s", "1s to 30m"}},
		{"pending bytes", map[string]string{"MAX_PENDING_BYTES": "1KiB"}, []string{"MAX_PENDING_BYTES=1KiB", "at least 64KiB"}},
		{"every problem at once", map[string]string{"LOG_FORMAT": "xml", "SHUTDOWN_TIMEOUT": "0s"}, []string{"LOG_FORMAT", "SHUTDOWN_TIMEOUT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := parse(t, tt.env).Validate()
			if err == nil {
				t.Fatal("Validate accepted the configuration")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestCheckName(t *testing.T) {
	for _, tt := range []struct {
		value string
		ok    bool
	}{{"orders", true}, {"", false}, {" orders", false}, {"orders\t", false}} {
		if err := pipeline.CheckName("ORDERS_TOPIC", tt.value); (err == nil) != tt.ok {
			t.Errorf("CheckName(%q) = %v, want ok=%v", tt.value, err, tt.ok)
		}
	}
}

func TestBackoffPolicyFollowsTheRetrySettings(t *testing.T) {
	cfg := parse(t, map[string]string{"RETRY_BASE_DELAY": "200ms", "RETRY_MAX_DELAY": "10s", "RETRY_JITTER": "full", "RETRY_JITTER_FRACTION": "0.5"})
	want := backoff.Policy{Base: 200 * time.Millisecond, Max: 10 * time.Second, Jitter: backoff.Full, Fraction: 0.5}
	if diff := cmp.Diff(want, cfg.BackoffPolicy()); diff != "" {
		t.Errorf("policy (-want +got):\n%s", diff)
	}
}

func TestNewLoggerFollowsLevelAndFormat(t *testing.T) {
	tests := []struct {
		format, level string
		wantPrefix    string
		wantDebug     bool
	}{
		{"json", "info", `{"time"`, false},
		{"text", "debug", "time=", true},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			var b bytes.Buffer
			log := parse(t, map[string]string{"LOG_FORMAT": tt.format, "LOG_LEVEL": tt.level}).NewLogger(&b)
			log.Debug("d")
			log.Info("i")
			if !strings.HasPrefix(b.String(), tt.wantPrefix) {
				t.Errorf("output %q does not start with %q", b.String(), tt.wantPrefix)
			}
			if got := strings.Contains(b.String(), `"d"`) || strings.Contains(b.String(), "msg=d"); got != tt.wantDebug {
				t.Errorf("debug line written = %v, want %v: %q", got, tt.wantDebug, b.String())
			}
		})
	}
}

func TestLogAttrsMaskSecrets(t *testing.T) {
	cfg := parse(t, map[string]string{
		"DATABASE_URL":         "postgres://reefer:db-secret@db:5432/reefers",
		"KAFKA_SASL_MECHANISM": "plain", "KAFKA_SASL_USERNAME": "svc", "KAFKA_SASL_PASSWORD": "kafka-secret",
	})
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("starting", attrsToArgs(cfg.LogAttrs())...)
	for _, secret := range []string{"db-secret", "kafka-secret"} {
		if strings.Contains(b.String(), secret) {
			t.Errorf("%q leaks in %s", secret, b.String())
		}
	}
	if !strings.Contains(b.String(), "reefer:xxxxx@db:5432") {
		t.Errorf("database URL not shown masked in %s", b.String())
	}
}

func attrsToArgs(attrs []slog.Attr) []any {
	args := make([]any, len(attrs))
	for i, a := range attrs {
		args[i] = a
	}
	return args
}

// The configuration line every service logs at start, and the error a bad
// DATABASE_URL gives, never show its password, whatever its form.
func TestDatabasePasswordIsNeverLoggedNorInAnError(t *testing.T) {
	tests := []struct{ url, password string }{
		{"postgres://u:pa%ss-w0rd@db/reefers", "pa%ss-w0rd"},
		{"postgres://u:pa#ss-w0rd@db/reefers", "pa#ss-w0rd"},
		{"postgres://u@db/reefers?password=qu3ry-secret", "qu3ry-secret"},
		{"host=db user=u password=kv-s3cret dbname=reefers", "kv-s3cret"},
		{"postgres://u:plain-s3cret@db/reefers", "plain-s3cret"},
	}
	for _, tt := range tests {
		cfg := parse(t, map[string]string{"DATABASE_URL": tt.url})
		var logs bytes.Buffer
		slog.New(slog.NewJSONHandler(&logs, nil)).Info("starting", slog.GroupAttrs("config", cfg.LogAttrs()...))
		if strings.Contains(logs.String(), tt.password) {
			t.Errorf("the start log shows the password of %q: %s", tt.url, logs.String())
		}
		if err := cfg.Validate(); err != nil && strings.Contains(err.Error(), tt.password) {
			t.Errorf("Validate shows the password of %q: %v", tt.url, err)
		}
	}
}

func TestGroupTimingDefaultsAndReaderConfig(t *testing.T) {
	cfg := parse(t, map[string]string{})
	want := pipeline.GroupTiming{SessionTimeout: 10 * time.Second, HeartbeatInterval: time.Second, RebalanceTimeout: 10 * time.Second}
	if diff := cmp.Diff(want, cfg.Group); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	rc := cfg.Group.ReaderConfig("g", "t")
	if rc.GroupID != "g" || rc.Topic != "t" || rc.SessionTimeout != want.SessionTimeout ||
		rc.HeartbeatInterval != want.HeartbeatInterval || rc.RebalanceTimeout != want.RebalanceTimeout {
		t.Errorf("ReaderConfig = %+v, want group g, topic t and the timing %+v", rc, want)
	}
}

func TestBytesReadsUnitsAndRejectsTheRest(t *testing.T) {
	for in, want := range map[string]pipeline.Bytes{
		"16MiB": 16 << 20, "512KiB": 512 << 10, "1GiB": 1 << 30, "65536": 65536, "100B": 100, " 2 MiB ": 2 << 20,
	} {
		var b pipeline.Bytes
		if err := b.UnmarshalText([]byte(in)); err != nil || b != want {
			t.Errorf("%q: got %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "16MB", "-1", "1.5MiB", "lots", "9999999999GiB"} {
		var b pipeline.Bytes
		if err := b.UnmarshalText([]byte(in)); err == nil || !strings.Contains(err.Error(), "16MiB") {
			t.Errorf("%q: got %d, %v; want an error naming the accepted form", in, b, err)
		}
	}
	if got := pipeline.Bytes(16 << 20).String(); got != "16MiB" {
		t.Errorf("String = %q, want 16MiB", got)
	}
}
