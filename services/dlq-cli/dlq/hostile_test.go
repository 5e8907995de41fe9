package dlq_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
)

// hostile holds what a terminal acts on: clear the screen (CSI), set the
// title and write the clipboard (OSC 52), reset the terminal (ESC c), the
// 8-bit CSI (U+009B), carriage return and backspace (overwrite what was
// printed), and BEL.
const hostile = "\x1b[2J\x1b]0;owned\x07\x1b]52;c;cm0gLXJmIH4=\x1b\\\x1bc\u009b31m\r\bok\a"

// controls reports the first terminal control in s that is not newline or
// tab, or "" when there is none.
func controls(s string) string {
	for _, r := range s {
		if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			return string(r)
		}
	}
	return ""
}

func TestNoTerminalControlFromARecordReachesTheTerminal(t *testing.T) {
	c := newCluster(t)
	c.seed(letter{
		partition: 0, orderID: "O-" + hostile, reason: retrymeta.MaxAttempts, class: failure.Transient, attempts: 5,
		message: "http-503 " + hostile,
		value:   []byte(`{"type":"OrderCreated","subject":"O-1","data":{"note":"` + hostile + `"}}`),
		headers: []kafka.Header{{Key: "x-app" + hostile, Value: []byte(hostile)}},
	})
	c.appendDead(kafka.Message{Key: []byte(hostile), Value: []byte("plain " + hostile), Headers: []kafka.Header{
		{Key: "kafka_dlt-exception-message", Value: []byte(hostile)},
		{Key: "kafka_dlt-exception-stacktrace", Value: []byte("at " + hostile)},
		{Key: "kafka_dlt-original-topic", Value: []byte("payments")},
	}, Time: t0})
	for _, args := range [][]string{
		{"list"},
		{"list", "-o", "json"},
		{"list", "-o", "jsonl"},
		{"show", "0:0"},
		{"show", "0:1"},
		{"show", "0:0", "-o", "json"},
		{"stats"},
		{"export"},
		{"redrive", "--dry-run", "--to", "original"},
	} {
		r := c.run(args...)
		if bad := controls(r.stdout); bad != "" {
			t.Errorf("%v printed the control %U on stdout:\n%q", args, []rune(bad)[0], r.stdout)
		}
		if bad := controls(r.stderr); bad != "" {
			t.Errorf("%v printed the control %U on stderr:\n%q", args, []rune(bad)[0], r.stderr)
		}
	}

	// watch logs what it leaves for a person and what it redrives.
	b := newBackend(t, http.StatusOK)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan result, 1)
	go func() {
		done <- c.runWith(runOpts{ctx: ctx, now: time.Now}, "watch", "--when-healthy", b.srv.URL, "--probe-interval", "20ms", "--poll-interval", "50ms")
	}()
	for len(c.records(retryTopic)) < 1 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	r := <-done
	if !strings.Contains(r.stderr, "redriven") {
		t.Fatalf("watch did not redrive: %s", r)
	}
	if bad := controls(r.stderr); bad != "" {
		t.Errorf("watch logged the control %U:\n%q", []rune(bad)[0], r.stderr)
	}
}
