package manager_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
	"github.com/reeferdlq/reefer-dlq/services/reefer-manager/manager"
)

// helperEnv makes the test binary run the service instead of the tests:
// the crash test starts it as a child process and kills it with SIGKILL,
// which is the only honest way to show what a crash does: no deferred
// function, no drain, no final commit runs. The child runs exactly what
// main does: ConfigFromEnv, NewLogger, Run.
const helperEnv = "REEFER_MANAGER_TEST_SERVICE"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(runService())
	}
	os.Exit(m.Run())
}

func runService() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := manager.ConfigFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := manager.Run(ctx, cfg.NewLogger(os.Stdout), cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestCrashLosesOrdersOnlyWhenCommittingBeforeProcessing kills the service
// while orders are in flight (the inventory holds every request) and then
// asks the broker what the group will never read again.
//
// An order is lost when the group's committed offset is past its record
// and it has no outcome (no event, no retry record, no dead letter): no
// member of the group will read it again, and nothing else knows about it.
// before-processing commits each record before handling it, so every
// order in flight at the crash is lost; after-handoff commits only
// concluded records, so the in-flight ones stay above the committed
// offset and are re-delivered to the next member.
func TestCrashLosesOrdersOnlyWhenCommittingBeforeProcessing(t *testing.T) {
	tests := []struct {
		mode     string
		wantLoss bool
	}{
		{manager.CommitAfterHandoff, false},
		{manager.CommitBeforeProcessing, true},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			e := newEnv(t)
			e.inv.holdAll()
			produced := e.produce(orders(t, "K", 12)...)

			environ := e.environ(map[string]string{
				"COMMIT_MODE":       tt.mode,
				"MAX_IN_FLIGHT":     "4",
				"INVENTORY_TIMEOUT": "1m", // nothing concludes before the crash
				// Above INVENTORY_TIMEOUT, or the service refuses to start.
				"RELEASE_RECHECK_AFTER": "2m",
			})
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"=1")
			for k, v := range environ {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			logs := &syncBuffer{}
			cmd.Stdout, cmd.Stderr = logs, logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			killed := false
			t.Cleanup(func() {
				if !killed {
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
				}
				if t.Failed() {
					t.Logf("service log:\n%s", logs.String())
				}
			})

			waitFor(t, 3*time.Minute, "orders in flight at the inventory", func() bool { return len(e.inv.callCounts()) >= 4 })
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			killed = true

			committed := e.committed("orders")
			concluded := e.concludedOrders()
			var lost, inFlightLost []string
			inFlight := e.inv.callCounts()
			for _, m := range produced {
				id := string(m.Key)
				if m.Offset < committed[m.Partition] && !concluded[id] {
					lost = append(lost, id)
					if inFlight[id] > 0 {
						inFlightLost = append(inFlightLost, id)
					}
				}
			}
			t.Logf("%s: committed %v, %d orders in flight at the crash, %d lost", tt.mode, committed, len(inFlight), len(lost))
			if !tt.wantLoss && len(lost) > 0 {
				t.Errorf("lost orders %v in %s mode, want none", lost, tt.mode)
			}
			if tt.wantLoss && len(inFlightLost) != len(inFlight) {
				t.Errorf("lost %v of the %d orders in flight at the crash; want all of them lost in %s mode",
					inFlightLost, len(inFlight), tt.mode)
			}
		})
	}
}

// concludedOrders returns the ids of the orders that have an outcome on
// any topic.
func (e *env) concludedOrders() map[string]bool {
	out := map[string]bool{}
	for _, typ := range []string{events.TypeContainerAllocated, events.TypeOrderRejected} {
		evs, _ := e.eventsOf("orders", typ)
		for _, ev := range evs {
			out[ev.env.Subject] = true
		}
	}
	for _, topic := range []string{"order-retries", "order-dead-letter"} {
		for _, m := range e.readAll(topic) {
			out[string(m.Key)] = true
		}
	}
	return out
}

// TestGracefulShutdownFinishesInFlightWorkAndCommitsIt stops the service
// while orders are being processed: Run returns nil, every order that
// reached the inventory is concluded, and the group's committed offset is
// exactly the end of the contiguous run of finished records of each
// partition: nothing finished is left for re-delivery beyond what the
// per-partition order forces, and nothing unfinished is skipped.
func TestGracefulShutdownFinishesInFlightWorkAndCommitsIt(t *testing.T) {
	e := newEnv(t)
	e.inv.delay.Store(int64(30 * time.Millisecond))
	cfg := e.config(map[string]string{"MAX_IN_FLIGHT": "4", "LOG_LEVEL": "debug"})
	svc := e.start(cfg)
	e.produce(orders(t, "G", 60)...)

	waitFor(t, 3*time.Minute, "orders reaching the inventory", func() bool { return len(e.inv.callCounts()) >= 12 })
	if err := svc.stop(); err != nil {
		t.Fatalf("Run after a graceful stop: %v", err)
	}

	concluded := e.concludedOrders()
	for id := range e.inv.callCounts() {
		if !concluded[id] {
			t.Errorf("order %s reached the inventory but was not concluded: the drain did not finish it", id)
		}
	}
	if len(concluded) == 60 {
		t.Fatal("every order finished before the stop; the test proves nothing (slow the inventory down)")
	}

	// The service logs every record it concluded with its coordinates.
	finished := map[int]map[int64]bool{}
	sc := bufio.NewScanner(strings.NewReader(svc.Logs()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Msg       string `json:"msg"`
			Partition *int   `json:"partition"`
			Offset    *int64 `json:"offset"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Partition == nil || line.Offset == nil {
			continue
		}
		if slices.Contains([]string{"record concluded", "order handed to retry", "order dead-lettered"}, line.Msg) {
			if finished[*line.Partition] == nil {
				finished[*line.Partition] = map[int64]bool{}
			}
			finished[*line.Partition][*line.Offset] = true
		}
	}
	committed := e.committed("orders")
	for p := range testTopics["orders"] {
		want := int64(0)
		for finished[p][want] {
			want++
		}
		got := max(committed[p], 0) // -1: nothing committed, i.e. start at 0
		if got != want {
			t.Errorf("partition %d: committed %d, want %d (the end of the finished prefix)", p, got, want)
		}
	}
}
