package devbroker_test

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/pkg/testkit/testcert"
)

// Group timing of the members in these tests: the broker's minimum session
// timeout, and quick heartbeats so that the live member notices rebalances
// at once.
const (
	sessionTimeout    = 6 * time.Second
	rebalanceTimeout  = 6 * time.Second
	heartbeatInterval = 500 * time.Millisecond
	// victimRebalance marks the JoinGroup of the member that is killed: the
	// broker's control hook recognises it by this value.
	victimRebalance = 7 * time.Second
)

// mortal dials the connections of one group member and kills them all at
// once, as SIGKILL does to a process: the sockets close without a
// LeaveGroup, and no connection is opened again.
type mortal struct {
	mu    sync.Mutex
	conns []net.Conn
	dead  bool
}

func (m *mortal) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dead {
		return nil, net.ErrClosed
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	m.conns = append(m.conns, c)
	return c, nil
}

func (m *mortal) kill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dead = true
	for _, c := range m.conns {
		c.Close()
	}
}

// killedWhileJoining runs the scenario of issue 14, defect 8, in a few
// seconds: member A holds every partition of a 4-partition topic; member V
// joins and dies right after its JoinGroup reached the broker, before the
// answer (V's JoinGroup is held until A rejoins, so the answer cannot be
// delivered). Then one record goes to each partition. It returns the
// partitions A has read after the wait, and how long after producing it
// read the last of them.
func killedWhileJoining(t testing.TB, cfg devbroker.Config, client kafkaclient.Config, wait time.Duration) (map[int]bool, time.Duration) {
	t.Helper()
	return killMember(t, cfg, client, wait, true)
}

// killMember is killedWhileJoining, or with whileJoining false the
// ordinary crash: V is killed once the group is Stable with both members
// holding partitions.
func killMember(t testing.TB, cfg devbroker.Config, client kafkaclient.Config, wait time.Duration, whileJoining bool) (map[int]bool, time.Duration) {
	t.Helper()
	cfg.Topics = map[string]int{"t": 4}
	b := start(t, cfg)
	client.Brokers = []string{b.Addr()}
	reader := func(client kafkaclient.Config, rebalance time.Duration) *kafka.Reader {
		r, err := client.NewReader(kafka.ReaderConfig{
			GroupID: "g", Topic: "t",
			SessionTimeout: sessionTimeout, RebalanceTimeout: rebalance, HeartbeatInterval: heartbeatInterval,
			JoinGroupBackoff: 200 * time.Millisecond, MaxWait: 100 * time.Millisecond,
		})
		if err != nil {
			t.Fatalf("NewReader: %v", err)
		}
		return r
	}

	a := reader(client, rebalanceTimeout)
	t.Cleanup(func() { a.Close() })
	got := make(chan int, 16)
	go func() {
		for {
			m, err := a.FetchMessage(context.Background())
			if err != nil {
				return
			}
			got <- m.Partition
		}
	}()
	if _, err := b.Cluster().WaitGroupStable(t.Context(), "g", 1); err != nil {
		t.Fatalf("wait for member A: %v", err)
	}

	v := &mortal{}
	joined := make(chan struct{})
	var once sync.Once
	b.Cluster().ControlKey(int16(kmsg.JoinGroup), func(req kmsg.Request) (kmsg.Response, error, bool) {
		b.Cluster().KeepControl()
		if j := req.(*kmsg.JoinGroupRequest); whileJoining && j.RebalanceTimeoutMillis == int32(victimRebalance/time.Millisecond) {
			once.Do(func() { v.kill(); close(joined) })
		}
		return nil, nil, false
	})
	victimClient := client
	victimClient.Dial = v.dial
	victim := reader(victimClient, victimRebalance)
	go victim.FetchMessage(context.Background()) // joins the group; returns once closed
	t.Cleanup(func() { victim.Close() })
	if whileJoining {
		select {
		case <-joined:
		case <-time.After(20 * time.Second):
			t.Fatal("member V never sent its JoinGroup")
		}
	}
	// A rejoins, leads, and gives V half of the partitions.
	info, err := b.Cluster().WaitGroupInfo(t.Context(), "g", func(g *kfake.GroupInfo) bool {
		return g != nil && g.State == "Stable" && len(g.Members) == 2 && g.NumAssigned() == 4
	})
	if err != nil {
		t.Fatalf("wait for the group with both members: %v", err)
	}
	t.Logf("group Stable with %d members", len(info.Members))
	if !whileJoining {
		v.kill()
	}

	w, err := client.NewWriter("t")
	if err != nil {
		t.Fatal(err)
	}
	w.Balancer = &kafka.RoundRobin{}
	defer w.Close()
	if err := w.WriteMessages(t.Context(), make([]kafka.Message, 4)...); err != nil {
		t.Fatalf("produce: %v", err)
	}
	produced := time.Now()
	read := map[int]bool{}
	var last time.Duration
	deadline := time.After(wait)
	for len(read) < 4 {
		select {
		case p := <-got:
			if !read[p] {
				read[p], last = true, time.Since(produced)
			}
		case <-deadline:
			return read, last
		}
	}
	return read, last
}

// Whether the dead member ends up without a session timer is a coin toss
// inside kfake: the answer to its JoinGroup goes to a buffered channel, and
// when the connection is already gone a select picks at random between
// "queued" (the timer is armed and kfake expires the member) and "gone" (no
// timer, the member stays for good). So each test runs the scenario
// several times at once: about half of the runs produce the stuck member.
// The runs mostly wait, so they cost little CPU.
const attempts = 8

