package retrier_test

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/services/order-retry/retrier"
)

// TestHelpConnectsNowhere: --help answers at once, even when the database
// it would migrate is unreachable, and lists every variable.
func TestHelpConnectsNowhere(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	env := map[string]string{"DATABASE_URL": "postgres://reefer:reefer@" + closed + "/reefer", "KAFKA_BROKERS": closed}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := retrier.Command().Main(ctx, []string{"--help"}, func(k string) string { return env[k] }, &stdout, &stderr)
	if took := time.Since(start); code != 0 || took > time.Second {
		t.Fatalf("order-retry --help: exit %d after %s (stderr %q), want 0 within a second", code, took, stderr.String())
	}
	for _, want := range []string{"RETRY_MAX_ATTEMPTS", "default 5", "DATABASE_URL", "MAX_DUE_AHEAD"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("--help does not list %s:\n%s", want, stdout.String())
		}
	}
}
