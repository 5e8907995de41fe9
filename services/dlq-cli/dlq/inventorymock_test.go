package dlq_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/admin"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/dlq"
)

// TestWhenHealthyWaitsOutTheInventoryOutage is the on-call story end to end:
// the legacy inventory is down, dead letters pile up; `dlq redrive
// --when-healthy` is started at once and only moves them after the outage
// ends.
func TestWhenHealthyWaitsOutTheInventoryOutage(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mock, err := inventorymock.New(inventorymock.Config{HTTPAddr: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := mock.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = mock.Shutdown(sctx)
	})
	base := "http://" + mock.Addr()
	adm := admin.New(base, "")
	if _, err := adm.Outage(ctx, faults.Outage{}); err != nil { // 503 until healed
		t.Fatalf("start the outage: %v", err)
	}

	c := newCluster(t)
	c.seed(manyLetters(30, false)...)
	done := make(chan result, 1)
	go func() {
		done <- c.run("redrive", "--when-healthy", base+"/containers", "--probe-interval", "20ms", "--yes")
	}()
	time.Sleep(300 * time.Millisecond) // ~15 probes, all during the outage
	if n := len(c.records(retryTopic)); n != 0 {
		t.Fatalf("%d records redriven during the outage", n)
	}
	if _, err := adm.Heal(ctx); err != nil {
		t.Fatalf("end the outage: %v", err)
	}
	select {
	case r := <-done:
		if r.code != dlq.ExitOK || !strings.Contains(r.stderr, "backend healthy") {
			t.Fatalf("redrive: %s", r)
		}
	case <-ctx.Done():
		t.Fatal("redrive did not start after the outage ended")
	}
	if n := len(c.records(retryTopic)); n != 30 {
		t.Errorf("%d records redriven, want 30", n)
	}
}
