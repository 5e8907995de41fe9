package envconfig_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/envconfig"
)

// nested stands for a shared config struct embedded in a service's own,
// such as kafkaclient.Config.
type nested struct {
	Brokers []string      `env:"BROKERS" envSeparator:"," envDefault:"localhost:9092"`
	Timeout time.Duration `env:"NESTED_TIMEOUT" envDefault:"1s"`
}

type config struct {
	Nested   nested
	Timeout  time.Duration `env:"TIMEOUT" envDefault:"2s"`
	Workers  int           `env:"WORKERS" envDefault:"4"`
	Fraction float64       `env:"FRACTION" envDefault:"0.1"`
	Level    slog.Level    `env:"LEVEL" envDefault:"info"`
	Verbose  bool          `env:"VERBOSE"`
	Ports    []int         `env:"PORTS" envSeparator:","`
	Name     string        `env:"NAME"`
	Skipped  string        `env:"-"`
}

func getenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseReadsValuesAndDefaults(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want config
	}{
		{"nothing set gives the defaults", nil, config{
			Nested:  nested{Brokers: []string{"localhost:9092"}, Timeout: time.Second},
			Timeout: 2 * time.Second, Workers: 4, Fraction: 0.1, Level: slog.LevelInfo,
		}},
		{"every variable set", map[string]string{
			"BROKERS": "a:1,b:2", "NESTED_TIMEOUT": "3s", "TIMEOUT": "250ms", "WORKERS": "9", "FRACTION": "0.5",
			"LEVEL": "debug", "VERBOSE": "true", "PORTS": "1,2", "NAME": "x", "Skipped": "ignored",
		}, config{
			Nested:  nested{Brokers: []string{"a:1", "b:2"}, Timeout: 3 * time.Second},
			Timeout: 250 * time.Millisecond, Workers: 9, Fraction: 0.5, Level: slog.LevelDebug,
			Verbose: true, Ports: []int{1, 2}, Name: "x",
		}},
		{"an empty value counts as unset", map[string]string{"TIMEOUT": "", "WORKERS": ""}, config{
			Nested:  nested{Brokers: []string{"localhost:9092"}, Timeout: time.Second},
			Timeout: 2 * time.Second, Workers: 4, Fraction: 0.1, Level: slog.LevelInfo,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := envconfig.Parse[config](getenv(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseNamesTheVariableAndTheAcceptedForm: the operator sees the
// variable they set, never the Go field name.
func TestParseNamesTheVariableAndTheAcceptedForm(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"duration", map[string]string{"TIMEOUT": "soon"}, []string{`TIMEOUT="soon": want a duration such as 500ms, 2s or 1m`}},
		{"nested duration", map[string]string{"NESTED_TIMEOUT": "later"}, []string{`NESTED_TIMEOUT="later": want a duration`}},
		{"whole number", map[string]string{"WORKERS": "four"}, []string{`WORKERS="four": want a whole number`}},
		{"number", map[string]string{"FRACTION": "ten"}, []string{`FRACTION="ten": want a number such as 0.1`}},
		{"level", map[string]string{"LEVEL": "loud"}, []string{`LEVEL="loud": want debug, info, warn or error`}},
		{"bool", map[string]string{"VERBOSE": "maybe"}, []string{`VERBOSE="maybe": want true or false`}},
		{"list", map[string]string{"PORTS": "1,x"}, []string{`PORTS="1,x": want a comma-separated list, each a whole number`}},
		{"every bad variable at once", map[string]string{"TIMEOUT": "soon", "WORKERS": "four"},
			[]string{`TIMEOUT="soon"`, `WORKERS="four"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := envconfig.Parse[config](getenv(tt.env))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for _, field := range []string{"Timeout", "Workers", "Fraction"} {
				if strings.Contains(err.Error(), `"`+field+`"`) {
					t.Errorf("error %q names the Go field %s", err, field)
				}
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://reefer:secret@db:5432/reefers", "postgres://reefer:xxxxx@db:5432/reefers"},
		{"postgres://db:5432/reefers", "postgres://db:5432/reefers"},
		{"sqlite:/var/lib/reefers.db", "sqlite:/var/lib/reefers.db"},
		{"http://inventory:8081", "http://inventory:8081"},
		{"", ""},
		// The forms that url.Parse cannot read, or reads without a password.
		{"postgres://u:p%ss@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://u:p#ss@h:5432/db", "postgres://u:xxxxx@h:5432/db"},
		{"postgres://u:p@s/s?w@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://u@h/db?sslmode=disable&password=s3cret&x=1", "postgres://u@h/db?sslmode=disable&password=xxxxx&x=1"},
		{"postgres://h/db?PASSWORD=s3cret", "postgres://h/db?PASSWORD=xxxxx"},
		{"host=h user=u password=s3cret dbname=db", "host=h user=u password=xxxxx dbname=db"},
		{"host=h password = 'with space' dbname=db", "host=h password = xxxxx dbname=db"},
		{"host=h sslpassword=keypass", "host=h sslpassword=xxxxx"},
	}
	for _, tt := range tests {
		if got := envconfig.RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A driver's error may echo the connection string, or a part of it.
func TestRedactTextHidesTheURLAndItsPasswords(t *testing.T) {
	const dsn = "postgres://u:p%40ss-word@h/db?password=q-secret"
	text := `cannot parse "postgres://u:p%40ss-word@h/db?password=q-secret": user p@ss-word, password=q-secret; again q-secret`
	got := envconfig.RedactText(text, dsn)
	for _, secret := range []string{"p%40ss-word", "p@ss-word", "q-secret"} {
		if strings.Contains(got, secret) {
			t.Errorf("RedactText left %q in %q", secret, got)
		}
	}
	if !strings.Contains(got, "postgres://u:xxxxx@h/db") {
		t.Errorf("RedactText(%q) = %q, want the redacted URL in it", text, got)
	}
	if got := envconfig.RedactText("short pw", "postgres://u:pw@h/db"); got != "short pw" {
		t.Errorf("a short password must not garble the text: %q", got)
	}
}
