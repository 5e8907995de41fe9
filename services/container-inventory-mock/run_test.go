package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRunRefusesABadConfigurationBeforeListening(t *testing.T) {
	var out bytes.Buffer
	env := map[string]string{"HTTP_ADDR": "127.0.0.1:0", "FAULT_PROFILE": `{"errorRate": 9}`}
	err := run(t.Context(), func(k string) string { return env[k] }, &out)
	if err == nil || !strings.Contains(err.Error(), "FAULT_PROFILE") {
		t.Errorf("run error = %v, want one naming FAULT_PROFILE", err)
	}
	if out.Len() != 0 {
		t.Errorf("run logged before refusing: %s", out.String())
	}
}

func TestRunServesUntilTheContextIsDone(t *testing.T) {
	env := map[string]string{"HTTP_ADDR": "127.0.0.1:0", "LOG_FORMAT": "json", "ADMIN_TOKEN": "s3cret"}
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, out) }()

	addr := waitForLog(t, out, "inventory mock listening")["addr"]
	resp, err := http.Get("http://" + addr.(string) + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz = %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(30 * time.Second): // generous: a loaded -race run
		t.Fatal("run did not return after the context was cancelled")
	}
	waitForLog(t, out, "inventory mock stopped")
	if strings.Contains(out.String(), "s3cret") {
		t.Error("the admin token was logged")
	}
}

// waitForLog returns the first JSON log record with msg, waiting for it.
func waitForLog(t *testing.T, out *syncBuffer, msg string) map[string]any {
	t.Helper()
	// A poll for something that must happen: the bound only matters when it
	// never does, so it is far above what a loaded -race run needs.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		sc := bufio.NewScanner(strings.NewReader(out.String()))
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
				return rec
			}
		}
	}
	t.Fatalf("no log record %q in:\n%s", msg, out.String())
	return nil
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
