package faults_test

import (
	"encoding/json"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func seed(v int64) *int64 { return &v }

func dur(d time.Duration) *faults.Duration { v := faults.Duration(d); return &v }

func newEngine(t *testing.T, p faults.Profile, now func() time.Time) *faults.Engine {
	t.Helper()
	e, err := faults.New(p, now)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func TestDecideEachFaultKind(t *testing.T) {
	clk := newClock()
	future := clk.Now().Add(time.Minute)
	past := clk.Now().Add(-time.Second)
	alloc := func(order, container string) faults.Request {
		return faults.Request{Route: faults.RouteAllocate, OrderID: order, ContainerID: container}
	}
	get := func(container string) faults.Request {
		return faults.Request{Route: faults.RouteGetContainer, ContainerID: container}
	}
	none := faults.Decision{Fault: faults.None}

	tests := []struct {
		name    string
		profile faults.Profile
		calls   []faults.Request
		want    []faults.Decision
	}{
		{
			name:  "healthy passes every call",
			calls: []faults.Request{alloc("O-1", "C-1"), get("C-1")},
			want:  []faults.Decision{none, none},
		},
		{
			name:    "errorRate 1 answers errorStatus with Retry-After",
			profile: faults.Profile{ErrorRate: 1, ErrorStatus: 429, RetryAfter: faults.Duration(2 * time.Second)},
			calls:   []faults.Request{alloc("O-1", "C-1")},
			want:    []faults.Decision{{Fault: faults.KindError, Status: 429, RetryAfter: 2 * time.Second}},
		},
		{
			name:    "errorStatus defaults to 503",
			profile: faults.Profile{ErrorRate: 1},
			calls:   []faults.Request{get("C-1")},
			want:    []faults.Decision{{Fault: faults.KindError, Status: 503}},
		},
		{
			name:    "timeoutRate 1 hangs",
			profile: faults.Profile{TimeoutRate: 1},
			calls:   []faults.Request{alloc("O-1", "C-1")},
			want:    []faults.Decision{{Fault: faults.KindTimeout, Hang: true}},
		},
		{
			name:    "latency is added to passing calls",
			profile: faults.Profile{Latency: faults.Duration(40 * time.Millisecond)},
			calls:   []faults.Request{alloc("O-1", "C-1")},
			want:    []faults.Decision{{Fault: faults.None, Latency: 40 * time.Millisecond}},
		},
		{
			name:    "outage answers a status until its end",
			profile: faults.Profile{Outage: &faults.Outage{Until: &future}, RetryAfter: faults.Duration(1500 * time.Millisecond)},
			calls:   []faults.Request{alloc("O-1", "C-1"), get("C-1")},
			want: []faults.Decision{
				{Fault: faults.KindOutage, Status: 503, RetryAfter: 1500 * time.Millisecond},
				{Fault: faults.KindOutage, Status: 503, RetryAfter: 1500 * time.Millisecond},
			},
		},
		{
			name:    "outage in drop mode drops the connection",
			profile: faults.Profile{Outage: &faults.Outage{Mode: faults.OutageDrop}},
			calls:   []faults.Request{alloc("O-1", "C-1")},
			want:    []faults.Decision{{Fault: faults.KindOutage, Drop: true}},
		},
		{
			name:    "an ended outage no longer applies",
			profile: faults.Profile{Outage: &faults.Outage{Until: &past}},
			calls:   []faults.Request{alloc("O-1", "C-1")},
			want:    []faults.Decision{none},
		},
		{
			name:    "failFirst fails the first N calls of each order",
			profile: faults.Profile{FailFirst: &faults.FailFirst{Count: 2, Status: 502}},
			calls:   []faults.Request{alloc("O-1", "C-1"), alloc("O-1", "C-1"), alloc("O-2", "C-2"), alloc("O-1", "C-1"), alloc("O-2", "C-2"), alloc("O-2", "C-2")},
			want: []faults.Decision{
				{Fault: faults.KindFailFirst, Status: 502},
				{Fault: faults.KindFailFirst, Status: 502},
				{Fault: faults.KindFailFirst, Status: 502},
				none,
				{Fault: faults.KindFailFirst, Status: 502},
				none,
			},
		},
		{
			name:    "failFirst ignores calls without an order id",
			profile: faults.Profile{FailFirst: &faults.FailFirst{Count: 1}},
			calls:   []faults.Request{get("C-1")},
			want:    []faults.Decision{none},
		},
		{
			name: "a rule on the order id gives a fixed outcome",
			profile: faults.Profile{Rules: []faults.Rule{{
				OrderID: "^O-PERM-", Status: 422, Body: json.RawMessage(`{"error":"nope"}`), Latency: dur(5 * time.Millisecond),
			}}},
			calls: []faults.Request{alloc("O-PERM-1", "C-1"), alloc("O-1", "C-1"), get("C-1")},
			want: []faults.Decision{
				{Fault: faults.KindRule, Rule: "rules[0]", Status: 422, Body: json.RawMessage(`{"error":"nope"}`), Latency: 5 * time.Millisecond},
				none,
				none,
			},
		},
		{
			name: "a rule with both patterns needs both to match",
			profile: faults.Profile{Rules: []faults.Rule{{
				Name: "bad-reefers", OrderID: "^O-", ContainerID: "^C-BAD", Status: 409, RetryAfter: faults.Duration(time.Second),
			}}},
			calls: []faults.Request{alloc("O-1", "C-BAD-1"), alloc("O-1", "C-1"), get("C-BAD-1")},
			want: []faults.Decision{
				{Fault: faults.KindRule, Rule: "bad-reefers", Status: 409, RetryAfter: time.Second},
				none,
				none,
			},
		},
		{
			name: "a rule without status exempts matching calls from random faults",
			profile: faults.Profile{ErrorRate: 1, Rules: []faults.Rule{{
				Name: "vip", OrderID: "^O-VIP-",
			}}},
			calls: []faults.Request{alloc("O-VIP-1", "C-1"), alloc("O-1", "C-1")},
			want: []faults.Decision{
				{Fault: faults.None, Rule: "vip"},
				{Fault: faults.KindError, Status: 503},
			},
		},
		{
			name:    "rules win over failFirst, outage wins over rules",
			profile: faults.Profile{Outage: &faults.Outage{Status: 500}, Rules: []faults.Rule{{OrderID: ".", Status: 422}}},
			calls:   []faults.Request{alloc("O-1", "C-1")},
			want:    []faults.Decision{{Fault: faults.KindOutage, Status: 500}},
		},
		{
			name:    "routes limit faults to the named routes",
			profile: faults.Profile{ErrorRate: 1, Routes: []string{faults.RouteAllocate}},
			calls:   []faults.Request{get("C-1"), alloc("O-1", "C-1")},
			want:    []faults.Decision{none, {Fault: faults.KindError, Status: 503}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, tt.profile, clk.Now)
			var got []faults.Decision
			for _, c := range tt.calls {
				got = append(got, e.Decide(c))
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("decisions mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLatencyStaysWithinJitterBounds(t *testing.T) {
	e := newEngine(t, faults.Profile{
		Seed:          seed(3),
		Latency:       faults.Duration(100 * time.Millisecond),
		LatencyJitter: faults.Duration(30 * time.Millisecond),
	}, time.Now)
	var sum time.Duration
	const n = 10_000
	for range n {
		d := e.Decide(faults.Request{Route: faults.RouteAllocate, OrderID: "O", ContainerID: "C"})
		if d.Latency < 70*time.Millisecond || d.Latency > 130*time.Millisecond {
			t.Fatalf("latency %s outside 100ms ± 30ms", d.Latency)
		}
		sum += d.Latency
	}
	if mean := sum / n; mean < 99*time.Millisecond || mean > 101*time.Millisecond {
		t.Errorf("mean latency %s, want about 100ms", mean)
	}
}

// mixed is a profile in which every random step matters.
func mixed(s int64) faults.Profile {
	return faults.Profile{
		Seed:          seed(s),
		ErrorRate:     0.25,
		TimeoutRate:   0.05,
		Latency:       faults.Duration(10 * time.Millisecond),
		LatencyJitter: faults.Duration(5 * time.Millisecond),
		FailFirst:     &faults.FailFirst{Count: 1},
		Rules:         []faults.Rule{{OrderID: "7$", Status: 422}},
	}
}

func decideMany(e *faults.Engine, n int) []faults.Decision {
	out := make([]faults.Decision, n)
	for i := range n {
		// Orders repeat, so failFirst and the rule take part in the sequence.
		order := "O-" + string(rune('0'+i%10))
		out[i] = e.Decide(faults.Request{Route: faults.RouteAllocate, OrderID: order, ContainerID: "C-1"})
	}
	return out
}

func TestSeedReproducesTheDecisionSequence(t *testing.T) {
	a := decideMany(newEngine(t, mixed(42), time.Now), 1000)
	b := decideMany(newEngine(t, mixed(42), time.Now), 1000)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Fatalf("same seed, different sequences (-first +second):\n%s", diff)
	}
	c := decideMany(newEngine(t, mixed(43), time.Now), 1000)
	if cmp.Equal(a, c) {
		t.Error("seeds 42 and 43 gave the same 1,000 decisions")
	}
}

func TestResetReplaysTheSequence(t *testing.T) {
	e := newEngine(t, mixed(7), time.Now)
	first := decideMany(e, 500)
	e.Reset()
	if diff := cmp.Diff(first, decideMany(e, 500)); diff != "" {
		t.Errorf("after Reset the sequence differs (-before +after):\n%s", diff)
	}
}

func TestUnseededProfileReportsTheSeedItUses(t *testing.T) {
	e := newEngine(t, faults.Profile{ErrorRate: 0.5}, time.Now)
	p := e.Profile()
	if p.Seed == nil {
		t.Fatal("Profile().Seed is nil, want the seed chosen by the engine")
	}
	replay := newEngine(t, p, time.Now)
	if diff := cmp.Diff(decideMany(e, 200), decideMany(replay, 200)); diff != "" {
		t.Errorf("the reported seed does not replay the run (-original +replay):\n%s", diff)
	}
}

func TestObservedRatesMatchTheProfile(t *testing.T) {
	const n = 10_000
	tests := []struct {
		name                 string
		errorRate, timeRate  float64
		wantError, wantHangs float64
	}{
		{"5% errors", 0.05, 0, 0.05, 0},
		{"20% errors", 0.2, 0, 0.2, 0},
		{"50% errors", 0.5, 0, 0.5, 0},
		{"errors and timeouts are exclusive shares", 0.2, 0.3, 0.2, 0.3},
	}
	for _, tt := range tests {
		for s := int64(1); s <= 5; s++ {
			e := newEngine(t, faults.Profile{Seed: seed(s), ErrorRate: tt.errorRate, TimeoutRate: tt.timeRate}, time.Now)
			var errs, hangs int
			for range n {
				switch e.Decide(faults.Request{Route: faults.RouteAllocate}).Fault {
				case faults.KindError:
					errs++
				case faults.KindTimeout:
					hangs++
				}
			}
			if got := float64(errs) / n; math.Abs(got-tt.wantError) > 0.02 {
				t.Errorf("%s, seed %d: error rate %.4f, want %.2f ± 0.02", tt.name, s, got, tt.wantError)
			}
			if got := float64(hangs) / n; math.Abs(got-tt.wantHangs) > 0.02 {
				t.Errorf("%s, seed %d: timeout rate %.4f, want %.2f ± 0.02", tt.name, s, got, tt.wantHangs)
			}
		}
	}
}

func TestOutageHealsByItself(t *testing.T) {
	clk := newClock()
	e := newEngine(t, faults.Profile{}, clk.Now)
	p, err := e.StartOutage(faults.Outage{For: faults.Duration(30 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	wantUntil := clk.Now().Add(30 * time.Second)
	if p.Outage == nil || p.Outage.Until == nil || !p.Outage.Until.Equal(wantUntil) || p.Outage.For != 0 {
		t.Fatalf("outage = %+v, want until %s", p.Outage, wantUntil)
	}
	req := faults.Request{Route: faults.RouteGetContainer, ContainerID: "C-1"}
	if d := e.Decide(req); d.Fault != faults.KindOutage {
		t.Errorf("during the outage: %v, want outage", d.Fault)
	}
	clk.Advance(30 * time.Second)
	if d := e.Decide(req); d.Fault != faults.None {
		t.Errorf("after the outage: %v, want none", d.Fault)
	}
	if p := e.Profile(); p.Outage != nil {
		t.Errorf("ended outage still reported: %+v", p.Outage)
	}
}

func TestPatchMergesIntoTheCurrentProfile(t *testing.T) {
	clk := newClock()
	tests := []struct {
		name  string
		start faults.Profile
		patch string
		want  faults.Profile
	}{
		{
			name:  "fields are replaced, null removes, others stay",
			start: faults.Profile{Seed: seed(1), ErrorRate: 0.2, Latency: faults.Duration(time.Second)},
			patch: `{"errorRate": null, "timeoutRate": 0.1}`,
			// errorStatus was filled in with errorRate and stays for the next rate.
			want: faults.Profile{Seed: seed(1), ErrorStatus: 503, TimeoutRate: 0.1, Latency: faults.Duration(time.Second)},
		},
		{
			name:  "arrays are replaced whole",
			start: faults.Profile{Seed: seed(1), Rules: []faults.Rule{{OrderID: "a", Status: 400}, {OrderID: "b", Status: 404}}},
			patch: `{"rules": [{"orderID": "c", "status": 422}]}`,
			want:  faults.Profile{Seed: seed(1), Rules: []faults.Rule{{Name: "rules[0]", OrderID: "c", Status: 422}}},
		},
		{
			name:  "an outage duration replaces its end time",
			start: faults.Profile{Seed: seed(1), Outage: &faults.Outage{For: faults.Duration(time.Minute), Mode: faults.OutageDrop}},
			patch: `{"outage": {"for": "10s"}}`,
			want: faults.Profile{Seed: seed(1), Outage: &faults.Outage{
				Until: new(clk.Now().Add(10 * time.Second)), Mode: faults.OutageDrop,
			}},
		},
		{
			name:  "defaults are filled in",
			start: faults.Profile{Seed: seed(1)},
			patch: `{"errorRate": 0.5, "failFirst": {"count": 3}}`,
			want:  faults.Profile{Seed: seed(1), ErrorRate: 0.5, ErrorStatus: 503, FailFirst: &faults.FailFirst{Count: 3, Status: 503}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, tt.start, clk.Now)
			got, err := e.Patch([]byte(tt.patch))
			if err != nil {
				t.Fatalf("Patch: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("profile mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(got, e.Profile()); diff != "" {
				t.Errorf("Profile() differs from Patch's answer (-patch +profile):\n%s", diff)
			}
		})
	}
}

func TestPatchKeepsCountersUnlessTheSeedChanges(t *testing.T) {
	e := newEngine(t, faults.Profile{Seed: seed(1), FailFirst: &faults.FailFirst{Count: 1}}, time.Now)
	req := faults.Request{Route: faults.RouteAllocate, OrderID: "O-1"}
	e.Decide(req) // O-1's one failure is used up
	if _, err := e.Patch([]byte(`{"latency": "1ms"}`)); err != nil {
		t.Fatal(err)
	}
	if d := e.Decide(req); d.Fault != faults.None {
		t.Errorf("after a patch without seed: %v, want none (count kept)", d.Fault)
	}
	if _, err := e.Patch([]byte(`{"seed": 2}`)); err != nil {
		t.Fatal(err)
	}
	if d := e.Decide(req); d.Fault != faults.KindFailFirst {
		t.Errorf("after a seed change: %v, want failFirst (counts start over)", d.Fault)
	}
}

func TestPatchRejectsBadInputAndKeepsTheProfile(t *testing.T) {
	e := newEngine(t, faults.Profile{Seed: seed(1), ErrorRate: 0.1}, time.Now)
	before := e.Profile()
	for _, patch := range []string{`not json`, `[1,2]`, `{"errorRate": 2}`, `{"errorrate": 0.5}`} {
		if _, err := e.Patch([]byte(patch)); err == nil {
			t.Errorf("Patch(%s) succeeded, want an error", patch)
		}
	}
	if diff := cmp.Diff(before, e.Profile()); diff != "" {
		t.Errorf("a failed patch changed the profile (-before +after):\n%s", diff)
	}
}

func TestHealKeepsOnlyTheSeed(t *testing.T) {
	e := newEngine(t, mixed(9), time.Now)
	if diff := cmp.Diff(faults.Profile{Seed: seed(9)}, e.Heal()); diff != "" {
		t.Errorf("healed profile mismatch (-want +got):\n%s", diff)
	}
}

func TestConcurrentDecisionsAreSafe(t *testing.T) {
	e := newEngine(t, mixed(5), time.Now)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 500 {
				e.Decide(faults.Request{Route: faults.RouteAllocate, OrderID: "O-" + string(rune('a'+i))})
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			if _, err := e.Patch([]byte(`{"latency":"2ms"}`)); err != nil {
				t.Error(err)
			}
			e.Profile()
		}
	})
	wg.Wait()
}
