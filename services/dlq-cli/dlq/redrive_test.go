package dlq_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/dlq"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/kafkalog"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/render"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/resolution"
)

// headerMap returns the headers of m by name (the last one of each name).
func headerMap(m kafka.Message) map[string]string {
	out := map[string]string{}
	for _, h := range m.Headers {
		out[h.Key] = string(h.Value)
	}
	return out
}

// showOne runs show -o json for one position.
func (c *cluster) showOne(pos string) render.Detail {
	c.t.Helper()
	r := c.run("show", pos, "-o", "json")
	if r.code != dlq.ExitOK {
		c.t.Fatalf("show %s: %s", pos, r)
	}
	var ds []render.Detail
	if err := json.Unmarshal([]byte(r.stdout), &ds); err != nil || len(ds) != 1 {
		c.t.Fatalf("show %s: %v\n%s", pos, err, r)
	}
	return ds[0]
}

func TestRedriveToRetryResetsAttemptsAndKeepsKeyAndValue(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.seed(standardSeed()...)
	original := c.records(dlqTopic)[2] // 1:0, O-1003, redriven once before

	r := c.run("redrive", "--order-id", "O-1003", "--yes")
	if r.code != dlq.ExitOK || !strings.Contains(r.stdout, "redriven 1 of 1") {
		t.Fatalf("redrive: %s", r)
	}
	got := c.records(retryTopic)
	if len(got) != 1 {
		t.Fatalf("retry topic has %d records, want 1", len(got))
	}
	cp := got[0]
	if !bytes.Equal(cp.Key, original.Key) || !bytes.Equal(cp.Value, original.Value) {
		t.Errorf("key or value changed:\nkey %q -> %q\nvalue %s\n   -> %s", original.Key, cp.Key, original.Value, cp.Value)
	}
	want := headerMap(original)
	want[retrymeta.HeaderAttempt] = "0"
	want[retrymeta.HeaderDueAt] = strconv.FormatInt(fixedNow().UnixMilli(), 10)
	want[retrymeta.HeaderRedriveCount] = "2"
	delete(want, retrymeta.HeaderErrorStack)
	delete(want, retrymeta.HeaderDLQReason)
	delete(want, retrymeta.HeaderDeadLetteredAt)
	if diff := cmp.Diff(want, headerMap(cp)); diff != "" {
		t.Errorf("headers of the redriven copy (-want +got):\n%s", diff)
	}

	res := c.showOne("1:0").Resolution
	wantRes := &resolution.Entry{
		DeadLetter:   kafkalog.Coord{Topic: dlqTopic, Partition: 1, Offset: 0},
		Action:       resolution.Redriven,
		At:           fixedNow(),
		By:           "alice",
		Target:       &kafkalog.Coord{Topic: retryTopic, Partition: cp.Partition, Offset: cp.Offset},
		RedriveCount: 2,
		Identity:     `"O-1003" orders/4@105 redrive 1`,
	}
	if diff := cmp.Diff(wantRes, res); diff != "" {
		t.Errorf("resolution entry (-want +got):\n%s", diff)
	}

	// Finished: the same command finds nothing pending any more.
	if r := c.run("redrive", "--order-id", "O-1003", "--yes"); r.code != dlq.ExitNoMatch {
		t.Errorf("second redrive: want exit 3, got %s", r)
	}
	if n := len(c.records(retryTopic)); n != 1 {
		t.Errorf("after the second run the retry topic has %d records, want 1", n)
	}
}

