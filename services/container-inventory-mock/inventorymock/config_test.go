package inventorymock_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigFromEnv(t *testing.T) {
	profileFile := filepath.Join(t.TempDir(), "profile.json")
	if err := os.WriteFile(profileFile, []byte(`{"errorRate": 0.1, "seed": 3}`), 0o600); err != nil {
		t.Fatal(err)
	}
	defaults := inventorymock.DefaultConfig()
	defaults.AdminInsecure = true
	tests := []struct {
		name string
		env  map[string]string
		want func(c *inventorymock.Config)
	}{
		{
			name: "defaults",
			env:  map[string]string{"ADMIN_INSECURE": "true"},
			want: func(*inventorymock.Config) {},
		},
		{
			name: "every variable",
			env: map[string]string{
				"HTTP_ADDR": "0.0.0.0:9000", "LOG_LEVEL": "debug", "LOG_FORMAT": "TEXT",
				"FAULT_PROFILE": "flaky", "FAULT_MAX_HANG": "5s", "ADMIN_TOKEN": "t", "ADMIN_INSECURE": "false",
				"CALL_LOG_SIZE": "50", "HTTP_BODY_LIMIT": "1M", "SHUTDOWN_TIMEOUT": "3s",
			},
			want: func(c *inventorymock.Config) {
				c.HTTPAddr, c.LogLevel, c.LogFormat = "0.0.0.0:9000", slog.LevelDebug, "text"
				c.FaultProfile = faults.Profile{ErrorRate: 0.2, ErrorStatus: 503}
				c.FaultMaxHang, c.AdminToken, c.AdminInsecure = 5*time.Second, "t", false
				c.CallLogSize, c.BodyLimit, c.ShutdownTimeout = 50, "1M", 3*time.Second
			},
		},
		{
			name: "a profile from a file",
			env:  map[string]string{"ADMIN_INSECURE": "true", "FAULT_PROFILE": "@" + profileFile},
			want: func(c *inventorymock.Config) {
				c.FaultProfile = faults.Profile{Seed: new(int64(3)), ErrorRate: 0.1, ErrorStatus: 503}
			},
		},
		{
			name: "loopback needs no token",
			env:  map[string]string{"HTTP_ADDR": "127.0.0.1:8081"},
			want: func(c *inventorymock.Config) { c.HTTPAddr, c.AdminInsecure = "127.0.0.1:8081", false },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := inventorymock.ConfigFromEnv(env(tt.env))
			if err != nil {
				t.Fatalf("ConfigFromEnv: %v", err)
			}
			want := defaults
			tt.want(&want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("config mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigFromEnvNamesEveryBadVariable(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{
			name: "values that do not parse",
			env: map[string]string{
				"ADMIN_INSECURE": "yes please", "LOG_LEVEL": "loud", "LOG_FORMAT": "xml", "FAULT_MAX_HANG": "forever",
				"CALL_LOG_SIZE": "0", "SHUTDOWN_TIMEOUT": "-1s", "FAULT_PROFILE": "wobbly",
			},
			want: []string{
				`ADMIN_INSECURE="yes please": want true or false`,
				`LOG_LEVEL="loud": want debug, info, warn or error`,
				`LOG_FORMAT="xml": want one of json, text`,
				`FAULT_MAX_HANG="forever": want a positive Go duration`,
				`CALL_LOG_SIZE="0": want a whole number of 1 or more`,
				`SHUTDOWN_TIMEOUT="-1s": want a positive Go duration`,
				`FAULT_PROFILE: unknown fault profile preset "wobbly"`,
			},
		},
		{
			name: "an invalid inline profile",
			env:  map[string]string{"ADMIN_INSECURE": "true", "FAULT_PROFILE": `{"errorRate": 3}`},
			want: []string{"FAULT_PROFILE: invalid fault profile: errorRate 3"},
		},
		{
			name: "a missing profile file",
			env:  map[string]string{"ADMIN_INSECURE": "true", "FAULT_PROFILE": "@/no/such/profile.json"},
			want: []string{"FAULT_PROFILE: read fault profile file", "/no/such/profile.json"},
		},
		{
			name: "values that are wrong together",
			env:  map[string]string{"HTTP_ADDR": "8081", "HTTP_BODY_LIMIT": "big"},
			want: []string{`HTTP_ADDR "8081": want host:port`, `HTTP_BODY_LIMIT "big": want a size such as 64K`},
		},
		{
			name: "an open admin API beyond loopback",
			env:  map[string]string{"HTTP_ADDR": ":8081"},
			want: []string{`HTTP_ADDR ":8081": the admin API would be reachable beyond loopback without a token: set ADMIN_TOKEN`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := inventorymock.ConfigFromEnv(env(tt.env))
			if err == nil {
				t.Fatal("ConfigFromEnv succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestConfigLogValueMasksTheToken(t *testing.T) {
	var b strings.Builder
	log := slog.New(slog.NewTextHandler(&b, nil))
	log.Info("config", "config", inventorymock.Config{AdminToken: "s3cret", HTTPAddr: ":1"})
	if strings.Contains(b.String(), "s3cret") {
		t.Errorf("the token leaked into the log: %s", b.String())
	}
	if !strings.Contains(b.String(), "config.adminToken=(set)") {
		t.Errorf("the log does not say a token is set: %s", b.String())
	}
}
