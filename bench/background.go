package main

import (
	"context"
	"errors"
	"time"
)

// background is a function running on its own goroutine until stopped.
type background struct {
	cancel context.CancelFunc
	done   chan error
	err    error
	ended  bool
}

// goRun runs f until stop is called (or f returns).
func goRun(ctx context.Context, f func(ctx context.Context) error) *background {
	ctx, cancel := context.WithCancel(ctx)
	b := &background{cancel: cancel, done: make(chan error, 1)}
	go func() { b.done <- f(ctx) }()
	return b
}

// stop cancels f and returns its error; later calls return the same.
func (b *background) stop() error {
	if b.ended {
		return b.err
	}
	b.ended = true
	b.cancel()
	select {
	case b.err = <-b.done:
	case <-time.After(time.Minute):
		b.err = errors.New("did not stop within a minute")
	}
	return b.err
}

// failed returns f's error if it already returned.
func (b *background) failed() error {
	if b.ended {
		return b.err
	}
	select {
	case err := <-b.done:
		b.ended, b.err = true, err
		if err == nil {
			err = errors.New("stopped on its own")
		}
		return err
	default:
		return nil
	}
}