func TestRedriveToOriginalSendsAFreshRecordWithProvenance(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.seed(standardSeed()...)
	original := c.records(dlqTopic)[0] // 0:0, O-1001

	r := c.run("redrive", "--order-id", "O-1001", "--to", "original", "--yes")
	if r.code != dlq.ExitOK {
		t.Fatalf("redrive: %s", r)
	}
	got := c.records(ordersTop)
	if len(got) != 1 {
		t.Fatalf("orders topic has %d records, want 1", len(got))
	}
	if !bytes.Equal(got[0].Key, original.Key) || !bytes.Equal(got[0].Value, original.Value) {
		t.Errorf("key or value changed")
	}
	h := headerMap(original)
	want := map[string]string{
		"traceparent":                     h["traceparent"],
		retrymeta.HeaderOriginalTopic:     ordersTop,
		retrymeta.HeaderOriginalPartition: h[retrymeta.HeaderOriginalPartition],
		retrymeta.HeaderOriginalOffset:    h[retrymeta.HeaderOriginalOffset],
		retrymeta.HeaderOriginalTimestamp: h[retrymeta.HeaderOriginalTimestamp],
		retrymeta.HeaderRedriveCount:      "1",
	}
	if diff := cmp.Diff(want, headerMap(got[0])); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	if n := len(c.records(retryTopic)); n != 0 {
		t.Errorf("retry topic has %d records, want none", n)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.seed(standardSeed()...)
	before := map[string]map[int]int64{}
	for _, topic := range []string{dlqTopic, retryTopic, ordersTop} {
		before[topic] = c.topicEnds(topic)
	}
	for _, args := range [][]string{
		{"redrive", "--dry-run"},
		{"redrive", "--to", "original", "--dry-run", "-o", "json"},
		{"resolve", "--note", "x", "--dry-run"},
		{"edit", "0:1", "--set", "data.quantity=4", "--dry-run"},
	} {
		r := c.run(args...)
		if r.code != dlq.ExitOK || !strings.Contains(r.stdout, "dry") && !strings.Contains(r.stdout, "dryRun") {
			t.Errorf("%v: %s", args, r)
		}
	}
	for topic, ends := range before {
		if diff := cmp.Diff(ends, c.topicEnds(topic)); diff != "" {
			t.Errorf("%s changed (-before +after):\n%s", topic, diff)
		}
	}
	if ends := c.topicEnds(resolution.TopicFor(dlqTopic)); ends != nil {
		t.Errorf("the resolution log was created: %v", ends)
	}
	if g := c.groupOffsets(); len(g) != 0 {
		t.Errorf("group offsets committed: %v", g)
	}
	// The plan says what would happen to each letter.
	r := c.run("redrive", "--dry-run", "-o", "json")
	// Two JSON documents: the plan, then the outcome.
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	var plan []render.PlanRow
	var outcome render.Outcome
	if err := dec.Decode(&plan); err != nil {
		t.Fatalf("decode plan: %v\n%s", err, r)
	}
	if err := dec.Decode(&outcome); err != nil {
		t.Fatalf("decode outcome: %v\n%s", err, r)
	}
	wantOutcome := render.Outcome{Command: "redrive", DryRun: true, Selected: 6, Redriven: 4, Refused: 2, Target: retryTopic}
	if diff := cmp.Diff(wantOutcome, outcome); diff != "" {
		t.Errorf("outcome (-want +got):\n%s", diff)
	}
	actions := map[string]string{}
	for _, p := range plan {
		actions[fmt.Sprintf("%d:%d", p.Partition, p.Offset)] = p.Action
	}
	wantActions := map[string]string{"0:0": "redrive", "0:1": "redrive", "1:0": "redrive", "1:1": "redrive", "2:0": "refuse", "2:1": "refuse"}
	if diff := cmp.Diff(wantActions, actions); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
}

func TestLoopGuardRefusesLettersRedrivenTooOften(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.seed(
		letter{partition: 0, orderID: "O-twice", reason: retrymeta.MaxAttempts, class: failure.Transient, attempts: 5, redrives: 2, message: "again"},
		letter{partition: 0, orderID: "O-thrice", reason: retrymeta.MaxAttempts, class: failure.Transient, attempts: 5, redrives: 3, message: "and again"},
	)
	r := c.run("redrive", "--yes")
	if r.code != dlq.ExitOK || !strings.Contains(r.stdout, "redriven 1 of 2") || !strings.Contains(r.stderr, "refused 0:1 (order O-thrice): loop guard") {
		t.Fatalf("redrive: %s", r)
	}
	got := c.records(retryTopic)
	if len(got) != 1 || string(got[0].Key) != "O-twice" || headerMap(got[0])[retrymeta.HeaderRedriveCount] != "3" {
		t.Fatalf("want only O-twice, with redrive count 3; got %d records", len(got))
	}
	// The refused letter stays pending for a person.
	if pos, r := c.listPositions("--status", "pending"); !slices.Equal(pos, []string{"0:1"}) {
		t.Errorf("pending after the guard: %v %s", pos, r)
	}
	// The group's offset stops at the refused letter.
	if g := c.groupOffsets(); g[0] != 1 {
		t.Errorf("group offset of partition 0 = %d, want 1 (the refused letter)", g[0])
	}
	// A person may raise the limit deliberately.
	if r := c.run("redrive", "--max-redrives", "4", "--yes"); r.code != dlq.ExitOK || !strings.Contains(r.stdout, "redriven 1 of 1") {
		t.Errorf("redrive with a higher limit: %s", r)
	}
}

func TestRedriveAsksForConfirmation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     runOpts
		args     []string
		wantCode int
		wantOut  int // records in the retry topic afterwards
	}{
		{"no terminal and no --yes is a usage error", runOpts{}, nil, dlq.ExitUsage, 0},
		{"terminal, answer no", runOpts{stdinTTY: true, stdin: "n\n"}, nil, dlq.ExitError, 0},
		{"terminal, empty answer means no", runOpts{stdinTTY: true, stdin: "\n"}, nil, dlq.ExitError, 0},
		{"terminal, answer yes", runOpts{stdinTTY: true, stdin: "y\n"}, nil, dlq.ExitOK, 1},
		{"--yes without a terminal", runOpts{}, []string{"--yes"}, dlq.ExitOK, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			c.seed(standardSeed()[0])
			r := c.runWith(tc.opts, append([]string{"redrive"}, tc.args...)...)
			if r.code != tc.wantCode {
				t.Fatalf("want exit %d, got %s", tc.wantCode, r)
			}
			if n := len(c.records(retryTopic)); n != tc.wantOut {
				t.Errorf("retry topic has %d records, want %d", n, tc.wantOut)
			}
			if tc.opts.stdinTTY && !strings.Contains(r.stderr, "Redrive 1 dead letters from order-dead-letter to order-retries? [y/N]") {
				t.Errorf("no question asked: %s", r)
			}
		})
	}
}

