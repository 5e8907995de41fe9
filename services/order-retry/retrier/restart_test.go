package retrier_test

import (
	"context"
	"errors"
	"maps"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/store"
)

// TestKillMidwayLosesNothingAndAllocatesNothingTwice runs the real
// order-retry binary, kills it with SIGKILL (no shutdown code runs: no
// drain, no final commit) while retries are waiting, running and
// republished, and starts it again. Every order is allocated in the end,
// each to one reefer, and no reefer to two orders: the records after the
// last commit were delivered again, and the repeated steps were
// idempotent.
func TestKillMidwayLosesNothingAndAllocatesNothingTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it as a process; skipped with -short")
	}
	bin := buildBinary(t)
	e := newEnv(t, "")
	// Each call takes a while, and one order in ten fails once here and is
	// republished, so that the kill finds work in every state. (Not more:
	// five failures in a row would open the inventory client's circuit,
	// and the fast failures would use up attempts.)
	e.setFaults(faults.Profile{
		FailFirst: &faults.FailFirst{Count: 1, Status: 503},
		Rules:     []faults.Rule{{Name: "nine in ten never fail", OrderID: `[1-9]$`}},
		Latency:   faults.Duration(20 * time.Millisecond),
	})
	ids := orderIDs("KILL", 60)
	origs := e.publishOrders(ids...)

	// The shortest session the broker allows: the killed member's
	// partitions move to the new process after it.
	environ := map[string]string{"LOG_LEVEL": "info", "CONSUMER_SESSION_TIMEOUT": "6s"}
	first := startProcess(t, bin, e.environ(environ))
	// Due one every 100 ms once the process is ready, so that the kill
	// (once a third are allocated) finds orders not due yet even when a
	// loaded machine is slow to start the process or to poll: the last is
	// due 6 s after the start.
	start := time.Now()
	msgs := make([]kafka.Message, len(origs))
	for i, o := range origs {
		msgs[i] = retryRecord(o, 1, start.Add(300*time.Millisecond+time.Duration(i)*100*time.Millisecond))
	}
	e.produce(msgs...)
	waitFor(t, 3*time.Minute, "a third of the orders allocated", func() bool { return len(e.allocatedContainers()) >= len(ids)/3 })
	first.kill(t)
	before := len(e.allocatedContainers())
	if before == len(ids) {
		t.Fatalf("all %d orders were allocated before the kill; the test proves nothing", before)
	}

	second := startProcess(t, bin, e.environ(environ))
	waitFor(t, 3*time.Minute, "every order allocated after the restart", func() bool { return len(e.allocatedContainers()) == len(ids) })
	e.waitAllCommitted(3 * time.Minute)
	second.terminate(t)

	allocated := e.allocatedContainers()
	owner := map[string]string{}
	for _, id := range ids {
		if len(allocated[id]) != 1 {
			t.Errorf("order %s: ContainerAllocated names %v, want exactly one container", id, allocated[id])
			continue
		}
		c := allocated[id][0]
		if other, taken := owner[c]; taken {
			t.Errorf("container %s allocated to %s and %s", c, other, id)
		}
		owner[c] = id
	}
	if dead := e.readAll(dlqTopic); len(dead) != 0 {
		t.Errorf("%d dead letters, want none", len(dead))
	}

	ctx := context.Background()
	db, err := reeferstore.Open(ctx, e.dbURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n, err := db.CountAllocations(ctx); err != nil || n != int64(len(ids)) {
		t.Errorf("database holds %d allocations (%v), want %d", n, err, len(ids))
	}
	for _, id := range ids {
		if c, ok, err := db.Allocation(ctx, id); err != nil || !ok || (len(allocated[id]) == 1 && c != allocated[id][0]) {
			t.Errorf("order %s: database says %q (found %v, %v), the event %v", id, c, ok, err, allocated[id])
		}
	}
	inv, err := e.mock.Containers(ctx, store.Allocated)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range inv {
		if owner[c.ContainerID] != c.OrderID {
			t.Errorf("inventory: container %s allocated to %q, the events say %q", c.ContainerID, c.OrderID, owner[c.ContainerID])
		}
	}
	stats, err := e.mock.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d orders allocated before the kill; the inventory answered %d repeated allocations from its record after the restart",
		before, len(ids), stats.Inventory.Replays)
	if len(inv) != len(ids) || stats.Inventory.Conflicts != 0 {
		t.Errorf("inventory: %d containers allocated and %d conflicts, want %d and none", len(inv), stats.Inventory.Conflicts, len(ids))
	}
}

