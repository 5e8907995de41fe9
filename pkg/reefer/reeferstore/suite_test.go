package reeferstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
)

// The Store must satisfy the use case's interface, and be the ledger of
// order states that the hand-off changes.
var (
	_ allocation.Store = (*reeferstore.Store)(nil)
	_ orders.Ledger    = (*reeferstore.Store)(nil)
)

// backend opens a Store on a fresh, empty database. outage makes that
// database unreachable for the Store (down) and reachable again (up); each
// backend does it the way that database really fails.
type backend struct {
	open func(t *testing.T) (*reeferstore.Store, outage)
	// outageFailsPing: Ping fails during the outage. A Postgres server
	// that is gone answers nothing; a SQLite file whose write lock another
	// process holds still serves readers (WAL), so Ping succeeds.
	outageFailsPing bool
	// rowLocks: the database locks rows (Postgres); SQLite's store runs
	// the releases outside a transaction instead.
	rowLocks bool
}

type outage func(t *testing.T, down bool)

// runSuite is the one set of store tests every backend must pass.
func runSuite(t *testing.T, b backend) {
	// ready opens, migrates and seeds a store for one test.
	ready := func(t *testing.T, fleet int) (*reeferstore.Store, outage) {
		t.Helper()
		s, out := b.open(t)
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		if err := s.SeedFleet(t.Context(), fleet); err != nil {
			t.Fatalf("SeedFleet(%d): %v", fleet, err)
		}
		return s, out
	}

	t.Run("migrate twice is a no-op and keeps the data", func(t *testing.T) {
		t.Parallel()
		s, _ := ready(t, 3)
		id := mustAllocate(t, s, "O-1", 5)

		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}

		version, err := s.SchemaVersion(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if version != reeferstore.LatestSchemaVersion() {
			t.Errorf("SchemaVersion = %d, want %d", version, reeferstore.LatestSchemaVersion())
		}
		if got, ok := allocationOf(t, s, "O-1"); !ok || got != id {
			t.Errorf("after the second Migrate, Allocation(O-1) = %q, %t; want %q, true", got, ok, id)
		}
	})

	t.Run("concurrent migrations apply each version once", func(t *testing.T) {
		t.Parallel()
		s, _ := b.open(t)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { errs[i] = s.Migrate(t.Context()) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
		if v, err := s.SchemaVersion(t.Context()); err != nil || v != reeferstore.LatestSchemaVersion() {
			t.Errorf("SchemaVersion = %d, %v; want %d", v, err, reeferstore.LatestSchemaVersion())
		}
	})

	t.Run("seed is deterministic and idempotent, and never resets or shrinks the fleet", func(t *testing.T) {
		t.Parallel()
		s, _ := ready(t, 12)
		id := mustAllocate(t, s, "O-1", 95) // the first reefer of 100: C-0010

		for _, size := range []int{12, 5} {
			if err := s.SeedFleet(t.Context(), size); err != nil {
				t.Fatalf("SeedFleet(%d) again: %v", size, err)
			}
		}

		want := []reeferstore.Reefer{
			{ContainerID: "C-0001", Capacity: 10, Status: reeferstore.StatusFree},
			{ContainerID: "C-0002", Capacity: 20, Status: reeferstore.StatusFree},
			{ContainerID: "C-0010", Capacity: 100, Status: reeferstore.StatusAllocated, OrderID: "O-1"},
			{ContainerID: "C-0011", Capacity: 10, Status: reeferstore.StatusFree},
			{ContainerID: "C-0012", Capacity: 20, Status: reeferstore.StatusFree},
		}
		var got []reeferstore.Reefer
		for _, r := range want {
			got = append(got, reeferOf(t, s, r.ContainerID))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("fleet after re-seeding (-want +got):\n%s", diff)
		}
		if id != "C-0010" {
			t.Errorf("order of 95 got %s, want C-0010", id)
		}
		if _, err := s.Reefer(t.Context(), "C-0013"); !errors.Is(err, reeferstore.ErrReeferNotFound) {
			t.Errorf("Reefer(C-0013) error = %v, want ErrReeferNotFound", err)
		}
	})

	t.Run("allocation takes the smallest free reefer that fits", func(t *testing.T) {
		t.Parallel()
		s, _ := ready(t, 10) // capacities 10, 20, ..., 100
		steps := []struct {
			order    string
			quantity int
			want     string
		}{
			{"O-1", 35, "C-0004"}, // 40
			{"O-2", 35, "C-0005"}, // 50: C-0004 is taken
			{"O-3", 10, "C-0001"}, // exactly 10
			{"O-4", 1, "C-0002"},
			{"O-5", 100, "C-0010"},
		}
		for _, st := range steps {
			if got := mustAllocate(t, s, st.order, st.quantity); got != st.want {
				t.Errorf("Allocate(%s, %d) = %s, want %s", st.order, st.quantity, got, st.want)
			}
		}
		want := reeferstore.Reefer{ContainerID: "C-0004", Capacity: 40, Status: reeferstore.StatusAllocated, OrderID: "O-1"}
		if diff := cmp.Diff(want, reeferOf(t, s, "C-0004")); diff != "" {
			t.Errorf("allocated reefer row (-want +got):\n%s", diff)
		}
	})

	t.Run("allocation is idempotent per order", func(t *testing.T) {
		t.Parallel()
		s, _ := ready(t, 10)
		first := mustAllocate(t, s, "O-1", 15)
		again := mustAllocate(t, s, "O-1", 15)
		// A different quantity on a redelivery cannot move the order.
		other := mustAllocate(t, s, "O-1", 90)

		if first != again || first != other {
			t.Errorf("Allocate(O-1) returned %s, %s, %s; want the same reefer each time", first, again, other)
		}
		if n := countAllocations(t, s); n != 1 {
			t.Errorf("CountAllocations = %d, want 1", n)
		}
		if got, ok := allocationOf(t, s, "O-1"); !ok || got != first {
			t.Errorf("Allocation(O-1) = %q, %t; want %q, true", got, ok, first)
		}
		if got, ok := allocationOf(t, s, "O-unknown"); ok || got != "" {
			t.Errorf("Allocation(O-unknown) = %q, %t; want \"\", false", got, ok)
		}
	})

	t.Run("no capacity: too big for any reefer, or the fleet is exhausted", func(t *testing.T) {
		t.Parallel()
		s, _ := ready(t, 2) // capacities 10 and 20
		tests := []struct {
			order    string
			quantity int
			want     string // "" = no capacity
		}{
			{"O-big", reeferstore.MaxSeedCapacity + 1, ""},
			{"O-1", 5, "C-0001"},
			{"O-2", 5, "C-0002"},
			{"O-3", 5, ""},
		}
		for _, tt := range tests {
			got, err := s.Allocate(t.Context(), tt.order, tt.quantity)
			if tt.want == "" {
				if !errors.Is(err, allocation.ErrNoCapacity) {
					t.Errorf("Allocate(%s, %d) = %q, %v; want ErrNoCapacity", tt.order, tt.quantity, got, err)
				}
				continue
			}
			if err != nil || got != tt.want {
				t.Errorf("Allocate(%s, %d) = %q, %v; want %s", tt.order, tt.quantity, got, err, tt.want)
			}
		}
		if n := countAllocations(t, s); n != 2 {
			t.Errorf("CountAllocations = %d, want 2 (rejections allocate nothing)", n)
		}
	})

	t.Run("invalid requests are permanent and touch nothing", func(t *testing.T) {
		t.Parallel()
		s, _ := ready(t, 2)
		for _, r := range []reeferstore.Request{{OrderID: "", Quantity: 1}, {OrderID: "O-1", Quantity: 0}, {OrderID: "O-1", Quantity: -3}} {
			if _, err := s.Allocate(t.Context(), r.OrderID, r.Quantity); failure.ClassOf(err) != failure.Permanent {
				t.Errorf("Allocate(%q, %d) error = %v, want permanent", r.OrderID, r.Quantity, err)
			}
		}
		if n := countAllocations(t, s); n != 0 {
			t.Errorf("CountAllocations = %d, want 0", n)
		}
	})

	t.Run("50 concurrent allocations of different orders never share a reefer", func(t *testing.T) {
		t.Parallel()
		const orders = 50
		s, _ := ready(t, 30) // more orders than reefers: some must be rejected
		got := make([]string, orders)
		errs := make([]error, orders)
		var wg sync.WaitGroup
		for i := range orders {
			wg.Go(func() { got[i], errs[i] = s.Allocate(t.Context(), fmt.Sprintf("O-%02d", i), 5) })
		}
		wg.Wait()

		owner := map[string]string{}
		for i, id := range got {
			order := fmt.Sprintf("O-%02d", i)
			switch {
			case errors.Is(errs[i], allocation.ErrNoCapacity):
				continue
			case errs[i] != nil:
				t.Fatalf("Allocate(%s): %v", order, errs[i])
			}
			if prev, taken := owner[id]; taken {
				t.Errorf("reefer %s allocated to both %s and %s", id, prev, order)
			}
			owner[id] = order
			if r := reeferOf(t, s, id); r.OrderID != order || r.Status != reeferstore.StatusAllocated {
				t.Errorf("reefer row %+v does not record order %s", r, order)
			}
		}
		if len(owner) != 30 {
			t.Errorf("%d orders got a reefer, want all 30 reefers used", len(owner))
		}
		if n := countAllocations(t, s); n != 30 {
			t.Errorf("CountAllocations = %d, want 30", n)
		}
	})

	t.Run("concurrent allocations of the same order return the same reefer", func(t *testing.T) {
		t.Parallel()
		const callers = 20
		s, _ := ready(t, 40)
		got := make([]string, callers)
		errs := make([]error, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() { got[i], errs[i] = s.Allocate(t.Context(), "O-dup", 5) })
		}
		wg.Wait()

		if err := errors.Join(errs...); err != nil {
			t.Fatalf("Allocate: %v", err)
		}
		for i, id := range got {
			if id != got[0] {
				t.Errorf("caller %d got %s, caller 0 got %s", i, id, got[0])
			}
		}
		if n := countAllocations(t, s); n != 1 {
			t.Errorf("CountAllocations = %d, want 1", n)
		}
		// The losers' reservations were rolled back: only one reefer is taken.
		allocated := 0
		for n := 1; n <= 40; n++ {
			if reeferOf(t, s, reeferstore.SeedReefer(n).ContainerID).Status == reeferstore.StatusAllocated {
				allocated++
			}
		}
		if allocated != 1 {
			t.Errorf("%d reefers are marked allocated, want 1", allocated)
		}
	})

	t.Run("batch answers each request as Allocate would, in order", func(t *testing.T) {
		t.Parallel()
		s, _ := ready(t, 3) // 10, 20, 30
		pre := mustAllocate(t, s, "O-pre", 25)

		got, err := s.AllocateBatch(t.Context(), []reeferstore.Request{
			{OrderID: "O-b", Quantity: 15},
			{OrderID: "O-pre", Quantity: 1},
			{OrderID: "O-huge", Quantity: 500},
			{OrderID: "O-a", Quantity: 5},
			{OrderID: "O-b", Quantity: 15},
			{OrderID: "O-bad", Quantity: 0},
			{OrderID: "O-none", Quantity: 5},
		})
		if err != nil {
			t.Fatalf("AllocateBatch: %v", err)
		}

		type answer struct{ Order, Container, Err string }
		summary := func(r reeferstore.BatchResult) answer {
			a := answer{Order: r.OrderID, Container: r.ContainerID}
			switch {
			case errors.Is(r.Err, allocation.ErrNoCapacity):
				a.Err = "no-capacity"
			case r.Err != nil:
				a.Err = string(failure.ClassOf(r.Err))
			}
			return a
		}
		var gotSummary []answer
		for _, r := range got {
			gotSummary = append(gotSummary, summary(r))
		}
		// Orders are served in id order: O-a takes the 10, O-b the 20, and
		// O-none finds nothing left (O-pre holds the 30).
		want := []answer{
			{Order: "O-b", Container: "C-0002"},
			{Order: "O-pre", Container: pre},
			{Order: "O-huge", Err: "no-capacity"},
			{Order: "O-a", Container: "C-0001"},
			{Order: "O-b", Container: "C-0002"},
			{Order: "O-bad", Err: "permanent"},
			{Order: "O-none", Err: "no-capacity"},
		}
		if diff := cmp.Diff(want, gotSummary); diff != "" {
			t.Errorf("AllocateBatch (-want +got):\n%s", diff)
		}
		if n := countAllocations(t, s); n != 3 {
			t.Errorf("CountAllocations = %d, want 3", n)
		}
	})

	t.Run("concurrent overlapping batches stay consistent", func(t *testing.T) {
		t.Parallel()
		const workers, orders = 6, 40
		s, _ := ready(t, 100)
		results := make([][]reeferstore.BatchResult, workers)
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for w := range workers {
			// Every worker asks for every order, each in its own order, so
			// the batches overlap and race on the same rows.
			reqs := make([]reeferstore.Request, orders)
			for i := range orders {
				reqs[i] = reeferstore.Request{OrderID: fmt.Sprintf("O-%02d", (i*7+w*11)%orders), Quantity: 5}
			}
			wg.Go(func() { results[w], errs[w] = s.AllocateBatch(t.Context(), reqs) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("AllocateBatch: %v", err)
		}

		byOrder := map[string]string{}
		for _, rs := range results {
			for _, r := range rs {
				if r.Err != nil {
					t.Fatalf("order %s: %v", r.OrderID, r.Err)
				}
				if prev, ok := byOrder[r.OrderID]; ok && prev != r.ContainerID {
					t.Errorf("order %s got %s and %s", r.OrderID, prev, r.ContainerID)
				}
				byOrder[r.OrderID] = r.ContainerID
			}
		}
		seen := map[string]string{}
		for order, id := range byOrder {
			if other, ok := seen[id]; ok {
				t.Errorf("reefer %s allocated to %s and %s", id, other, order)
			}
			seen[id] = order
		}
		if n := countAllocations(t, s); n != orders {
			t.Errorf("CountAllocations = %d, want %d", n, orders)
		}
	})

	t.Run("a batch allocates exactly what Allocate gives one order after the other in id order", func(t *testing.T) {
		t.Parallel()
		// Mixed quantities, some that fit nothing, more orders than
		// reefers, and orders already allocated: the batch statement's loop
		// (and its shortcuts past reefers it took) must pick what the
		// one-order statement picks when the orders come one at a time.
		const fleet, orders = 30, 45
		batch, _ := ready(t, fleet)
		single, _ := ready(t, fleet)
		reqs := make([]reeferstore.Request, orders)
		for i := range reqs {
			// Deterministic spread over 1..110 (above 100 fits no reefer),
			// ids not in quantity order.
			reqs[i] = reeferstore.Request{OrderID: fmt.Sprintf("O-%02d", (i*17)%orders), Quantity: 1 + (i*37)%110}
		}
		for _, r := range reqs[:5] { // allocated before the batch, in both stores
			mustAllocate(t, batch, r.OrderID, r.Quantity)
			mustAllocate(t, single, r.OrderID, r.Quantity)
		}

		got, err := batch.AllocateBatch(t.Context(), reqs)
		if err != nil {
			t.Fatalf("AllocateBatch: %v", err)
		}
		sorted := slices.SortedFunc(slices.Values(reqs), func(a, b reeferstore.Request) int { return strings.Compare(a.OrderID, b.OrderID) })
		want := map[string]string{}
		for _, r := range sorted {
			id, err := single.Allocate(t.Context(), r.OrderID, r.Quantity)
			if err != nil && !errors.Is(err, allocation.ErrNoCapacity) {
				t.Fatalf("Allocate(%s, %d): %v", r.OrderID, r.Quantity, err)
			}
			want[r.OrderID] = id
		}
		for _, r := range got {
			if r.Err != nil && !errors.Is(r.Err, allocation.ErrNoCapacity) {
				t.Fatalf("order %s: %v", r.OrderID, r.Err)
			}
			if r.ContainerID != want[r.OrderID] {
				t.Errorf("order %s: batch gave %q, one by one %q", r.OrderID, r.ContainerID, want[r.OrderID])
			}
		}
		if n, m := countAllocations(t, batch), countAllocations(t, single); n != m {
			t.Errorf("CountAllocations = %d after the batch, %d one by one", n, m)
		}
	})

	t.Run("order ids with quotes, backslashes, commas and braces are stored as given", func(t *testing.T) {
		t.Parallel()
		s, _ := ready(t, 10)
		ids := []string{`O-"quoted"`, `O-back\slash`, `O-a,b`, `O-{braces}`, `O- space`, `O-NULL`, `O-ünïcode`}
		reqs := make([]reeferstore.Request, len(ids))
		for i, id := range ids {
			reqs[i] = reeferstore.Request{OrderID: id, Quantity: 5}
		}
		got, err := s.AllocateBatch(t.Context(), reqs)
		if err != nil {
			t.Fatalf("AllocateBatch: %v", err)
		}
		for _, r := range got {
			if r.Err != nil {
				t.Fatalf("order %q: %v", r.OrderID, r.Err)
			}
			if held, ok := allocationOf(t, s, r.OrderID); !ok || held != r.ContainerID {
				t.Errorf("Allocation(%q) = %q, %t; want %q, true", r.OrderID, held, ok, r.ContainerID)
			}
			if row := reeferOf(t, s, r.ContainerID); row.OrderID != r.OrderID {
				t.Errorf("reefer %s records order %q, want %q", r.ContainerID, row.OrderID, r.OrderID)
			}
		}
	})

	t.Run("an order id that is not UTF-8 text fails only its own order, permanently", func(t *testing.T) {
		t.Parallel()
		s, _ := ready(t, 10)
		got, err := s.AllocateBatch(t.Context(), []reeferstore.Request{
			{OrderID: "O-\xff", Quantity: 5},
			{OrderID: "O-ok", Quantity: 5},
			{OrderID: "O-\x00", Quantity: 5},
		})
		if err != nil {
			t.Fatalf("AllocateBatch: %v", err)
		}
		for _, r := range got {
			bad := r.OrderID != "O-ok"
			if bad && failure.ClassOf(r.Err) != failure.Permanent {
				t.Errorf("order %q: error %v, want permanent", r.OrderID, r.Err)
			}
			if !bad && (r.Err != nil || r.ContainerID == "") {
				t.Errorf("order %q = %q, %v; want a reefer", r.OrderID, r.ContainerID, r.Err)
			}
		}
		if n := countAllocations(t, s); n != 1 {
			t.Errorf("CountAllocations = %d, want 1", n)
		}
	})

	t.Run("database down is a transient failure and the store recovers", func(t *testing.T) {
		t.Parallel()
		s, out := ready(t, 5)
		mustAllocate(t, s, "O-before", 5)

		out(t, true)
		_, err := s.Allocate(t.Context(), "O-during", 5)
		if err == nil || failure.ClassOf(err) != failure.Transient {
			t.Errorf("Allocate with the database down = %v (class %q), want a transient error", err, failure.ClassOf(err))
		}
		t.Logf("Allocate with the database down: %v (reason %s)", err, failure.ReasonOf(err))
		if b.outageFailsPing {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			if err := s.Ping(ctx); err == nil || failure.ClassOf(err) != failure.Transient {
				t.Errorf("Ping with the database down = %v, want a transient error", err)
			}
		}

		out(t, false)
		// The pool replaces broken connections; the same Store works again
		// without a restart. Give it a few tries, as a retry would.
		var id string
		// Generous: the bound matters only when the pool never recovers.
		deadline := time.Now().Add(60 * time.Second)
		for {
			id, err = s.Allocate(t.Context(), "O-during", 5)
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("Allocate after the database came back: %v", err)
		}
		if id == "" {
			t.Error("Allocate after recovery returned no reefer")
		}
	})

	runStateSuite(t, ready)
	runRecheckSuite(t, b, ready)

	t.Run("a canceled context stays recognisable as cancellation", func(t *testing.T) {
		t.Parallel()
		s, _ := ready(t, 2)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := s.Allocate(ctx, "O-1", 5); !errors.Is(err, context.Canceled) {
			t.Errorf("Allocate with a canceled context = %v, want it to wrap context.Canceled", err)
		}
	})
}

func mustAllocate(t *testing.T, s *reeferstore.Store, orderID string, quantity int) string {
	t.Helper()
	id, err := s.Allocate(t.Context(), orderID, quantity)
	if err != nil {
		t.Fatalf("Allocate(%s, %d): %v", orderID, quantity, err)
	}
	return id
}

func allocationOf(t *testing.T, s *reeferstore.Store, orderID string) (string, bool) {
	t.Helper()
	id, ok, err := s.Allocation(t.Context(), orderID)
	if err != nil {
		t.Fatalf("Allocation(%s): %v", orderID, err)
	}
	return id, ok
}

func reeferOf(t *testing.T, s *reeferstore.Store, containerID string) reeferstore.Reefer {
	t.Helper()
	r, err := s.Reefer(t.Context(), containerID)
	if err != nil {
		t.Fatalf("Reefer(%s): %v", containerID, err)
	}
	return r
}

func countAllocations(t *testing.T, s *reeferstore.Store) int64 {
	t.Helper()
	n, err := s.CountAllocations(t.Context())
	if err != nil {
		t.Fatalf("CountAllocations: %v", err)
	}
	return n
}
