package healthgate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Config describes what to probe and how often.
type Config struct {
	// URL answers 2xx when the backend is healthy.
	URL string
	// Client sends the probes; nil means a zero http.Client (each probe
	// is bounded by Timeout anyway).
	Client *http.Client
	// Interval between probes; 0 means 1s.
	Interval time.Duration
	// Timeout of one probe; 0 means 2s.
	Timeout time.Duration
	// HealthyAfter consecutive 2xx answers open the gate; 0 means 3.
	HealthyAfter int
	// UnhealthyAfter consecutive failures close it; 0 means 1.
	UnhealthyAfter int
	// OnChange, if set, is called when the gate opens or closes, with the
	// last probe's outcome (nil when it succeeded).
	OnChange func(healthy bool, probeErr error)
}

// Gate tracks the health of one URL. Create it with New, run Run in a
// goroutine, and ask Healthy or WaitHealthy.
type Gate struct {
	cfg Config

	mu      sync.Mutex
	healthy bool
	succ    int
	fail    int
	lastErr error
	changed chan struct{} // closed and replaced on every open or close
}

// New returns a closed gate: nothing is healthy until proven so.
func New(cfg Config) (*Gate, error) {
	if cfg.URL == "" {
		return nil, errors.New("health gate: empty URL")
	}
	req, err := http.NewRequest(http.MethodGet, cfg.URL, nil)
	if err != nil || req.URL.Host == "" {
		return nil, fmt.Errorf("health gate: %q is not an http(s) URL with a host", cfg.URL)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.HealthyAfter <= 0 {
		cfg.HealthyAfter = 3
	}
	if cfg.UnhealthyAfter <= 0 {
		cfg.UnhealthyAfter = 1
	}
	return &Gate{cfg: cfg, changed: make(chan struct{})}, nil
}

// URL returns the probed URL.
func (g *Gate) URL() string { return g.cfg.URL }

// HealthyAfter returns how many consecutive 2xx answers open the gate.
func (g *Gate) HealthyAfter() int { return g.cfg.HealthyAfter }

// Run probes until ctx ends.
func (g *Gate) Run(ctx context.Context) {
	t := time.NewTicker(g.cfg.Interval)
	defer t.Stop()
	for {
		err := g.Probe(ctx)
		if ctx.Err() != nil {
			// Our own shutdown cut the probe short: that says nothing
			// about the backend, so it must not close the gate (or log
			// "backend unhealthy" on the way out).
			return
		}
		g.Record(err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Probe sends one GET and returns nil for a 2xx answer.
func (g *Gate) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.cfg.URL, nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", g.cfg.URL, err)
	}
	resp, err := g.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", g.cfg.URL, err)
	}
	// Drain a little so the connection is reused; a health body is small.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("probe %s: %s", g.cfg.URL, resp.Status)
	}
	return nil
}

// Record folds one probe's outcome into the state. Run calls it after each
// probe; a caller that schedules its own probes calls it too.
func (g *Gate) Record(err error) {
	g.mu.Lock()
	was := g.healthy
	g.lastErr = err
	if err == nil {
		g.succ++
		g.fail = 0
		if g.succ >= g.cfg.HealthyAfter {
			g.healthy = true
		}
	} else {
		g.fail++
		g.succ = 0
		if g.fail >= g.cfg.UnhealthyAfter {
			g.healthy = false
		}
	}
	now := g.healthy
	if now != was {
		close(g.changed)
		g.changed = make(chan struct{})
	}
	onChange := g.cfg.OnChange
	g.mu.Unlock()
	if now != was && onChange != nil {
		onChange(now, err)
	}
}

// Healthy reports whether the gate is open.
func (g *Gate) Healthy() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.healthy
}

// LastError returns the outcome of the last probe.
func (g *Gate) LastError() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lastErr
}

// WaitHealthy blocks until the gate is open or ctx ends. Run must be
// running.
func (g *Gate) WaitHealthy(ctx context.Context) error {
	for {
		g.mu.Lock()
		healthy, changed := g.healthy, g.changed
		g.mu.Unlock()
		if healthy {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s to be healthy: %w", g.cfg.URL, ctx.Err())
		case <-changed:
		}
	}
}