// buildBinary builds the order-retry command (the parent directory) the
// way `make build` does.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "order-retry")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "..")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is the service running as a child process.
type process struct {
	cmd    *exec.Cmd
	addr   string
	output *syncBuffer
	done   chan error
}

// startProcess runs bin with exactly the variables of environ (nothing
// inherited from the test's environment) and waits until it is ready.
func startProcess(t *testing.T, bin string, environ map[string]string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin), addr: environ["HTTP_ADDR"], output: &syncBuffer{}, done: make(chan error, 1)}
	for k, v := range maps.All(environ) {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("output of %s (pid %d):\n%s", bin, p.cmd.Process.Pid, p.output.String())
		}
	})
	waitReady(t, p.addr, p.done)
	return p
}

// kill ends the process with SIGKILL: no shutdown code runs.
func (p *process) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var exit *exec.ExitError
	if err := <-p.done; !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("process ended with %v, want killed by SIGKILL", err)
	}
}

// terminate asks the process to stop with SIGTERM, as an orchestrator
// does, and expects a clean exit.
func (p *process) terminate(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("process ended with %v after SIGTERM, want exit status 0", err)
		}
	case <-time.After(40 * time.Second):
		t.Errorf("process did not stop within 40s of SIGTERM")
	}
}

// TestKillRestartKillWithoutWaitingRecovers is issue 14's defect 8 with the
// real binary: it is killed, restarted, and the new process killed again
// 1.2 s later, likely while its JoinGroup waits for the group to expire the
// first one, without waiting for the group to settle; a third process must
// still finish every order. Before devbroker's reaper, a process killed
// while joining could keep its partitions unread for good (see
// TestGroupRecoversFromAMemberKilledWhileJoining in pkg/platform/devbroker).
func TestKillRestartKillWithoutWaitingRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it as a process; skipped with -short")
	}
	bin := buildBinary(t)
	e := newEnv(t, "")
	e.setFaults(faults.Profile{Latency: faults.Duration(20 * time.Millisecond)})
	ids := orderIDs("KRK", 60)
	origs := e.publishOrders(ids...)
	start := time.Now()
	msgs := make([]kafka.Message, len(origs))
	for i, o := range origs {
		msgs[i] = retryRecord(o, 1, start.Add(time.Duration(i)*100*time.Millisecond))
	}
	e.produce(msgs...)

	environ := map[string]string{"LOG_LEVEL": "info", "CONSUMER_SESSION_TIMEOUT": "6s", "CONSUMER_REBALANCE_TIMEOUT": "6s"}
	first := startProcess(t, bin, e.environ(environ))
	waitFor(t, 30*time.Second, "some orders allocated", func() bool { return len(e.allocatedContainers()) > 0 })
	first.kill(t)
	second := startProcess(t, bin, e.environ(environ))
	time.Sleep(1200 * time.Millisecond) // the rhythm; the second is still joining
	second.kill(t)
	third := startProcess(t, bin, e.environ(environ))
	// Session timeout (6 s) for the first, the reaper's session timeout
	// plus 1 s for the second, a rebalance timeout (6 s), plus the orders'
	// own spread (6 s) and 40 s of slack for a loaded machine: the bound
	// separates recovery from the indefinite stall, it is no speed goal.
	waitFor(t, 70*time.Second, "every order allocated after kill, restart, kill", func() bool { return len(e.allocatedContainers()) == len(ids) })
	e.waitAllCommitted(30 * time.Second)
	third.terminate(t)
}
