package reeferstore_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
)

// runStateSuite is the part of the store suite about the order state
// machine (conclusion.go): every transition, and two chains of one order
// racing at the same instant.
func runStateSuite(t *testing.T, ready func(t *testing.T, fleet int) (*reeferstore.Store, outage)) {
	t.Run("state machine: reserve, mark, claim, reopen", func(t *testing.T) {
		t.Parallel()
		s, _ := ready(t, 10)
		ctx := t.Context()

		// reserve -> allocated; a claim then finds it allocated.
		c1 := mustAllocate(t, s, "O-1", 5)
		wantState(t, s, "O-1", allocation.StateReserved, c1)
		if won, err := s.MarkAllocated(ctx, "O-1", c1); err != nil || !won {
			t.Fatalf("MarkAllocated(O-1) = %t, %v; want won", won, err)
		}
		if won, err := s.MarkAllocated(ctx, "O-1", c1); err != nil || !won {
			t.Fatalf("MarkAllocated(O-1) again = %t, %v; want won (idempotent)", won, err)
		}
		res := mustClaim(t, s, "O-1", claim("retries/0@1", 0))
		if res.Outcome != allocation.ClaimAllocated || res.ContainerID != c1 {
			t.Errorf("claim of an allocated order = %+v, want allocated with %s", res, c1)
		}
		wantState(t, s, "O-1", allocation.StateAllocated, c1)

		// reserve -> dead-lettered leaves the reefer pending its inventory
		// release; once released, the next order gets it.
		c2 := mustAllocate(t, s, "O-2", 5)
		res = mustClaim(t, s, "O-2", claim("retries/0@2", 0))
		if res.Outcome != allocation.ClaimGranted || res.Released != c2 {
			t.Errorf("claim of a reserved order = %+v, want granted, %s released", res, c2)
		}
		wantState(t, s, "O-2", allocation.StateDeadLettered, "")
		if r := reeferOf(t, s, c2); r.Status != reeferstore.StatusAllocated || r.OrderID != "O-2" {
			t.Errorf("reefer %s of the dead-lettered order = %+v, want held for O-2 until the inventory releases it", c2, r)
		}
		if got := mustAllocate(t, s, "O-3", 5); got == c2 {
			t.Errorf("next order got %s, still pending release", got)
		}
		finishReleases(t, s, allocation.Reservation{OrderID: "O-2", ContainerID: c2})
		if r := reeferOf(t, s, c2); r.Status != reeferstore.StatusFree || r.OrderID != "" {
			t.Errorf("released reefer %s = %+v, want free", c2, r)
		}
		if got := mustAllocate(t, s, "O-3b", 5); got != c2 {
			t.Errorf("next order got %s, want the released %s", got, c2)
		}

		// The same token claims again (a crash before its write): granted
		// with the first claim's failure. Another token: stale.
		again := claim("retries/0@2", 0)
		again.ErrorMessage = "another failure"
		if res := mustClaim(t, s, "O-2", again); res.Outcome != allocation.ClaimGranted || res.Claim.ErrorMessage != "inventory said 503" {
			t.Errorf("claim by the same token = %+v, want granted with the recorded failure", res)
		}
		if res := mustClaim(t, s, "O-2", claim("retries/1@9", 0)); res.Outcome != allocation.ClaimStale {
			t.Errorf("claim by another chain = %+v, want stale", res)
		}
		// Once its dead letter is written the same token's claim says so;
		// another token's mark changes nothing.
		if err := s.MarkDeadLetterWritten(ctx, "O-2", "retries/1@9"); err != nil {
			t.Fatal(err)
		}
		if res := mustClaim(t, s, "O-2", again); res.Claim.Written {
			t.Errorf("claim after another token's mark = %+v, want not written", res)
		}
		if err := s.MarkDeadLetterWritten(ctx, "O-2", "retries/0@2"); err != nil {
			t.Fatal(err)
		}
		if res := mustClaim(t, s, "O-2", again); res.Outcome != allocation.ClaimGranted || !res.Claim.Written {
			t.Errorf("claim by the same token after its write = %+v, want granted and written", res)
		}
		// A dead-lettered order gets no reefer.
		if _, err := s.Allocate(ctx, "O-2", 5); !errors.Is(err, allocation.ErrConcluded) {
			t.Errorf("Allocate(dead-lettered O-2) = %v, want ErrConcluded", err)
		}

		// Reopen needs a higher generation; then the order reserves again
		// and a claim of the older generation is stale.
		if ok, err := s.Reopen(ctx, "O-2", 0); err != nil || ok {
			t.Errorf("Reopen(O-2, 0) = %t, %v; want not reopened", ok, err)
		}
		if ok, err := s.Reopen(ctx, "O-2", 1); err != nil || !ok {
			t.Fatalf("Reopen(O-2, 1) = %t, %v; want reopened", ok, err)
		}
		if ok, err := s.Reopen(ctx, "O-2", 1); err != nil || ok {
			t.Errorf("Reopen(O-2, 1) twice = %t, %v; want not reopened", ok, err)
		}
		wantState(t, s, "O-2", allocation.StateReopened, "")
		c2b := mustAllocate(t, s, "O-2", 5)
		if res := mustClaim(t, s, "O-2", claim("retries/0@3", 0)); res.Outcome != allocation.ClaimStale {
			t.Errorf("claim of generation 0 after a redrive to 1 = %+v, want stale", res)
		}
		wantState(t, s, "O-2", allocation.StateReserved, c2b)
		if res := mustClaim(t, s, "O-2", claim("orders/0@7", 1)); res.Outcome != allocation.ClaimGranted || res.Released != c2b || res.Claim.Written {
			t.Errorf("claim of generation 1 = %+v, want granted, %s released, its dead letter not yet written", res, c2b)
		}

		// A redrive (generation 2) waits for that reefer's release: the
		// inventory may hold it for the order. Its chain, out of attempts
		// before the release, claims the dead letter again.
		if ok, err := s.Reopen(ctx, "O-2", 2); ok || !errors.Is(err, allocation.ErrReleasePending) || failure.ClassOf(err) != failure.Transient {
			t.Errorf("Reopen with %s pending release = %t, %v; want a transient ErrReleasePending", c2b, ok, err)
		}
		if res := mustClaim(t, s, "O-2", claim("retries/0@8", 2)); res.Outcome != allocation.ClaimGranted || res.Released != "" {
			t.Errorf("claim of generation 2 on the dead-lettered order = %+v, want granted, nothing more to release", res)
		}
		if o, _, err := s.Order(ctx, "O-2"); err != nil || o.Generation != 2 || o.Claim.Token != "retries/0@8" {
			t.Errorf("order after the generation-2 claim = %+v, %v", o, err)
		}
		finishReleases(t, s, allocation.Reservation{OrderID: "O-2", ContainerID: c2b})
		if ok, err := s.Reopen(ctx, "O-2", 3); err != nil || !ok {
			t.Errorf("Reopen after the release = %t, %v; want reopened", ok, err)
		}
		checkNoReeferHeldByUnallocated(t, s)
	})

	t.Run("an inventory 409 quarantines the reefer, so the redrive gets another", func(t *testing.T) {
		t.Parallel()
		s, _ := ready(t, 10)
		ctx := t.Context()
		refused := mustAllocate(t, s, "O-409", 5)
		c := claim("orders/0@1", 0)
		c.ErrorClass, c.ErrorReason, c.Quarantine = failure.Permanent, "http-409", refused
		res := mustClaim(t, s, "O-409", c)
		if res.Outcome != allocation.ClaimGranted || res.Quarantined != refused || res.Released != "" {
			t.Fatalf("claim with 409 = %+v, want granted, %s quarantined", res, refused)
		}
		r := reeferOf(t, s, refused)
		if r.Status != reeferstore.StatusQuarantined || r.QuarantineReason == "" || r.OrderID != "" {
			t.Errorf("refused reefer = %+v, want quarantined with a reason", r)
		}
		q, err := s.Quarantined(ctx)
		if err != nil || len(q) != 1 || q[0].ContainerID != refused {
			t.Errorf("Quarantined = %+v, %v; want [%s]", q, err, refused)
		}
		if p, err := s.PendingReleases(ctx, "", 10); err != nil || len(p) != 0 {
			t.Errorf("PendingReleases = %v, %v; want none (the inventory holds the quarantined reefer for another order)", p, err)
		}
		if ok, err := s.Reopen(ctx, "O-409", 1); err != nil || !ok {
			t.Fatalf("Reopen: %t, %v", ok, err)
		}
		if got := mustAllocate(t, s, "O-409", 5); got == refused {
			t.Errorf("the redriven order got the quarantined %s again", got)
		}
		if got := mustAllocate(t, s, "O-other", 5); got == refused {
			t.Errorf("another order got the quarantined %s", got)
		}
	})

	t.Run("a mark lost to a dead letter leaves the reefer pending its inventory release", func(t *testing.T) {
		t.Parallel()
		s, _ := ready(t, 10)
		ctx := t.Context()
		lost := func(id string) string {
			c := mustAllocate(t, s, id, 5)
			mustClaim(t, s, id, claim("retries/0@"+id, 0))
			return c
		}
		mark := func(id, c string) {
			t.Helper()
			if won, err := s.MarkAllocated(ctx, id, c); err != nil || won {
				t.Fatalf("MarkAllocated(%s) after the claim = %t, %v; want lost", id, won, err)
			}
		}
		// The claim left it pending; the late mark changes nothing.
		c := lost("O-lost")
		mark("O-lost", c)
		if p, err := s.PendingReleases(ctx, "O-lost", 10); err != nil || len(p) != 1 || p[0].ContainerID != c {
			t.Errorf("PendingReleases(O-lost) = %v, %v; want [%s]", p, err, c)
		}
		wantState(t, s, "O-lost", allocation.StateDeadLettered, "")

		// Released already when the inventory recorded it again: held
		// for the order again, pending another release.
		c = lost("O-late")
		finishReleases(t, s, allocation.Reservation{OrderID: "O-late", ContainerID: c})
		mark("O-late", c)
		if r := reeferOf(t, s, c); r.Status != reeferstore.StatusAllocated || r.OrderID != "O-late" {
			t.Errorf("reefer %s = %+v, want held for O-late again, pending release", c, r)
		}

		// Released, and the order redriven meanwhile: no order may hold
		// it twice, and the inventory gives it to no one: quarantined.
		c = lost("O-redriven")
		finishReleases(t, s, allocation.Reservation{OrderID: "O-redriven", ContainerID: c})
		if ok, err := s.Reopen(ctx, "O-redriven", 1); err != nil || !ok {
			t.Fatalf("Reopen = %t, %v", ok, err)
		}
		mark("O-redriven", c)
		if r := reeferOf(t, s, c); r.Status != reeferstore.StatusQuarantined {
			t.Errorf("reefer %s = %+v, want quarantined", c, r)
		}
		if got := mustAllocate(t, s, "O-redriven", 5); got == c {
			t.Errorf("the redriven order got the quarantined %s", got)
		}
	})

	// Two chains of one order at the same instant, many times: the
	// goroutines wait on one channel, so their transactions start
	// together. Whatever the interleaving, one conclusion wins.
	const races = 30
	t.Run("racing mark and dead-letter claim: exactly one concludes", func(t *testing.T) {
		t.Parallel()
		s, _ := ready(t, races+5)
		for i := range races {
			id := fmt.Sprintf("O-race-%02d", i)
			c := mustAllocate(t, s, id, 5)
			var (
				won  bool
				res  allocation.ClaimResult
				errs [2]error
			)
			together(func() { won, errs[0] = s.MarkAllocated(t.Context(), id, c) },
				func() { res, errs[1] = s.DeadLetter(t.Context(), id, claim("retries/1@"+id, 0)) })
			if err := errors.Join(errs[:]...); err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			switch {
			case won && res.Outcome == allocation.ClaimAllocated:
				wantState(t, s, id, allocation.StateAllocated, c)
			case !won && res.Outcome == allocation.ClaimGranted:
				wantState(t, s, id, allocation.StateDeadLettered, "")
			default:
				t.Errorf("%s: mark won %t, claim %s: want exactly one conclusion", id, won, res.Outcome)
			}
		}
		checkNoReeferHeldByUnallocated(t, s)
	})

	t.Run("racing dead-letter claims of two chains: one is granted", func(t *testing.T) {
		t.Parallel()
		s, _ := ready(t, races+5)
		for i := range races {
			id := fmt.Sprintf("O-twice-%02d", i)
			if i%2 == 0 {
				mustAllocate(t, s, id, 5) // half reserved, half never reserved
			}
			var res [2]allocation.ClaimResult
			var errs [2]error
			together(func() { res[0], errs[0] = s.DeadLetter(t.Context(), id, claim("retries/0@"+id, 0)) },
				func() { res[1], errs[1] = s.DeadLetter(t.Context(), id, claim("retries/1@"+id, 0)) })
			if err := errors.Join(errs[:]...); err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			granted := 0
			for _, r := range res {
				if r.Outcome == allocation.ClaimGranted {
					granted++
				}
			}
			if granted != 1 {
				t.Errorf("%s: claims %s and %s; want exactly one granted", id, res[0].Outcome, res[1].Outcome)
			}
		}
		checkNoReeferHeldByUnallocated(t, s)
	})

	t.Run("racing reservation and dead-letter claim: a dead-lettered order holds no reefer", func(t *testing.T) {
		t.Parallel()
		s, _ := ready(t, races+5)
		for i := range races {
			id := fmt.Sprintf("O-new-%02d", i)
			var c string
			var res allocation.ClaimResult
			var errs [2]error
			together(func() { c, errs[0] = s.Allocate(t.Context(), id, 5) },
				func() { res, errs[1] = s.DeadLetter(t.Context(), id, claim("retries/0@"+id, 0)) })
			if errs[1] != nil || (errs[0] != nil && !errors.Is(errs[0], allocation.ErrConcluded)) {
				t.Fatalf("%s: %v", id, errors.Join(errs[:]...))
			}
			if res.Outcome != allocation.ClaimGranted {
				t.Errorf("%s: claim %s, want granted (the order was not allocated)", id, res.Outcome)
			}
			if errs[0] == nil && res.Released != c {
				t.Errorf("%s: reserved %s before the claim, which released %q", id, c, res.Released)
			}
			wantState(t, s, id, allocation.StateDeadLettered, "")
		}
		checkNoReeferHeldByUnallocated(t, s)
	})
}