// defectAttempts is how many runs the test of the defect makes: it fails
// by chance when none of them produces the stuck member, once in 2^12.
const defectAttempts = 12

// concurrently runs n copies of run at once, each on a goroutine of its
// own (subtests with t.Parallel would run only -parallel, by default
// GOMAXPROCS, at a time, and these mostly wait). A Fatalf in run fails the
// test and ends that copy only.
func concurrently(t *testing.T, n int, run func(t testing.TB, i int)) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { run(onGoroutine{t}, i) })
	}
	wg.Wait()
}

// onGoroutine is a *testing.T whose Fatal ends the calling goroutine
// instead of the test's (testing allows FailNow on the test's only).
type onGoroutine struct{ *testing.T }

func (g onGoroutine) Fatalf(format string, args ...any) {
	g.Helper()
	g.Errorf(format, args...)
	runtime.Goexit()
}

func (g onGoroutine) Fatal(args ...any) {
	g.Helper()
	g.Error(args...)
	runtime.Goexit()
}

// TestGroupRecoversFromAMemberKilledWhileJoining is the guarantee: a member
// that dies while joining is removed after its session timeout, as Kafka
// does, and the survivor reads every partition. kfake alone never removes
// it (TestKfakeKeepsAMemberKilledWhileJoining); the reaper does.
func TestGroupRecoversFromAMemberKilledWhileJoining(t *testing.T) {
	certs := testcert.New(t, "localhost", "127.0.0.1")
	secure := devbroker.Config{
		Advertise: "localhost", TLS: certs.Server,
		SASL: []devbroker.SASLUser{{Mechanism: "SCRAM-SHA-512", User: "svc", Password: "pw"}},
	}
	secureClient := kafkaclient.Config{
		TLS:  kafkaclient.TLSConfig{Enabled: true, CAFile: certs.CAFile},
		SASL: kafkaclient.SASLConfig{Mechanism: "scram-sha-512", Username: "svc", Password: "pw"},
	}
	concurrently(t, attempts, func(t testing.TB, i int) {
		// Half of the runs use TLS and SASL: the reaper removes members
		// through the broker's own security settings.
		cfg, client, name := devbroker.Config{}, kafkaclient.Config{}, fmt.Sprintf("plaintext run %d", i)
		if i%2 == 1 {
			cfg, client, name = secure, secureClient, fmt.Sprintf("TLS and SASL run %d", i)
		}
		{
			// Removal takes the session timeout plus the reaper's sweep
			// interval; the survivor then rejoins at its next heartbeat
			// and the rebalance completes when it has. The bound adds the
			// whole rebalance timeout and 20 s of slack for a loaded
			// machine (2 cores shared, -race): it separates "resumes after
			// the session timeout" from "never resumes", which is the
			// point, and is no speed goal.
			bound := sessionTimeout + time.Second + heartbeatInterval + rebalanceTimeout + 20*time.Second
			read, last := killedWhileJoining(t, cfg, client, bound)
			if len(read) != 4 {
				t.Fatalf("%s: after %s the survivor has read partitions %v of 4: the dead member still holds the others", name, bound, read)
			}
			t.Logf("%s: the survivor read every partition %s after the records were produced (session timeout %s)", name, last.Round(time.Millisecond), sessionTimeout)
		}
	})
}

// TestKfakeKeepsAMemberKilledWhileJoining documents the upstream defect the
// reaper works around: without it, in about half of the runs the dead
// member keeps its partitions long after its session timeout. If this test
// fails, kfake expires such members itself: drop the reaper (devbroker's
// reaper.go), its Config switch and this test.
func TestKfakeKeepsAMemberKilledWhileJoining(t *testing.T) {
	wait := 2*sessionTimeout + rebalanceTimeout
	var (
		mu    sync.Mutex
		stuck int
	)
	concurrently(t, defectAttempts, func(t testing.TB, i int) {
		read, _ := killedWhileJoining(t, devbroker.Config{KeepSilentMembers: true}, kafkaclient.Config{}, wait)
		if len(read) < 4 {
			mu.Lock()
			stuck++
			mu.Unlock()
			t.Logf("run %d: without the reaper, %s after producing, the survivor has read only partitions %v of 4", i, wait, read)
		}
	})
	if t.Failed() {
		return
	}
	if stuck == 0 {
		t.Fatalf("in all %d runs kfake removed the member killed while joining by itself; the reaper is no longer needed", defectAttempts)
	}
	t.Logf("the dead member kept its partitions in %d of %d runs", stuck, defectAttempts)
}

// TestAKilledMemberStopsItsPartitionsForAtMostTheGroupTimeouts is the
// bound the README states for an ordinary crash: a member of a Stable
// group is killed (no LeaveGroup); its partitions are read again by the
// survivor after at most session timeout + heartbeat interval + rebalance
// timeout.
func TestAKilledMemberStopsItsPartitionsForAtMostTheGroupTimeouts(t *testing.T) {
	t.Parallel()
	// The stated bound plus 20 s of slack for a loaded machine (2 cores
	// shared, -race); the test separates "resumes within the group
	// timeouts" from "stalls", and is no speed goal.
	bound := sessionTimeout + heartbeatInterval + rebalanceTimeout + 20*time.Second
	read, last := killMember(t, devbroker.Config{}, kafkaclient.Config{}, bound, false)
	if len(read) != 4 {
		t.Fatalf("%s after the kill the survivor has read partitions %v of 4", bound, read)
	}
	t.Logf("the survivor read every partition %s after the kill (session %s, heartbeat %s, rebalance %s)",
		last.Round(time.Millisecond), sessionTimeout, heartbeatInterval, rebalanceTimeout)
}
