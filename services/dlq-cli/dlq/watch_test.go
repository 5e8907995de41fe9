package dlq_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/dlq"
)

func TestResolveMarksLettersWithANote(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.seed(standardSeed()...)
	if r := c.run("resolve", "--error-class", "permanent", "--note", "fixed in the ERP by hand"); r.code != dlq.ExitUsage {
		t.Fatalf("without --yes off a terminal: %s", r)
	}
	r := c.runWith(runOpts{stdinTTY: true, stdin: "yes\n"}, "resolve", "--error-class", "permanent", "--note", "fixed in the ERP by hand")
	if r.code != dlq.ExitOK || !strings.Contains(r.stdout, "marked 2 of 2") {
		t.Fatalf("resolve: %s", r)
	}
	if pos, r := c.listPositions("--status", "resolved"); strings.Join(pos, " ") != "0:1 1:1" {
		t.Errorf("resolved: %v %s", pos, r)
	}
	if res := c.showOne("1:1").Resolution; res == nil || res.Note != "fixed in the ERP by hand" || res.By != "alice" {
		t.Errorf("resolution of 1:1: %+v", res)
	}
	// Nothing was published, and a redrive leaves resolved letters alone.
	if n := len(c.records(retryTopic)); n != 0 {
		t.Errorf("resolve published %d records", n)
	}
	if r := c.run("redrive", "--yes"); r.code != dlq.ExitOK {
		t.Fatal(r)
	}
	for _, m := range c.records(retryTopic) {
		if k := string(m.Key); k == "O-1002" || k == "O-1004" {
			t.Errorf("resolved letter %s was redriven", k)
		}
	}
}

func TestWatchRedrivesTransientLettersWhileTheBackendIsHealthy(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.seed(
		letter{partition: 0, orderID: "O-t1", reason: retrymeta.MaxAttempts, class: failure.Transient, attempts: 5, message: "http-503"},
		letter{partition: 1, orderID: "O-p1", reason: retrymeta.PermanentError, class: failure.Permanent, attempts: 1, quantity: -1, message: "validation"},
		letter{partition: 2, orderID: "O-t2", reason: retrymeta.MaxAttempts, class: failure.Transient, attempts: 5, message: "timeout"},
		letter{partition: 2, orderID: "O-loop", reason: retrymeta.MaxAttempts, class: failure.Transient, attempts: 5, redrives: 3, message: "http-503"},
	)
	b := newBackend(t, http.StatusOK)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan result, 1)
	go func() {
		done <- c.runWith(runOpts{ctx: ctx, now: time.Now},
			"watch", "--when-healthy", b.srv.URL, "--probe-interval", "20ms", "--poll-interval", "50ms")
	}()

	waitFor := func(n int) {
		t.Helper()
		// Generous: the bound matters only when the records never come.
		deadline := time.Now().Add(60 * time.Second)
		for len(c.records(retryTopic)) < n {
			if time.Now().After(deadline) {
				t.Fatalf("waited for %d redriven records, have %d", n, len(c.records(retryTopic)))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor(2)
	// A new transient dead letter arrives while watch runs.
	c.seed(letter{partition: 0, orderID: "O-t3", reason: retrymeta.MaxAttempts, class: failure.Transient, attempts: 5, message: "http-503"})
	waitFor(3)

	// The backend goes down: new dead letters wait.
	b.status.Store(http.StatusServiceUnavailable)
	probes := b.probes.Load()
	for b.probes.Load() < probes+3 {
		time.Sleep(10 * time.Millisecond)
	}
	c.seed(letter{partition: 1, orderID: "O-t4", reason: retrymeta.MaxAttempts, class: failure.Transient, attempts: 5, message: "http-503"})
	time.Sleep(300 * time.Millisecond)
	if n := len(c.records(retryTopic)); n != 3 {
		t.Fatalf("%d records redriven while the backend was down, want still 3", n)
	}
	b.status.Store(http.StatusOK)
	waitFor(4)

	cancel()
	r := <-done
	if r.code != dlq.ExitOK {
		t.Fatalf("watch: %s", r)
	}
	got := map[string]int{}
	for _, m := range c.records(retryTopic) {
		got[string(m.Key)]++
	}
	for _, k := range []string{"O-t1", "O-t2", "O-t3", "O-t4"} {
		if got[k] != 1 {
			t.Errorf("%s redriven %d times, want once", k, got[k])
		}
	}
	if got["O-p1"] != 0 || got["O-loop"] != 0 {
		t.Errorf("permanent or looping letters redriven: %v", got)
	}
	// One log line per action, each letter reported once.
	for _, want := range []struct {
		line  string
		count int
	}{
		{`msg=redriven position=0:0 order=O-t1`, 1},
		{`msg="left for a person" position=1:0 order=O-p1`, 1},
		{`msg="refused, left for a person" position=2:1 order=O-loop`, 1},
		{`msg="backend healthy: redriving"`, 2},
		{`msg="backend unhealthy: paused"`, 1},
		{`msg=stopped redriven=4 left_for_a_person=2`, 1},
	} {
		if got := strings.Count(r.stderr, want.line); got != want.count {
			t.Errorf("log line %q appears %d times, want %d:\n%s", want.line, got, want.count, r.stderr)
		}
	}

	// A restarted watch finds nothing new to do.
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	if r := c.runWith(runOpts{ctx: ctx2, now: time.Now}, "watch", "--when-healthy", b.srv.URL, "--probe-interval", "20ms", "--poll-interval", "50ms"); r.code != dlq.ExitOK {
		t.Fatalf("second watch: %s", r)
	}
	if n := len(c.records(retryTopic)); n != 4 {
		t.Errorf("second watch redrove again: %d records", n)
	}
	// What is left is exactly what needs a person.
	pending, _ := c.listPositions("--status", "pending")
	if strings.Join(pending, " ") != "1:0 2:1" {
		t.Errorf("pending after watch: %v", pending)
	}
}