// manyLetters returns n transient letters spread over the three partitions;
// every other letter of a partition is a permanent one when mixed is true.
func manyLetters(n int, mixed bool) []letter {
	out := make([]letter, n)
	for i := range out {
		l := letter{partition: i % 3, orderID: fmt.Sprintf("O-%05d", i), reason: retrymeta.MaxAttempts, class: failure.Transient, attempts: 5, message: "http-503"}
		if mixed && (i/3)%2 == 1 {
			l.reason, l.class, l.message = retrymeta.PermanentError, failure.Permanent, "validation"
		}
		out[i] = l
	}
	return out
}

// TestRateLimitSpacesRecords checks --rate end to end, on the wall clock,
// with bounds that a loaded -race run meets: a limiter never lets records
// out faster than the rate, but a busy machine can make the run slower.
// The exact spacing is proven on a fake clock by redrive's
// TestLimiterSpacesBatchesOnAFakeClock. It does not run in parallel: the
// other tests of the package would compete for the CPU.
func TestRateLimitSpacesRecords(t *testing.T) {
	const (
		n     = 330
		rate  = 100.0
		burst = 10 // the engine's burst: a tenth of a second
	)
	c := newCluster(t)
	c.seed(manyLetters(n, false)...)
	r := c.runWith(runOpts{now: time.Now}, "redrive", "--rate", "100", "--yes")
	if r.code != dlq.ExitOK {
		t.Fatal(r)
	}
	got := c.records(retryTopic)
	if len(got) != n {
		t.Fatalf("%d records redriven, want %d", len(got), n)
	}
	times := make([]time.Time, len(got))
	for i, m := range got {
		times[i] = m.Time
	}
	slices.SortFunc(times, time.Time.Compare)
	spread := times[len(times)-1].Sub(times[0]).Seconds()
	want := float64(n-burst) / rate // the burst leaves at once, the rest at the rate
	// Never faster than the rate (10% for the timestamps' batching). The
	// upper bound only catches a limiter far too slow: the run's own work
	// takes a fraction of a second, so six times the 3.2 s leaves a loaded
	// machine (6.5 s seen at load 12) room, while a limiter at a sixth of
	// the rate or less would exceed it.
	if spread < 0.9*want || spread > 6*want {
		t.Errorf("%d records spread over %.2fs, want %.2fs (at least %.2fs, at most %.2fs)", n, spread, want, 0.9*want, 6*want)
	}
	// No second holds more than the rate plus the burst, and one batch
	// more: a stall between the limiter and the batch's timestamp can move
	// one batch (at most 2 bursts and a record) into the next second.
	for i := range times {
		j, _ := slices.BinarySearchFunc(times, times[i].Add(time.Second), time.Time.Compare)
		if j-i > int(rate)+3*burst+1 {
			t.Errorf("%d records within one second from %s", j-i, times[i].Format(time.StampMilli))
			break
		}
	}
}

