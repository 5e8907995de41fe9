package pending_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/kafkalog"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/pending"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/resolution"
)

const topic = "order-dead-letter"

func setup(t *testing.T) resolution.Store {
	t.Helper()
	b, err := devbroker.Start(t.Context(), devbroker.Config{Topics: map[string]int{topic: 2}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := kafkalog.Open(kafkaclient.Config{Brokers: []string{b.Addr()}, ClientID: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Close()
		b.Close()
	})
	return resolution.Store{Log: l, Topic: topic, ResolutionsTopic: resolution.TopicFor(topic), Group: "dlq-redrive"}
}

// letter is a dead letter as the services write it.
func letter(order string, reason retrymeta.Reason, class failure.Class) kafka.Message {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h := retrymeta.Apply(nil, retrymeta.Meta{
		Attempt: 5, FirstFailureAt: at, LastFailureAt: at, ErrorClass: class, ErrorMessage: "boom",
		OriginalTopic: "orders", OriginalTimestamp: at, DLQReason: reason, DeadLetteredAt: at,
	})
	return kafka.Message{Key: []byte(order), Value: []byte(`{}`), Headers: h, Time: at}
}

func appendTo(t *testing.T, s resolution.Store, partition int, msgs ...kafka.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if _, err := s.Log.AppendTo(ctx, topic, partition, msgs); err != nil {
		t.Fatal(err)
	}
}

func update(t *testing.T, c *pending.Counter) map[pending.Kind]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := c.Update(ctx); err != nil {
		t.Fatal(err)
	}
	counts, _ := c.Counts()
	return counts
}

var (
	maxTransient  = pending.Kind{Reason: "max-attempts", Class: "transient"}
	poisonPerm    = pending.Kind{Reason: "poison", Class: "permanent"}
	refusedPerm   = pending.Kind{Reason: "permanent-error", Class: "permanent"}
	malformedKind = pending.Kind{Reason: "max-attempts", Class: "malformed"}
)

func TestCountsPendingLettersAsTheyArriveAndAreHandled(t *testing.T) {
	s := setup(t)
	ctx := t.Context()
	c := pending.NewCounter(s)
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Errorf("exported %d series before the first count, want none: a zero would say nothing is pending", n)
	}

	bad := letter("O-4", retrymeta.MaxAttempts, failure.Transient)
	bad.Headers = append(bad.Headers, kafka.Header{Key: retrymeta.HeaderAttempt, Value: []byte("many")})
	appendTo(t, s, 0, letter("O-1", retrymeta.MaxAttempts, failure.Transient), letter("O-2", retrymeta.MaxAttempts, failure.Transient), bad)
	appendTo(t, s, 1, letter("O-3", retrymeta.Poison, failure.Permanent))
	want := map[pending.Kind]int{maxTransient: 2, poisonPerm: 1, malformedKind: 1}
	if diff := cmp.Diff(want, update(t, c)); diff != "" {
		t.Fatalf("first count (-want +got):\n%s", diff)
	}

	// A person resolves O-1 (an entry in the resolution log); dlq watch
	// moves the group past O-3 on partition 1; a new letter arrives.
	if err := s.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := s.Load(ctx, []int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Record(ctx, st, []resolution.Entry{{DeadLetter: kafkalog.Coord{Topic: topic, Partition: 0, Offset: 0},
		Action: resolution.Resolved, Note: "test", At: time.Now(), By: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Log.CommitGroup(ctx, s.Group, topic, map[int]int64{1: 1}); err != nil {
		t.Fatal(err)
	}
	appendTo(t, s, 1, letter("O-5", retrymeta.PermanentError, failure.Permanent))
	want = map[pending.Kind]int{maxTransient: 1, refusedPerm: 1, malformedKind: 1}
	if diff := cmp.Diff(want, update(t, c)); diff != "" {
		t.Errorf("after a resolution, a group commit and a new letter (-want +got):\n%s", diff)
	}

	// Every kind the pipeline produces is exported, zeros included, so
	// that delta() sees the first dead letter of a kind.
	const exposition = `# HELP dlq_dead_letters_pending Dead letters neither redriven nor resolved (no entry in the resolution log, offset not below the dlq-redrive group's), by x-dlq-reason and x-error-class.
# TYPE dlq_dead_letters_pending gauge
dlq_dead_letters_pending{class="malformed",reason="max-attempts"} 1
dlq_dead_letters_pending{class="permanent",reason="max-attempts"} 0
dlq_dead_letters_pending{class="permanent",reason="permanent-error"} 1
dlq_dead_letters_pending{class="permanent",reason="poison"} 0
dlq_dead_letters_pending{class="transient",reason="max-attempts"} 1
dlq_dead_letters_pending{class="transient",reason="permanent-error"} 0
dlq_dead_letters_pending{class="transient",reason="poison"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(exposition)); err != nil {
		t.Error(err)
	}
}

func TestServeExportsTheGaugeAndBuildInfo(t *testing.T) {
	s := setup(t)
	appendTo(t, s, 0, letter("O-1", retrymeta.MaxAttempts, failure.Transient))
	addr, stop, err := pending.Serve(t.Context(), pending.Config{Store: s, Addr: "127.0.0.1:0", Every: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	scrape := func() string {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(body)
	}
	// Counting runs in the background: wait for the first round (20 s is
	// generous for one read of an embedded broker on a busy machine).
	deadline := time.Now().Add(20 * time.Second)
	body := scrape()
	for !strings.Contains(body, `dlq_dead_letters_pending{class="transient",reason="max-attempts"} 1`) {
		if time.Now().After(deadline) {
			t.Fatalf("no pending count of 1 after 20 s:\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
		body = scrape()
	}
	if !strings.Contains(body, "dlq_build_info{goversion=") {
		t.Errorf("no dlq_build_info in:\n%s", body)
	}
	// Later letters are counted by later rounds.
	appendTo(t, s, 1, letter("O-2", retrymeta.MaxAttempts, failure.Transient))
	for !strings.Contains(body, `dlq_dead_letters_pending{class="transient",reason="max-attempts"} 2`) {
		if time.Now().After(deadline.Add(20 * time.Second)) {
			t.Fatalf("the second letter is not counted:\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
		body = scrape()
	}
}
