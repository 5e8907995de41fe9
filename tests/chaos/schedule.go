package chaos

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Kind is a kind of fault the nemesis injects.
type Kind string

// The fault kinds. Each names what the nemesis does; Fault.Target says to
// what.
const (
	SIGKILL         Kind = "sigkill"          // kill a service replica, restart it after For
	SIGTERM         Kind = "sigterm"          // stop a replica gracefully (a rolling deploy), restart it after For
	PostgresPause   Kind = "postgres-pause"   // docker pause: the database hangs for For
	PostgresRestart Kind = "postgres-restart" // docker stop + start: connections drop, the server comes back
	Inventory503    Kind = "inventory-503"    // every inventory call answers 503 for For
	InventoryHang   Kind = "inventory-hang"   // every inventory call hangs until the client gives up, for For
	Inventory401    Kind = "inventory-401"    // every call answers 401 (a rotated credential) for For
	Inventory409    Kind = "inventory-409"    // N containers are taken by someone else in the inventory: their next allocation answers 409
	Inventory422    Kind = "inventory-422"    // orders whose id ends in Target are refused (422) for For
	Inventory3xx    Kind = "inventory-3xx"    // every call answers Code (a redirect to a 200 page) for For
	ProduceError    Kind = "produce-error"    // the broker answers produce requests to topic Target with error Code for For
	Poison          Kind = "poison"           // N undecodable records on the orders topic
	Oversize        Kind = "oversize"         // one record on the orders topic close to the topic's max.message.bytes
	RedriveRetry    Kind = "redrive-retry"    // dlq redrive --reason max-attempts --to retry
	RedriveOriginal Kind = "redrive-original" // dlq redrive --reason max-attempts --to original
)

// Kinds lists every kind, in the order summaries print them.
var Kinds = []Kind{SIGKILL, SIGTERM, PostgresPause, PostgresRestart, Inventory503, InventoryHang,
	Inventory401, Inventory409, Inventory422, Inventory3xx, ProduceError, Poison, Oversize, RedriveRetry, RedriveOriginal}

// Fault is one entry of a schedule.
type Fault struct {
	At     time.Duration // from the start of the campaign
	Kind   Kind
	Target string        // a service replica, a topic, an order id suffix
	For    time.Duration // how long the fault lasts (0: instantaneous)
	Code   int           // an HTTP status or a Kafka error code
	N      int           // records or containers
}

func (f Fault) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%7s %-17s", f.At.Round(time.Millisecond), f.Kind)
	if f.Target != "" {
		fmt.Fprintf(&b, " %s", f.Target)
	}
	if f.Code != 0 {
		fmt.Fprintf(&b, " code=%d", f.Code)
	}
	if f.N != 0 {
		fmt.Fprintf(&b, " n=%d", f.N)
	}
	if f.For != 0 {
		fmt.Fprintf(&b, " for %s", f.For.Round(time.Millisecond))
	}
	return b.String()
}

// Schedule is what the nemesis does during one campaign.
type Schedule struct {
	Seed   uint64
	Orders int
	// Window is how long orders arrive and faults are injected; every
	// fault has ended by Window.
	Window time.Duration
	Faults []Fault // sorted by At
}

// The service replicas of a campaign: two of each pipeline service.
var (
	Managers  = []string{"reefer-manager-1", "reefer-manager-2"}
	Retriers  = []string{"order-retry-1", "order-retry-2"}
	Replicas  = append(slices.Clone(Managers), Retriers...)
	topicsFor = []string{"orders", "containers", "order-retries", "order-dead-letter"}
	// produceErrors are Kafka error codes a broker answers a produce
	// request with: two a client retries by itself (NOT_LEADER_OR_FOLLOWER
	// 6, REQUEST_TIMED_OUT 7), and one that retrying fixes only once an
	// operator acts (TOPIC_AUTHORIZATION_FAILED 29): for the window it
	// lasts, nothing may be lost and nothing may stall for good.
	produceErrors = []int{6, 7, 29}
	redirects     = []int{301, 302, 307, 304}
)

// WindowFor is the fault window for a campaign of orders: orders arrive at
// about 70 a second, and never in less than 30 s so that every kind of
// fault fits, with time between them.
func WindowFor(orders int) time.Duration {
	return max(30*time.Second, time.Duration(orders)*time.Second/70)
}