func TestResumeAfterInterruptionRedrivesEachSelectedLetterOnce(t *testing.T) {
	t.Parallel()
	const n = 1500
	c := newCluster(t)
	// Every other letter of each partition is permanent: --error-class
	// transient selects non-contiguous offsets, which a single group offset
	// cannot describe.
	c.seed(manyLetters(n, true)...)
	args := []string{"redrive", "--error-class", "transient", "--rate", "1000", "--yes"}

	// Interrupt once the run is under way.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.whenRecords(retryTopic, 100, cancel)
	r := c.runWith(runOpts{ctx: ctx}, args...)
	if r.code != dlq.ExitError || !strings.Contains(r.stderr, "run the same command again to continue") {
		t.Fatalf("interrupted run: want exit 1 and a hint, got %s", r)
	}
	first := len(c.records(retryTopic))
	if first == 0 || first >= n/2 {
		t.Fatalf("interrupted run redrove %d of %d: want part of them", first, n/2)
	}

	if r := c.run(args[:len(args)-3]...); r.code != dlq.ExitUsage {
		t.Fatalf("rerun without --yes: %s", r)
	}
	r = c.run(append(args[:3:3], "--yes")...)
	if r.code != dlq.ExitOK || !strings.Contains(r.stdout, fmt.Sprintf("redriven %d of %d", n/2-first, n/2-first)) {
		t.Fatalf("rerun: %s", r)
	}
	counts := map[string]int{}
	for _, m := range c.records(retryTopic) {
		counts[string(m.Key)]++
	}
	if len(counts) != n/2 {
		t.Errorf("%d distinct letters redriven, want %d", len(counts), n/2)
	}
	for key, k := range counts {
		if k != 1 {
			t.Errorf("%s redriven %d times", key, k)
		}
	}
	for _, l := range manyLetters(n, true) {
		if l.class == failure.Permanent && counts[l.orderID] > 0 {
			t.Errorf("%s is permanent and was not selected, but was redriven", l.orderID)
		}
	}
	if r := c.run(args...); r.code != dlq.ExitNoMatch {
		t.Errorf("third run: want nothing left (exit 3), got %s", r)
	}
	// The watermark stops at the first permanent letter of each partition.
	if diff := cmp.Diff(map[int]int64{0: 1, 1: 1, 2: 1}, c.groupOffsets()); diff != "" {
		t.Errorf("group offsets (-want +got):\n%s", diff)
	}
	// Once those are resolved too, it reaches the end.
	if r := c.run("resolve", "--error-class", "permanent", "--note", "fixed by hand", "--yes"); r.code != dlq.ExitOK {
		t.Fatal(r)
	}
	if diff := cmp.Diff(map[int]int64{0: n / 3, 1: n / 3, 2: n / 3}, c.groupOffsets()); diff != "" {
		t.Errorf("group offsets after resolving everything (-want +got):\n%s", diff)
	}
}

// backend is a health endpoint whose answer the test switches.
type backend struct {
	status atomic.Int32
	probes atomic.Int32
	srv    *httptest.Server
}

