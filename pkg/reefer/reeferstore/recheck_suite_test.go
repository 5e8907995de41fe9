package reeferstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
)

// runRecheckSuite is the part of the store suite about release rechecks
// (recheck.go): every release leaves one, due once it is old enough, and
// a recheck never erases a record the order holds again.
func runRecheckSuite(t *testing.T, b backend, ready func(t *testing.T, fleet int) (*reeferstore.Store, outage)) {
	// released dead-letters a new order holding a reefer and releases it.
	released := func(t *testing.T, s *reeferstore.Store, orderID string) allocation.Reservation {
		t.Helper()
		c := mustAllocate(t, s, orderID, 5)
		mustClaim(t, s, orderID, claim("retries/0@"+orderID, 0))
		r := allocation.Reservation{OrderID: orderID, ContainerID: c}
		finishReleases(t, s, r)
		return r
	}
	due := func(t *testing.T, s *reeferstore.Store, by time.Time) []allocation.Reservation {
		t.Helper()
		got, err := s.DueRechecks(t.Context(), by, 10)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	t.Run("every release is rechecked once, when due", func(t *testing.T) {
		t.Parallel()
		s, _ := ready(t, 10)
		before := time.Now().Add(-time.Second)
		r1 := released(t, s, "O-1")
		if got := due(t, s, before); len(got) != 0 {
			t.Errorf("DueRechecks before the release = %v, want none", got)
		}
		r2 := released(t, s, "O-2")
		if got := due(t, s, time.Now()); len(got) != 2 || got[0] != r1 || got[1] != r2 {
			t.Errorf("DueRechecks = %v, want [%v %v], oldest first", got, r1, r2)
		}
		var calls []allocation.Reservation
		for _, r := range []allocation.Reservation{r1, r2} {
			done, err := s.RecheckWith(t.Context(), r, func(context.Context) error { calls = append(calls, r); return nil })
			if err != nil || !done {
				t.Fatalf("RecheckWith(%v) = %t, %v", r, done, err)
			}
		}
		if len(calls) != 2 {
			t.Errorf("releases run = %v, want both", calls)
		}
		if n, err := s.CountRechecks(t.Context()); err != nil || n != 0 {
			t.Errorf("CountRechecks = %d, %v; want 0", n, err)
		}
	})

	t.Run("a failed recheck stays; one for a reefer the order holds again releases nothing", func(t *testing.T) {
		t.Parallel()
		s, _ := ready(t, 1)
		r := released(t, s, "O-1")
		down := errors.New("inventory down")
		if done, err := s.RecheckWith(t.Context(), r, func(context.Context) error { return down }); !errors.Is(err, down) || done {
			t.Errorf("RecheckWith, inventory down = %t, %v; want its error", done, err)
		}
		if n, _ := s.CountRechecks(t.Context()); n != 1 {
			t.Errorf("CountRechecks = %d, want the recheck kept", n)
		}
		// Redriven, the order gets the fleet's one reefer again.
		if ok, err := s.Reopen(t.Context(), "O-1", 1); err != nil || !ok {
			t.Fatalf("Reopen = %t, %v", ok, err)
		}
		if c := mustAllocate(t, s, "O-1", 5); c != r.ContainerID {
			t.Fatalf("redrive got %s, want %s", c, r.ContainerID)
		}
		done, err := s.RecheckWith(t.Context(), r, func(context.Context) error {
			t.Error("the recheck released a reefer the order holds again")
			return nil
		})
		if err != nil || !done {
			t.Errorf("RecheckWith = %t, %v; want done", done, err)
		}
		if n, _ := s.CountRechecks(t.Context()); n != 0 {
			t.Errorf("CountRechecks = %d, want 0", n)
		}
	})

	if !b.rowLocks {
		return
	}
	t.Run("a reservation of the order waits for a recheck on its way", func(t *testing.T) {
		t.Parallel()
		s, _ := ready(t, 1)
		r := released(t, s, "O-1")
		if ok, err := s.Reopen(t.Context(), "O-1", 1); err != nil || !ok {
			t.Fatalf("Reopen = %t, %v", ok, err)
		}
		reserved := make(chan string, 1)
		done, err := s.RecheckWith(t.Context(), r, func(context.Context) error {
			// The redrive's reservation, while the inventory's release
			// is on its way: it must not get the reefer (and the
			// inventory record it) before the release is done.
			go func() {
				c, err := s.Allocate(context.Background(), "O-1", 5)
				if err != nil {
					c = err.Error()
				}
				reserved <- c
			}()
			// Another sweep's recheck of the same pair leaves it alone.
			again, err := s.RecheckWith(t.Context(), r, func(context.Context) error {
				t.Error("two rechecks of one pair ran at once")
				return nil
			})
			if err != nil || again {
				t.Errorf("RecheckWith while another one runs = %t, %v; want not done", again, err)
			}
			select {
			case c := <-reserved:
				t.Errorf("the order was reserved %q while the recheck's release was on its way", c)
			case <-time.After(300 * time.Millisecond):
			}
			return nil
		})
		if err != nil || !done {
			t.Fatalf("RecheckWith = %t, %v; want done", done, err)
		}
		select {
		case c := <-reserved:
			if c != r.ContainerID {
				t.Errorf("reservation after the recheck = %q, want %s", c, r.ContainerID)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the reservation never finished")
		}
	})
}
