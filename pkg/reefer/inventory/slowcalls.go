package inventory

import (
	"context"
	"errors"
	"sync"
	"time"
)

// An inventory that hangs instead of failing costs more than one that
// fails: every call waits its whole timeout before the circuit breaker
// hears of a failure, so for the first INVENTORY_TIMEOUT every lane of the
// service is stuck and its input stops. slowCalls cuts that stall short.
// It learns how long a healthy call takes (a smoothed mean and deviation
// of successful calls, as TCP estimates its retransmission timeout), and
// when trip calls are in flight at once for longer than
// threshold = clamp(max(mean + 4 deviations, 2 means), floor, timeout)
// (twice the mean: a steady pace has almost no deviation, and a burst of
// calls opening new connections runs a little slower), it cancels every
// call in flight: they fail at once as transient "inventory-slow", which
// opens the breaker. One slow call alone is left to its timeout: only
// many at once say the inventory stopped answering.

// errSlowTrip is the cause of the calls slowCalls cancels.
var errSlowTrip = errors.New("calls in flight past the slow-call threshold")

// slowCalls watches the calls in flight. Its zero value is not usable;
// see newSlowCalls.
type slowCalls struct {
	floor, ceiling time.Duration
	trip           int

	mu       sync.Mutex
	inFlight map[uint64]context.CancelCauseFunc
	next     uint64
	slow     int // calls in flight past the threshold
	// mean and dev estimate a successful call's duration; samples counts
	// them (the threshold is the ceiling until there are enough).
	mean, dev time.Duration
	samples   int
}

// minSamples is how many successful calls the estimate needs before the
// threshold drops below the ceiling.
const minSamples = 20

func newSlowCalls(floor, ceiling time.Duration, trip int) *slowCalls {
	return &slowCalls{floor: floor, ceiling: ceiling, trip: trip, inFlight: map[uint64]context.CancelCauseFunc{}}
}

// threshold is how long a call may run before it counts as slow.
func (s *slowCalls) threshold() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.thresholdLocked()
}

func (s *slowCalls) thresholdLocked() time.Duration {
	if s.samples < minSamples {
		return s.ceiling
	}
	return min(max(s.mean+4*s.dev, 2*s.mean, s.floor), s.ceiling)
}

// start registers a call; the call runs under the returned context and
// reports with done whether it succeeded (the inventory answered, even
// with a refusal) and how long it took.
func (s *slowCalls) start(ctx context.Context) (context.Context, func(answered bool, took time.Duration)) {
	ctx, cancel := context.WithCancelCause(ctx)
	s.mu.Lock()
	id := s.next
	s.next++
	s.inFlight[id] = cancel
	threshold := s.thresholdLocked()
	s.mu.Unlock()

	var counted bool // guarded by s.mu
	timer := time.AfterFunc(threshold, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.inFlight[id]; !ok {
			return
		}
		counted = true
		s.slow++
		if s.slow < s.trip {
			return
		}
		for _, c := range s.inFlight {
			c(errSlowTrip)
		}
	})
	return ctx, func(answered bool, took time.Duration) {
		timer.Stop()
		s.mu.Lock()
		delete(s.inFlight, id)
		if counted {
			s.slow--
		}
		if answered {
			s.observe(took)
		}
		s.mu.Unlock()
		cancel(nil)
	}
}

// observe adds one successful call's duration to the estimate (RFC 6298's
// smoothing: 1/8 for the mean, 1/4 for the deviation).
func (s *slowCalls) observe(d time.Duration) {
	if s.samples == 0 {
		s.mean, s.dev = d, d/2
	} else {
		diff := s.mean - d
		if diff < 0 {
			diff = -diff
		}
		s.dev += (diff - s.dev) / 4
		s.mean += (d - s.mean) / 8
	}
	s.samples++
}

// tripped reports whether ctx was cancelled by a slow-call trip.
func tripped(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), errSlowTrip)
}