func newBackend(t *testing.T, status int) *backend {
	b := &backend{}
	b.status.Store(int32(status))
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		b.probes.Add(1)
		w.WriteHeader(int(b.status.Load()))
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func TestWhenHealthyWaitsForConsecutiveHealthyProbes(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.seed(manyLetters(60, false)...)
	b := newBackend(t, http.StatusServiceUnavailable)

	done := make(chan result, 1)
	go func() {
		done <- c.run("redrive", "--when-healthy", b.srv.URL, "--probe-interval", "20ms", "--healthy-after", "3", "--yes")
	}()
	// Generous: five probes take 100 ms on an idle machine.
	deadline := time.Now().Add(30 * time.Second)
	for b.probes.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(c.records(retryTopic)); n != 0 {
		t.Fatalf("%d records redriven while the backend was unhealthy", n)
	}
	select {
	case r := <-done:
		t.Fatalf("redrive ended while the backend was unhealthy: %s", r)
	default:
	}
	healthyAt := b.probes.Load()
	b.status.Store(http.StatusOK)
	r := <-done
	if r.code != dlq.ExitOK || !strings.Contains(r.stderr, "backend healthy") {
		t.Fatalf("redrive: %s", r)
	}
	if got := b.probes.Load() - healthyAt; got < 3 {
		t.Errorf("started after %d healthy probes, want 3", got)
	}
	if n := len(c.records(retryTopic)); n != 60 {
		t.Errorf("%d records redriven, want 60", n)
	}
}

func TestWhenHealthyStopsResumablyWhenTheBackendFails(t *testing.T) {
	t.Parallel()
	const n = 300
	c := newCluster(t)
	c.seed(manyLetters(n, false)...)
	b := newBackend(t, http.StatusOK)
	args := []string{"redrive", "--when-healthy", b.srv.URL, "--probe-interval", "20ms", "--rate", "200", "--yes"}

	// The backend fails once the run is under way.
	go c.whenRecords(retryTopic, 50, func() { b.status.Store(http.StatusServiceUnavailable) })
	r := c.run(args...)
	if r.code != dlq.ExitError || !strings.Contains(r.stderr, "turned unhealthy") {
		t.Fatalf("want a stop when the backend fails, got %s", r)
	}
	first := len(c.records(retryTopic))
	if first == 0 || first >= n {
		t.Fatalf("first run redrove %d of %d, want part of them", first, n)
	}
	b.status.Store(http.StatusOK)
	if r := c.run(args...); r.code != dlq.ExitOK {
		t.Fatalf("rerun: %s", r)
	}
	counts := map[string]int{}
	for _, m := range c.records(retryTopic) {
		counts[string(m.Key)]++
	}
	if len(counts) != n {
		t.Errorf("%d distinct letters redriven, want %d", len(counts), n)
	}
	for key, k := range counts {
		if k != 1 {
			t.Errorf("%s redriven %d times", key, k)
		}
	}
}

// whenRecords calls fn once topic holds at least n records (or after 10s).
func (c *cluster) whenRecords(topic string, n int, fn func()) {
	defer fn()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		total := int64(0)
		for _, end := range c.topicEnds(topic) {
			total += end
		}
		if total >= int64(n) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The pipeline writes a dead letter again when the process that wrote it
// died before recording so (docs/contract.md), so a letter can have
// copies, even one written after the first was redriven. A redrive of one
// copy resolves them all: a person sees, and redrives, the dead letter
// once.
func TestARedriveResolvesEveryCopyOfTheDeadLetter(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	dup := letter{partition: 0, orderID: "O-dup", reason: retrymeta.MaxAttempts, class: failure.Transient, attempts: 5, message: "http-503"}
	c.seed(dup, letter{partition: 0, orderID: "O-other", reason: retrymeta.MaxAttempts, class: failure.Transient, attempts: 5, message: "http-503"})
	dup.partition = 1
	c.seed(dup)
	if got, r := c.listPositions("--status", "pending", "--order-id", "O-dup"); len(got) != 2 {
		t.Fatalf("pending copies before the redrive = %v (%s), want 2", got, r)
	}

	if r := c.run("redrive", "--order-id", "O-dup", "--yes"); r.code != dlq.ExitOK || !strings.Contains(r.stdout, "redriven 1 of 1") {
		t.Fatalf("redrive: %s", r)
	}
	if n := len(c.records(retryTopic)); n != 1 {
		t.Errorf("%d records redriven for two copies of one dead letter, want 1", n)
	}
	// A copy written after the redrive (its writer's process died before
	// recording the first write) is resolved too; another order is not.
	dup.partition = 2
	c.seed(dup)
	if got, r := c.listPositions("--status", "pending"); len(got) != 1 {
		t.Errorf("pending after the redrive and a late copy = %v (%s), want only O-other's", got, r)
	}
	if r := c.run("redrive", "--order-id", "O-dup", "--yes"); r.code != dlq.ExitNoMatch {
		t.Errorf("second redrive of O-dup: want exit 3 (nothing pending), got %s", r)
	}
}