// together runs fs at the same instant: each waits on one channel.
func together(fs ...func()) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, f := range fs {
		wg.Go(func() {
			<-start
			f()
		})
	}
	close(start)
	wg.Wait()
}

func claim(token string, generation int) allocation.Claim {
	return allocation.Claim{Token: token, Generation: generation, ErrorClass: failure.Transient,
		ErrorReason: "http-503", ErrorMessage: "inventory said 503"}
}

func mustClaim(t *testing.T, s *reeferstore.Store, orderID string, c allocation.Claim) allocation.ClaimResult {
	t.Helper()
	res, err := s.DeadLetter(t.Context(), orderID, c)
	if err != nil {
		t.Fatalf("DeadLetter(%s, %s): %v", orderID, c.Token, err)
	}
	return res
}

func wantState(t *testing.T, s *reeferstore.Store, orderID string, state allocation.State, containerID string) {
	t.Helper()
	o, ok, err := s.Order(t.Context(), orderID)
	if err != nil || !ok {
		t.Fatalf("Order(%s) = %t, %v", orderID, ok, err)
	}
	if o.State != state || o.ContainerID != containerID {
		t.Errorf("order %s is %s holding %q, want %s holding %q", orderID, o.State, o.ContainerID, state, containerID)
	}
	if containerID != "" {
		if r := reeferOf(t, s, containerID); r.Status != reeferstore.StatusAllocated || r.OrderID != orderID {
			t.Errorf("reefer %s = %+v, want allocated to %s", containerID, r, orderID)
		}
	}
}

