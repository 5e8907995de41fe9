package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// The hog must stop by itself (-for), and say how busy it kept the cores.
func TestHogSpinsUntilItsLimit(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-workers", "1", "-for", "300ms"}, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, "1 workers spinning") || !strings.Contains(got, "cores busy on average") {
		t.Errorf("output:\n%s", got)
	}
}

func TestHogStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-workers", "1"}, &bytes.Buffer{}) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute): // generous: a loaded -race run; the default -for is 2 h
		t.Fatal("the hog did not stop when cancelled")
	}
}

func TestHogRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-workers", "0"}, {"-for", "0s"}, {"-nope"}} {
		if err := run(context.Background(), args, &bytes.Buffer{}); err == nil {
			t.Errorf("run(%q) = nil, want an error", args)
		}
	}
}
