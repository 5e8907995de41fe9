package retrier_test

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/services/order-retry/retrier"
)

// TestHelpConnectsNowhere: --help lists every variable and touches
// nothing, even with a database and a broker configured. Both point at a
// listener that accepts and never answers, so a connection attempt would
// be counted (and would hang): the proof is the count, not the clock.
func TestHelpConnectsNowhere(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			defer c.Close()
		}
	}()
	silent := l.Addr().String()
	env := map[string]string{"DATABASE_URL": "postgres://reefer:reefer@" + silent + "/reefer", "KAFKA_BROKERS": silent}
	// A backstop, not the assertion: a service that connected would hang
	// on the silent listener until this ends.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := retrier.Command().Main(ctx, []string{"--help"}, func(k string) string { return env[k] }, &stdout, &stderr)
	if code != 0 || ctx.Err() != nil {
		t.Fatalf("order-retry --help: exit %d (context %v, stderr %q), want 0 at once", code, ctx.Err(), stderr.String())
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("order-retry --help opened %d connections, want none", n)
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
