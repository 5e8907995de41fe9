package demo

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/reefer/inventory"
)

// Config is the demo's command line.
type Config struct {
	// Orders is the number of orders sent in each of the phases 1, 2 and 3.
	Orders int
	// Permanent is the number of orders the inventory refuses for good
	// (sent at the start of phase 3).
	Permanent int
	// Seed makes the orders and the inventory's random faults reproducible.
	Seed uint64
	// Speed scales every delay: 2 runs twice as fast, 0.5 half as fast.
	Speed float64
	// KeepRunning leaves everything up after the scenario, prints the
	// addresses, and waits for the context to end (Ctrl-C).
	KeepRunning bool
	// PostgresURL, when set, replaces the SQLite file.
	PostgresURL string
	// Brokers, when set, replaces the embedded broker (host:port list).
	Brokers []string
	// ChartPath is where the timeline PNG goes; empty means the OS temp dir.
	ChartPath string
	// Quiet prints only the phase titles, the summary and the verdict.
	Quiet bool
	// Trace is the order whose trace is printed at the end, as a text
	// waterfall; empty means one that was retried, dead-lettered and
	// redriven (or, failing that, the most travelled one). "none" prints
	// none.
	Trace string

	// Out receives the narration; Live says it is a terminal whose status
	// line can be redrawn in place, Width its width in columns (0: 100).
	Out   io.Writer
	Live  bool
	Width int
	// Timeout bounds the scenario (not --keep-running's wait); 0 means
	// 3 minutes scaled by the speed. A longer one also lets each phase
	// wait up to a quarter of it for its orders.
	Timeout time.Duration
}

// Defaults of the command line.
const (
	DefaultOrders    = 200
	DefaultPermanent = 5
	DefaultSeed      = 42
	DefaultSpeed     = 1.0
)

// Validate reports every bad value, naming the flag.
func (c Config) Validate() error {
	var errs []error
	if c.Orders < 1 || c.Orders > 5000 {
		errs = append(errs, fmt.Errorf("--orders %d: want 1 to 5000", c.Orders))
	}
	if c.Permanent < 0 || c.Permanent > 100 {
		errs = append(errs, fmt.Errorf("--permanent %d: want 0 to 100", c.Permanent))
	}
	if !(c.Speed >= 0.1 && c.Speed <= 20) || math.IsNaN(c.Speed) {
		errs = append(errs, fmt.Errorf("--speed %g: want 0.1 (ten times slower) to 20 (twenty times faster)", c.Speed))
	}
	if c.PostgresURL != "" {
		u, err := url.Parse(c.PostgresURL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
			errs = append(errs, errors.New("--postgres: want a URL such as postgres://user:pass@localhost:5432/reefers?sslmode=disable"))
		}
	}
	for _, b := range c.Brokers {
		if b == "" || !strings.Contains(b, ":") {
			errs = append(errs, fmt.Errorf("--brokers %q: want host:port[,host:port...]", strings.Join(c.Brokers, ",")))
			break
		}
	}
	if c.Out == nil {
		errs = append(errs, errors.New("demo: no output writer"))
	}
	return errors.Join(errs...)
}

// timing is every delay of the demo, scaled by the speed.
type timing struct {
	orderEvery    time.Duration // between two orders
	retryBase     time.Duration // RETRY_BASE_DELAY
	retryMax      time.Duration // RETRY_MAX_DELAY
	maxAttempts   int           // RETRY_MAX_ATTEMPTS
	probeInterval time.Duration // dlq --probe-interval
	pause         time.Duration // a breath between phases, to read the screen
	refresh       time.Duration // status line redraw
	sample        time.Duration // tracker time series
	settle        time.Duration // bound on waiting for a phase's orders
}

func (c Config) timing() timing {
	s := func(d time.Duration) time.Duration { return time.Duration(float64(d) / c.Speed) }
	return timing{
		orderEvery: s(10 * time.Millisecond),
		retryBase:  s(200 * time.Millisecond),
		// Not scaled: the services' circuit breakers stay open for
		// inventory.DefaultOpenTimeout and answer with that Retry-After.
		// A cap below it would cut the Retry-After short, and a retry
		// would burn its attempts against an open breaker.
		retryMax:      inventory.DefaultOpenTimeout,
		maxAttempts:   4,
		probeInterval: s(300 * time.Millisecond),
		pause:         s(1200 * time.Millisecond),
		refresh:       100 * time.Millisecond,
		sample:        max(s(100*time.Millisecond), 20*time.Millisecond),
		settle:        max(s(45*time.Second)+30*time.Second, c.Timeout/4),
	}
}
