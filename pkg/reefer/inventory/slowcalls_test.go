package inventory_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/inventory"
)

// hangingServer answers at once until hang is set; then it holds every
// call until the client gives up, as a legacy service that stopped
// answering does. delay, when set, is added to every answer.
type hangingServer struct {
	*httptest.Server
	hang  atomic.Bool
	delay atomic.Int64 // nanoseconds
}

func newHangingServer(t *testing.T) *hangingServer {
	s := &hangingServer{}
	stop := make(chan struct{})
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.hang.Load() {
			select {
			case <-r.Context().Done():
			case <-stop:
			}
			return
		}
		if d := time.Duration(s.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(func() { close(stop); s.Close() })
	return s
}

// warm makes n successful calls, so the client learns how long one takes.
func warm(t *testing.T, c *inventory.Client, n int) {
	t.Helper()
	for i := range n {
		if err := c.Allocate(t.Context(), "C-0001", "O-warm"); err != nil {
			t.Fatalf("warm-up call %d: %v", i, err)
		}
	}
}

// allAtOnce runs n Allocate calls at once and returns their errors and
// the time the last one took.
func allAtOnce(t *testing.T, c *inventory.Client, n int) ([]error, time.Duration) {
	errs := make([]error, n)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = c.Allocate(t.Context(), "C-0001", "O-1") })
	}
	wg.Wait()
	return errs, time.Since(start)
}

// An inventory that starts hanging: without the slow-call trip every call
// in flight waits its whole timeout (here 20 s) before the breaker hears
// of a failure, and the service's lanes all stand still. With it, as
// soon as MaxFailures calls are in flight past the threshold (the 500 ms
// floor here: healthy calls take microseconds), every call fails at once
// as inventory-slow, and the breaker opens.
func TestAHangingInventoryTripsTheBreakerLongBeforeTheTimeout(t *testing.T) {
	srv := newHangingServer(t)
	const timeout = 20 * time.Second
	c := newClient(t, inventory.Config{BaseURL: srv.URL, Timeout: timeout})
	warm(t, c, 30)

	srv.hang.Store(true)
	errs, took := allAtOnce(t, c, 32)
	for i, err := range errs {
		if failure.ClassOf(err) != failure.Transient || failure.ReasonOf(err) != inventory.ReasonSlow {
			t.Errorf("call %d = %v (class %q, reason %q), want transient %s", i, err, failure.ClassOf(err), failure.ReasonOf(err), inventory.ReasonSlow)
		}
	}
	// The trip comes at the 500 ms floor; half the timeout is far above
	// that and far below the 20 s every lane waited before.
	if took > timeout/2 {
		t.Errorf("the calls took %s to fail, with a %s timeout: the trip did not cut the stall", took, timeout)
	}
	if got := c.BreakerState(); got != inventory.StateOpen {
		t.Errorf("breaker %s after the trip, want open", got)
	}
}

// A call that is slow alone is not a hanging inventory: fewer than
// MaxFailures calls past the threshold at once are left to their timeout
// and succeed.
func TestFewSlowCallsAtOnceAreLeftToTheirTimeout(t *testing.T) {
	srv := newHangingServer(t)
	c := newClient(t, inventory.Config{BaseURL: srv.URL, Timeout: 10 * time.Second})
	warm(t, c, 30)

	srv.delay.Store(int64(800 * time.Millisecond)) // past the 500 ms floor
	errs, _ := allAtOnce(t, c, inventory.DefaultMaxFailures-1)
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d = %v, want success: %d slow calls at once do not trip", i, err, inventory.DefaultMaxFailures-1)
		}
	}
	if got := c.BreakerState(); got != inventory.StateClosed {
		t.Errorf("breaker %s, want closed", got)
	}
}

// An inventory that is slow but answers (the demo's flaky preset: 250 to
// 750 ms) raises the threshold it is judged by: many calls at once at
// the learnt pace do not trip.
func TestTheThresholdFollowsASlowButHealthyInventory(t *testing.T) {
	srv := newHangingServer(t)
	srv.delay.Store(int64(400 * time.Millisecond))
	c := newClient(t, inventory.Config{BaseURL: srv.URL, Timeout: 10 * time.Second})
	// Learnt one call at a time, then 32 at once at the same pace.
	warm(t, c, 25)
	errs, _ := allAtOnce(t, c, 32)
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d = %v, want success at the learnt pace", i, err)
		}
	}
}

// Before enough calls have been seen, nothing is known about the
// inventory's pace: the threshold is the timeout, and a hang at start-up
// costs one timeout, as before.
func TestNoTripBeforeThePaceIsKnown(t *testing.T) {
	srv := newHangingServer(t)
	srv.hang.Store(true)
	const timeout = 300 * time.Millisecond
	c := newClient(t, inventory.Config{BaseURL: srv.URL, Timeout: timeout})
	errs, _ := allAtOnce(t, c, 16)
	for i, err := range errs {
		if failure.ReasonOf(err) != "timeout" {
			t.Errorf("call %d = %v (reason %q), want a plain timeout", i, err, failure.ReasonOf(err))
		}
	}
}

// SlowCallFloor < 0 turns the trip off.
func TestTheSlowCallTripCanBeTurnedOff(t *testing.T) {
	srv := newHangingServer(t)
	const timeout = 700 * time.Millisecond
	c := newClient(t, inventory.Config{BaseURL: srv.URL, Timeout: timeout, SlowCallFloor: -1})
	warm(t, c, 30)
	srv.hang.Store(true)
	errs, took := allAtOnce(t, c, 16)
	for i, err := range errs {
		if failure.ReasonOf(err) != "timeout" {
			t.Errorf("call %d = %v (reason %q), want a plain timeout", i, err, failure.ReasonOf(err))
		}
	}
	if took < timeout {
		t.Errorf("calls failed after %s, before the %s timeout, with the trip off", took, timeout)
	}
}