// NewSchedule draws the schedule of a campaign from its seed: every kind of
// fault at least once (SIGKILL and SIGTERM once for each pipeline service),
// more of them in longer campaigns, at random moments. Faults on one
// target never overlap (a replica is not killed while it is down; one
// inventory profile at a time), faults on different targets do.
func NewSchedule(seed uint64, orders int) Schedule {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed_c4a0_5d15_c0de))
	window := WindowFor(orders)
	s := Schedule{Seed: seed, Orders: orders, Window: window}
	busy := map[string][][2]time.Duration{}
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo)+1)) }
	var placeIn func(f Fault, lane string, from, to time.Duration)
	// place puts a fault at a random moment where its target is free; it
	// gives up (the fault is not scheduled) after a few tries on a busy
	// target, which only happens in short windows crowded with faults.
	// 2 s for the services to join their groups; faults end 3 s before the
	// window does.
	const head, tail = 2 * time.Second, 3 * time.Second
	place := func(f Fault, lane string) { placeIn(f, lane, head, window-tail) }
	placeIn = func(f Fault, lane string, from, to time.Duration) {
		for range 50 {
			f.At = between(from, max(from, to-f.For))
			end := f.At + f.For + time.Second // a second of calm after each fault on a target
			free := true
			for _, iv := range busy[lane] {
				if f.At < iv[1] && iv[0] < end {
					free = false
					break
				}
			}
			if free {
				busy[lane] = append(busy[lane], [2]time.Duration{f.At, end})
				s.Faults = append(s.Faults, f)
				return
			}
		}
	}
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	downtime := func() time.Duration { return between(300*time.Millisecond, 4*time.Second) }
	short := func() time.Duration { return between(1500*time.Millisecond, 4*time.Second) }

	rounds := max(1, int(window/(30*time.Second)))
	for round := range rounds {
		for _, group := range [][]string{Managers, Retriers} {
			for _, k := range []Kind{SIGKILL, SIGTERM} {
				target := pick(group)
				place(Fault{Kind: k, Target: target, For: downtime()}, target)
			}
		}
		place(Fault{Kind: PostgresPause, For: short()}, "postgres")
		place(Fault{Kind: PostgresRestart}, "postgres")
		// The inventory answers one way at a time: its six kinds take a
		// slot each of this round's part of the window, in a random order.
		inv := []Fault{
			{Kind: Inventory503, For: short()},
			{Kind: InventoryHang, For: short()},
			{Kind: Inventory401, For: short()},
			{Kind: Inventory422, Target: fmt.Sprint(rng.IntN(10)), For: short()},
			{Kind: Inventory3xx, Code: redirects[rng.IntN(len(redirects))], For: short()},
			{Kind: Inventory409, N: 5 + rng.IntN(20)},
		}
		rng.Shuffle(len(inv), func(i, j int) { inv[i], inv[j] = inv[j], inv[i] })
		from, to := head+time.Duration(round)*(window-head-tail)/time.Duration(rounds), head+time.Duration(round+1)*(window-head-tail)/time.Duration(rounds)
		slot := (to - from) / time.Duration(len(inv))
		for i, f := range inv {
			placeIn(f, "inventory", from+time.Duration(i)*slot, from+time.Duration(i+1)*slot)
		}
		for range 2 {
			place(Fault{Kind: ProduceError, Target: pick(topicsFor), Code: produceErrors[rng.IntN(len(produceErrors))], For: short()}, "broker")
		}
		place(Fault{Kind: Poison, N: 1 + rng.IntN(5)}, "loader")
		place(Fault{Kind: Oversize, N: 1}, "loader")
		// A redrive in the second half, when there are dead letters to
		// redrive; the two doors take turns.
		kinds := []Kind{RedriveRetry, RedriveOriginal}
		if round%2 == 1 {
			kinds[0], kinds[1] = kinds[1], kinds[0]
		}
		for _, k := range kinds {
			placeIn(Fault{Kind: k}, "dlq", from+(to-from)/2, to)
		}
		// Extra kills at random, the faults that find the most bugs.
		for range rng.IntN(3) {
			target := pick(Replicas)
			place(Fault{Kind: SIGKILL, Target: target, For: downtime()}, target)
		}
	}
	slices.SortStableFunc(s.Faults, func(a, b Fault) int { return cmp.Compare(a.At, b.At) })
	return s
}

// Count returns the scheduled faults by kind.
func (s Schedule) Count() map[Kind]int {
	out := map[Kind]int{}
	for _, f := range s.Faults {
		out[f.Kind]++
	}
	return out
}

// String is the schedule as the campaign prints it: one fault a line, and
// the command that replays it.
func (s Schedule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "schedule of seed %d: %d orders over %s, %d faults (replay: make chaos SEED=%d ORDERS=%d)\n",
		s.Seed, s.Orders, s.Window, len(s.Faults), s.Seed, s.Orders)
	for _, f := range s.Faults {
		fmt.Fprintf(&b, "  %s\n", f)
	}
	return b.String()
}
