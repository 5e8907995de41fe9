package demo

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/deployments/local/ordergen"
)

// TestScenarioEndsWithTheInvariantHolding runs the whole demo, small and
// fast, and checks what it printed, what it found and what it left behind.
// Timing never decides the outcome: every phase waits for what the topics
// show, within generous bounds.
func TestScenarioEndsWithTheInvariantHolding(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the whole scenario runs for about 20 s")
	}
	// The demo's temp dir goes here, so the test can see it removed.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	chart := filepath.Join(t.TempDir(), "timeline.png")
	goroutines := runtime.NumGoroutine()

	var out syncBuffer
	// The demo's own bound (4 settle periods, 165 s at speed 4) is for a
	// person watching; make test-stress (2 cores busy, load 40) took longer
	// than that, phase 1 alone 50 s. The bound only matters when an order
	// never settles, so the test gives the run 10 minutes (and each phase
	// a quarter of that).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const orders, permanent = 40, 3
	res, err := Run(ctx, Config{
		Orders:    orders,
		Permanent: permanent,
		Seed:      7,
		Speed:     4,
		ChartPath: chart,
		Out:       &out,
		Timeout:   10 * time.Minute,
	})
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}

	// The summary: every order where it deserved to be.
	if res.Sent != 3*orders+permanent {
		t.Errorf("sent %d orders; want %d", res.Sent, 3*orders+permanent)
	}
	if res.Allocated != res.Expected[ordergen.Allocated] || res.Rejected != res.Expected[ordergen.Rejected] ||
		res.DeadLettered != permanent || res.Lost != 0 {
		t.Errorf("allocated %d rejected %d dead-lettered %d lost %d; want %d, %d, %d, 0",
			res.Allocated, res.Rejected, res.DeadLettered, res.Lost,
			res.Expected[ordergen.Allocated], res.Expected[ordergen.Rejected], permanent)
	}
	// The outage dead-letters every phase-3 order a reefer can carry;
	// the redrive brings them back.
	if res.Redriven == 0 {
		t.Error("no order was redriven")
	}
	if !res.OK() {
		t.Errorf("invariant checks failed: %+v", res.Checks)
	}
	if len(res.Checks) < 6 {
		t.Errorf("%d checks; want at least 6", len(res.Checks))
	}

	// The narration a newcomer follows.
	text := out.String()
	for _, want := range []string{
		"Phase 1", "steps (1)-(5)", "Phase 2", "steps (4)-(6)", "Phase 3", "step (7)", "Phase 4",
		"dlq --brokers", "redrive --error-class transient --to original --limit 5 --when-healthy",
		"redrive --error-class transient --to retry", "through `orders`",
		"list --status pending", ordergen.PermanentPrefix + "0001",
		"lost: in none of the above", "The invariant holds",
		// The waterfall of an order that went the whole way.
		"The trace of order", "process orders · attempt 1", "redrive order-retries", "↪ linked to", "allocated",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	// The picture.
	b, err := os.ReadFile(chart)
	if err != nil {
		t.Fatalf("chart: %v", err)
	}
	if _, err := png.Decode(bytes.NewReader(b)); err != nil {
		t.Errorf("chart is not a PNG: %v", err)
	}
	if res.ChartPath != chart {
		t.Errorf("ChartPath %q; want %q", res.ChartPath, chart)
	}

	// Nothing left behind: no temp files, no goroutines.
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("temp dir not cleaned: %v", left)
	}
	// Generous: the bound matters only when a goroutine leaks.
	deadline := time.Now().Add(30 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before, %d after:\n%s", goroutines, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestRunRefusesABadConfiguration(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no orders", Config{Orders: 0, Speed: 1}, "--orders 0"},
		{"too fast", Config{Orders: 10, Speed: 50}, "--speed 50"},
		{"not postgres", Config{Orders: 10, Speed: 1, PostgresURL: "mysql://x"}, "--postgres"},
		{"broker without port", Config{Orders: 10, Speed: 1, Brokers: []string{"kafka"}}, "--brokers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Out = &bytes.Buffer{}
			_, err := Run(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) || errors.Is(err, ErrInvariant) {
				t.Fatalf("err = %v; want one naming %q", err, tt.want)
			}
		})
	}
}
