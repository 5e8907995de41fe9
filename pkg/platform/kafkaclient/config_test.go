package kafkaclient_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/caarlos0/env/v11"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/pkg/testkit/testcert"
)

func TestValidateNamesTheVariableAndTheAcceptedForm(t *testing.T) {
	certs := testcert.New(t, "localhost")
	valid := kafkaclient.Config{Brokers: []string{"localhost:9092"}}
	tests := []struct {
		name   string
		change func(*kafkaclient.Config)
		want   []string // substrings of the error; none means valid
	}{
		{name: "minimal config is valid", change: func(*kafkaclient.Config) {}},
		{
			name: "full TLS and SCRAM config is valid",
			change: func(c *kafkaclient.Config) {
				c.Brokers = []string{"kafka-1.internal:9093", "[::1]:9093"}
				c.TLS = kafkaclient.TLSConfig{Enabled: true, CAFile: certs.CAFile, CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile}
				c.SASL = kafkaclient.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "u", Password: "p"}
			},
		},
		{
			name:   "no brokers",
			change: func(c *kafkaclient.Config) { c.Brokers = nil },
			want:   []string{"KAFKA_BROKERS is empty", "host:port"},
		},
		{
			name:   "broker without port",
			change: func(c *kafkaclient.Config) { c.Brokers = []string{"localhost"} },
			want:   []string{`KAFKA_BROKERS entry "localhost"`, "want host:port"},
		},
		{
			name:   "broker with a port that is not a number",
			change: func(c *kafkaclient.Config) { c.Brokers = []string{"localhost:kafka"} },
			want:   []string{`KAFKA_BROKERS entry "localhost:kafka"`, "1-65535"},
		},
		{
			name:   "broker with port 0",
			change: func(c *kafkaclient.Config) { c.Brokers = []string{"localhost:0"} },
			want:   []string{`KAFKA_BROKERS entry "localhost:0"`, "1-65535"},
		},
		{
			name:   "broker without host",
			change: func(c *kafkaclient.Config) { c.Brokers = []string{":9092"} },
			want:   []string{`KAFKA_BROKERS entry ":9092"`, "empty host"},
		},
		{
			name:   "CA file while TLS is off",
			change: func(c *kafkaclient.Config) { c.TLS.CAFile = "ca.pem" },
			want:   []string{"KAFKA_TLS_CA_FILE is set but KAFKA_TLS is not true"},
		},
		{
			name:   "skip verify while TLS is off",
			change: func(c *kafkaclient.Config) { c.TLS.InsecureSkipVerify = true },
			want:   []string{"KAFKA_TLS_INSECURE_SKIP_VERIFY is set but KAFKA_TLS is not true"},
		},
		{
			name:   "client certificate without key",
			change: func(c *kafkaclient.Config) { c.TLS = kafkaclient.TLSConfig{Enabled: true, CertFile: "c.pem"} },
			want:   []string{"KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE: set both"},
		},
		{
			name: "unknown SASL mechanism",
			change: func(c *kafkaclient.Config) {
				c.SASL = kafkaclient.SASLConfig{Mechanism: "gssapi", Username: "u", Password: "p"}
			},
			want: []string{`KAFKA_SASL_MECHANISM "gssapi" is not supported`, "plain, scram-sha-256 or scram-sha-512"},
		},
		{
			name:   "SASL without credentials",
			change: func(c *kafkaclient.Config) { c.SASL.Mechanism = "plain" },
			want:   []string{"KAFKA_SASL_USERNAME is empty", "KAFKA_SASL_PASSWORD is empty"},
		},
		{
			name:   "credentials without a mechanism",
			change: func(c *kafkaclient.Config) { c.SASL = kafkaclient.SASLConfig{Username: "u", Password: "p"} },
			want:   []string{"KAFKA_SASL_MECHANISM is empty"},
		},
		{
			name: "every problem is reported at once",
			change: func(c *kafkaclient.Config) {
				c.Brokers = []string{"nohost"}
				c.SASL.Mechanism = "md5"
			},
			want: []string{"KAFKA_BROKERS", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.change(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestConfigReadsTheContractEnvironment(t *testing.T) {
	certs := testcert.New(t, "localhost")
	tests := []struct {
		name string
		env  map[string]string
		want kafkaclient.Config
	}{
		{
			name: "defaults",
			env:  map[string]string{},
			want: kafkaclient.Config{Brokers: []string{"localhost:9092"}},
		},
		{
			name: "every variable",
			env: map[string]string{
				"KAFKA_BROKERS":                  "k1:9092,k2:9092",
				"KAFKA_CLIENT_ID":                "reefer-manager",
				"KAFKA_TLS":                      "true",
				"KAFKA_TLS_CA_FILE":              certs.CAFile,
				"KAFKA_TLS_CERT_FILE":            certs.ClientCertFile,
				"KAFKA_TLS_KEY_FILE":             certs.ClientKeyFile,
				"KAFKA_TLS_INSECURE_SKIP_VERIFY": "false",
				"KAFKA_SASL_MECHANISM":           "scram-sha-256",
				"KAFKA_SASL_USERNAME":            "svc",
				"KAFKA_SASL_PASSWORD":            "s3cret",
			},
			want: kafkaclient.Config{
				Brokers:  []string{"k1:9092", "k2:9092"},
				ClientID: "reefer-manager",
				TLS: kafkaclient.TLSConfig{
					Enabled: true, CAFile: certs.CAFile,
					CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile,
				},
				SASL: kafkaclient.SASLConfig{Mechanism: "scram-sha-256", Username: "svc", Password: "s3cret"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got kafkaclient.Config
			if err := env.ParseWithOptions(&got, env.Options{Environment: tt.env}); err != nil {
				t.Fatalf("parse env: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(kafkaclient.Config{}, "Dial")); diff != "" {
				t.Errorf("config from env (-want +got):\n%s", diff)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestPasswordIsNeverPrinted(t *testing.T) {
	const password = "hunter2-very-secret"
	cfg := kafkaclient.Config{
		Brokers: []string{"localhost:9092"},
		SASL:    kafkaclient.SASLConfig{Mechanism: "plain", Username: "svc", Password: password},
	}
	var jsonLog, textLog bytes.Buffer
	slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("start", "kafka", cfg)
	slog.New(slog.NewTextHandler(&textLog, nil)).Info("start", "kafka", cfg, "sasl", cfg.SASL)

	outputs := map[string]string{
		"%v":        fmt.Sprintf("%v", cfg),
		"%+v":       fmt.Sprintf("%+v", cfg),
		"%#v":       fmt.Sprintf("%#v", cfg),
		"%v sasl":   fmt.Sprintf("%v", cfg.SASL),
		"%+v sasl":  fmt.Sprintf("%+v", cfg.SASL),
		"%#v sasl":  fmt.Sprintf("%#v", cfg.SASL),
		"slog json": jsonLog.String(),
		"slog text": textLog.String(),
	}
	for name, out := range outputs {
		if strings.Contains(out, password) {
			t.Errorf("%s output leaks the password: %s", name, out)
		}
		if !strings.Contains(out, "***") {
			t.Errorf("%s output does not show that a password is set: %s", name, out)
		}
		if !strings.Contains(out, "svc") {
			t.Errorf("%s output lost the user name: %s", name, out)
		}
	}
}

func TestDefaultTopicsAreTheContracts(t *testing.T) {
	want := map[string]int{"orders": 6, "containers": 6, "order-retries": 6, "order-dead-letter": 3}
	if diff := cmp.Diff(want, kafkaclient.DefaultTopics()); diff != "" {
		t.Errorf("DefaultTopics() (-want +got):\n%s", diff)
	}
}