// finishReleases plays the Releaser once the inventory released want:
// exactly those reefers are pending release, and each is freed.
func finishReleases(t *testing.T, s *reeferstore.Store, want ...allocation.Reservation) {
	t.Helper()
	for _, r := range want {
		p, err := s.PendingReleases(t.Context(), r.OrderID, 10)
		if err != nil || len(p) != 1 || p[0] != r {
			t.Fatalf("PendingReleases(%s) = %v, %v; want [%v]", r.OrderID, p, err, r)
		}
		if freed, err := s.FinishRelease(t.Context(), r); err != nil || !freed {
			t.Fatalf("FinishRelease(%v) = %t, %v; want freed", r, freed, err)
		}
		if freed, err := s.FinishRelease(t.Context(), r); err != nil || freed {
			t.Errorf("FinishRelease(%v) again = %t, %v; want nothing to free", r, freed, err)
		}
	}
}

// checkNoReeferHeldByUnallocated finishes every pending release (as the
// Releaser does once the inventory answers), then checks that no reefer is
// held by an order that does not hold it.
func checkNoReeferHeldByUnallocated(t *testing.T, s *reeferstore.Store) {
	t.Helper()
	pending, err := s.PendingReleases(t.Context(), "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	finishReleases(t, s, pending...)
	held, err := s.HeldByUnallocated(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(held) > 0 {
		t.Errorf("reefers held by orders that are neither reserved nor allocated: %v", held)
	}
}
