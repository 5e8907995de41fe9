package services

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoadRecordsWhatEachServiceReads(t *testing.T) {
	db := map[string]string{"DATABASE_URL": "postgres://u:p@db:5432/reefer"}
	cases := []struct {
		service string
		env     map[string]string
		read    []string // among others
		facts   Facts
	}{
		{"reefer-manager", db, []string{"KAFKA_BROKERS", "KAFKA_SASL_PASSWORD", "RETRY_MAX_ATTEMPTS", "COMMIT_MODE", "DATABASE_URL"},
			Facts{HTTPAddr: ":8080", Group: "reefer-manager", Consumes: "orders", Brokers: []string{"localhost:9092"}, ReadinessPath: "/readyz",
				Kafka: Access{Reads: []string{"orders"}, Writes: []string{"orders", "containers", "order-retries", "order-dead-letter"}, Groups: []string{"reefer-manager"}}}},
		{"order-retry", db, []string{"KAFKA_BROKERS", "RETRY_TOPIC", "MAX_PENDING", "MAX_DUE_AHEAD"},
			Facts{HTTPAddr: ":8082", Group: "order-retry", Consumes: "order-retries", Brokers: []string{"localhost:9092"}, ReadinessPath: "/readyz",
				Kafka: Access{Reads: []string{"order-retries"}, Writes: []string{"orders", "containers", "order-retries", "order-dead-letter"}, Groups: []string{"order-retry"}}}},
		{"container-inventory-mock", map[string]string{"HTTP_ADDR": "127.0.0.1:8081"}, []string{"FAULT_PROFILE", "ADMIN_TOKEN", "HTTP_ADDR"},
			Facts{HTTPAddr: "127.0.0.1:8081", ReadinessPath: "/healthz"}},
		{"dlq", nil, []string{"KAFKA_BROKERS", "DLQ_TOPIC", "RETRY_TOPIC"}, Facts{Kafka: Access{
			Reads:  []string{"order-dead-letter", "order-dead-letter.resolutions"},
			Writes: []string{"order-retries", "order-dead-letter.resolutions"}, Groups: []string{"dlq-redrive"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.service, func(t *testing.T) {
			svc, ok := Lookup(tc.service)
			if !ok {
				t.Fatalf("no service %s", tc.service)
			}
			got, err := svc.Load(tc.env)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range tc.read {
				if !slices.Contains(got.Read, v) {
					t.Errorf("%s did not read %s; it read %v", tc.service, v, got.Read)
				}
			}
			if diff := cmp.Diff(tc.facts, got.Facts); diff != "" {
				t.Errorf("facts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadReportsUnreadVariablesButNotTheRuntimes(t *testing.T) {
	svc, _ := Lookup("order-retry")
	got, err := svc.Load(map[string]string{
		"DATABASE_URL":      "postgres://u:p@db:5432/reefer",
		"RETRY_MAX_ATTEMPT": "3",   // a typo
		"COMMIT_MODE":       "x",   // reefer-manager's, not order-retry's
		"GOMEMLIMIT":        "256", // the Go runtime's
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"COMMIT_MODE", "RETRY_MAX_ATTEMPT"}, got.Unread); diff != "" {
		t.Errorf("unread (-want +got):\n%s", diff)
	}
}

func TestLoadReportsValuesTheServiceRefuses(t *testing.T) {
	cases := []struct {
		service string
		env     map[string]string
		wantErr string
	}{
		{"reefer-manager", map[string]string{}, "DATABASE_URL is not set"},
		{"reefer-manager", map[string]string{"DATABASE_URL": "postgres://db/r", "RETRY_JITTER": "gaussian"}, "RETRY_JITTER"},
		{"order-retry", map[string]string{"DATABASE_URL": "postgres://db/r", "KAFKA_TLS_CA_FILE": "/ca.crt"}, "KAFKA_TLS_CA_FILE is set but KAFKA_TLS is not true"},
		{"container-inventory-mock", map[string]string{"HTTP_ADDR": ":8081"}, "ADMIN_TOKEN"},
		{"dlq", map[string]string{"KAFKA_TLS": "maybe"}, "KAFKA_TLS"},
	}
	for _, tc := range cases {
		t.Run(tc.service+"/"+tc.wantErr, func(t *testing.T) {
			svc, _ := Lookup(tc.service)
			_, err := svc.Load(tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Load error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadDLQFollowsTheDeploymentsArguments(t *testing.T) {
	env := map[string]string{"DLQ_TOPIC": "dl", "RETRY_TOPIC": "rt", "DLQ_REDRIVE_GROUP": "g"}
	got, err := LoadDLQ([]string{"watch", "--when-healthy", "http://inventory:8080/health", "--rate", "50"}, env)
	if err != nil {
		t.Fatal(err)
	}
	want := Access{Reads: []string{"dl", "dl.resolutions"}, Writes: []string{"rt", "dl.resolutions"}, Groups: []string{"g"}}
	if diff := cmp.Diff(want, got.Facts.Kafka); diff != "" {
		t.Errorf("access (-want +got):\n%s", diff)
	}
	if _, err := LoadDLQ([]string{"watch", "--when-healthy", "http://x/health", "--rat", "50"}, env); err == nil {
		t.Error("a misspelt flag (--rat) was accepted")
	}
}
