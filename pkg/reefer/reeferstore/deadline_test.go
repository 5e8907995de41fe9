package reeferstore_test

import (
	"net"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
)

// A server (or proxy) that accepts the connection and never answers must
// not hang the start: connect_timeout, added to every Postgres URL, turns
// it into a transient error.
func TestOpenGivesUpOnAServerThatNeverAnswers(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var held []net.Conn // accepted and never answered
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()

	type result struct {
		err  error
		took time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		s, err := reeferstore.Open(t.Context(), "postgres://u:pw@"+l.Addr().String()+"/db?sslmode=disable", nil)
		if err == nil {
			_ = s.Close()
		}
		done <- result{err, time.Since(start)}
	}()
	// connect_timeout is 15s; a minute leaves room for a loaded machine
	// and still fails a start that waits for ever.
	select {
	case r := <-done:
		if r.err == nil || failure.ClassOf(r.err) != failure.Transient {
			t.Errorf("Open = %v (class %q), want a transient error", r.err, failure.ClassOf(r.err))
		}
		t.Logf("Open gave up after %s: %v", r.took, r.err)
	case <-time.After(time.Minute):
		t.Fatal("Open still waits after a minute on a server that never answers")
	}
}
