package reeferstore_test

import (
	"bytes"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
)

// refusedAddr is an address nobody listens on: connecting fails at once.
func refusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// The password must appear in no error and no log line, whatever the form
// of DATABASE_URL: one that url.Parse refuses (a '%' not followed by two
// hex digits, a '#'), one that carries it as a query parameter, a libpq
// key=value string, and a well-formed URL to a database that refuses the
// connection.
func TestOpenNeverPrintsThePassword(t *testing.T) {
	addr := refusedAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	tests := []struct {
		name     string
		url      string
		password string
	}{
		{"unparsable percent", "postgres://u:pa%ss-w0rd@" + addr + "/db", "pa%ss-w0rd"},
		{"hash in password", "postgres://u:pa#ss-w0rd@" + addr + "/db", "pa#ss-w0rd"},
		{"query parameter", "postgres://u@" + addr + "/db?sslmode=disable&password=qu3ry-secret", "qu3ry-secret"},
		{"key=value", "host=" + host + " port=" + port + " user=u password=kv-s3cret dbname=db", "kv-s3cret"},
		{"percent-encoded, refused", "postgres://u:" + url.QueryEscape("p@ss/w0rd") + "@" + addr + "/db", "p@ss/w0rd"},
		{"plain, refused", "postgres://u:plain-s3cret@" + addr + "/db?sslmode=disable", "plain-s3cret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			s, err := reeferstore.Open(t.Context(), tt.url, log)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open(%q) succeeded", tt.url)
			}
			secrets := []string{tt.password, url.QueryEscape(tt.password), url.PathEscape(tt.password)}
			for _, secret := range secrets {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows the password %q: %v", secret, err)
				}
				if strings.Contains(logs.String(), secret) {
					t.Errorf("the log shows the password %q:\n%s", secret, logs.String())
				}
			}
			if !strings.Contains(err.Error(), "DATABASE_URL") && !strings.Contains(err.Error(), "database") {
				t.Errorf("the error does not say what failed: %v", err)
			}
		})
	}
}
