package retrier_test

import (
	"bytes"
	"context"
	"net"
	"os/exec"
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

// TestTheProductionBuildLinksNoSQLite: make build uses the nosqlite tag,
// and then no SQLite package is in the binary.
func TestTheProductionBuildLinksNoSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list; skipped with -short")
	}
	out, err := exec.CommandContext(t.Context(), "go", "list", "-tags", "nosqlite", "-deps", "github.com/reeferdlq/reefer-dlq/services/order-retry").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.Contains(pkg, "sqlite") {
			t.Errorf("the production build links %s", pkg)
		}
	}
}
