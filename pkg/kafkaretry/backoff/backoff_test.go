package backoff_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/backoff"
)

// seeded returns a deterministic source of [0, 1) numbers.
func seeded(seed uint64) func() float64 {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)).Float64
}

// constant returns a source that always yields r.
func constant(r float64) func() float64 { return func() float64 { return r } }

func TestParseJitterAcceptsEveryStrategyAndRejectsOthers(t *testing.T) {
	tests := []struct {
		in      string
		want    backoff.Jitter
		wantErr bool
	}{
		{"proportional", backoff.Proportional, false},
		{"full", backoff.Full, false},
		{"equal", backoff.Equal, false},
		{"decorrelated", backoff.Decorrelated, false},
		{" Full ", backoff.Full, false},
		{"", "", true},
		{"exponential", "", true},
	}
	for _, tt := range tests {
		got, err := backoff.ParseJitter(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseJitter(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "proportional, full, equal, decorrelated") {
			t.Errorf("ParseJitter(%q) error %q does not list the accepted values", tt.in, err)
		}
	}
}

func TestValidateNamesTheFieldAndTheAcceptedForm(t *testing.T) {
	tests := []struct {
		name   string
		policy backoff.Policy
		want   []string // substrings of the error; nil means valid
	}{
		{"defaults are valid", backoff.Policy{Base: time.Second, Max: time.Minute}, nil},
		{"every strategy is valid", backoff.Policy{Base: time.Second, Max: time.Second, Jitter: backoff.Decorrelated, Fraction: 1}, nil},
		{"zero base", backoff.Policy{Max: time.Minute}, []string{"Base", "positive duration such as 1s"}},
		{"negative max", backoff.Policy{Base: time.Second, Max: -1}, []string{"Max", "positive duration such as 1m"}},
		{"max below base", backoff.Policy{Base: time.Minute, Max: time.Second}, []string{"Max", ">= Base"}},
		{"unknown jitter", backoff.Policy{Base: time.Second, Max: time.Minute, Jitter: "Full"}, []string{"Jitter", "one of proportional"}},
		{"fraction too big", backoff.Policy{Base: time.Second, Max: time.Minute, Fraction: 1.5}, []string{"Fraction", "between 0 and 1"}},
		{"fraction NaN", backoff.Policy{Base: time.Second, Max: time.Minute, Fraction: math.NaN()}, []string{"Fraction"}},
		{"all problems at once", backoff.Policy{Base: -1, Max: -1, Jitter: "x", Fraction: -1}, []string{"Base", "Max", "Jitter", "Fraction"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to mention %q", err, w)
				}
			}
		})
	}
}

func TestExponentialDoublesFromBaseAndStopsAtMax(t *testing.T) {
	p := backoff.Policy{Base: time.Second, Max: time.Minute}
	want := map[int]time.Duration{
		-3: time.Second, 0: time.Second, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second,
		6: 32 * time.Second, 7: time.Minute, 64: time.Minute, 1000: time.Minute, math.MaxInt: time.Minute,
	}
	for attempt, w := range want {
		if got := p.Exponential(attempt); got != w {
			t.Errorf("Exponential(%d) = %s, want %s", attempt, got, w)
		}
	}
}

func TestExponentialDoesNotOverflowWithAHugeMax(t *testing.T) {
	p := backoff.Policy{Base: 3 * time.Second, Max: time.Duration(math.MaxInt64)}
	prev := time.Duration(0)
	for attempt := 1; attempt <= 200; attempt++ {
		d := p.Exponential(attempt)
		if d < prev {
			t.Fatalf("Exponential(%d) = %d, smaller than the previous %d: overflow", attempt, d, prev)
		}
		prev = d
	}
	if prev != p.Max {
		t.Errorf("Exponential(200) = %d, want Max %d", prev, p.Max)
	}
}

// bounds returns the inclusive range a strategy may return for attempt
// (with prev for Decorrelated).
func bounds(p backoff.Policy, attempt int, prev time.Duration) (lo, hi time.Duration) {
	d := p.Exponential(attempt)
	f := p.Fraction
	if f == 0 {
		f = backoff.DefaultFraction
	}
	switch p.Jitter {
	case backoff.Full:
		return 0, d
	case backoff.Equal:
		return d / 2, d
	case backoff.Decorrelated:
		if prev < p.Base {
			prev = p.Base
		}
		return min(p.Base, p.Max), min(p.Max, 3*prev)
	default:
		return time.Duration(float64(d) * (1 - f)), time.Duration(float64(d) * (1 + f))
	}
}

func TestDelayStaysWithinTheBoundsOfEveryAttemptForEveryStrategy(t *testing.T) {
	strategies := []backoff.Jitter{"", backoff.Proportional, backoff.Full, backoff.Equal, backoff.Decorrelated}
	// The extremes of the random source matter most for bounds.
	sources := map[string]func() float64{
		"zero":       constant(0),
		"almost 1":   constant(math.Nextafter(1, 0)),
		"seeded":     seeded(1),
		"faulty 7":   constant(7),
		"faulty -1":  constant(-1),
		"faulty NaN": constant(math.NaN()),
	}
	for _, j := range strategies {
		for name, src := range sources {
			p := backoff.Policy{Base: 100 * time.Millisecond, Max: 30 * time.Second, Jitter: j, Fraction: 0.25, Rand: src}
			prev := time.Duration(0)
			for attempt := 1; attempt <= 80; attempt++ {
				got := p.Delay(attempt, prev)
				lo, hi := bounds(p, attempt, prev)
				if got < lo || got > hi {
					t.Errorf("%q/%s: Delay(%d, %s) = %s, want within [%s, %s]", j, name, attempt, prev, got, lo, hi)
				}
				if got < 0 || got > p.Bound() {
					t.Errorf("%q/%s: Delay(%d) = %s, outside [0, Bound=%s]", j, name, attempt, got, p.Bound())
				}
				prev = got
			}
		}
	}
}

func TestDelayIsNeverNegativeEvenWithExtremePolicies(t *testing.T) {
	policies := []backoff.Policy{
		{Base: 1, Max: 1},
		{Base: time.Duration(math.MaxInt64), Max: time.Duration(math.MaxInt64), Fraction: 1},
		{Base: time.Second, Max: time.Duration(math.MaxInt64)},
		{Base: -time.Second, Max: -time.Minute},            // invalid, still sane
		{Base: time.Minute, Max: time.Second, Fraction: 1}, // invalid, still sane
	}
	for _, base := range policies {
		for _, j := range []backoff.Jitter{backoff.Proportional, backoff.Full, backoff.Equal, backoff.Decorrelated} {
			p := base
			p.Jitter = j
			p.Rand = constant(math.Nextafter(1, 0))
			for _, attempt := range []int{math.MinInt, 0, 1, 2, 62, 63, 64, math.MaxInt} {
				for _, prev := range []time.Duration{math.MinInt64, 0, time.Hour, math.MaxInt64} {
					got := p.Delay(attempt, prev)
					if got < 0 || got > p.Bound() {
						t.Errorf("%+v: Delay(%d, %d) = %d, outside [0, %d]", p, attempt, prev, got, p.Bound())
					}
				}
			}
		}
	}
}

func TestBoundIsMaxPlusFractionForProportionalAndMaxOtherwise(t *testing.T) {
	tests := []struct {
		p    backoff.Policy
		want time.Duration
	}{
		{backoff.Policy{Base: time.Second, Max: time.Minute}, 66 * time.Second},
		{backoff.Policy{Base: time.Second, Max: time.Minute, Fraction: 0.5}, 90 * time.Second},
		{backoff.Policy{Base: time.Second, Max: time.Minute, Jitter: backoff.Full}, time.Minute},
		{backoff.Policy{Base: time.Second, Max: time.Minute, Jitter: backoff.Equal}, time.Minute},
		{backoff.Policy{Base: time.Second, Max: time.Minute, Jitter: backoff.Decorrelated}, time.Minute},
	}
	for _, tt := range tests {
		if got := tt.p.Bound(); got != tt.want {
			t.Errorf("%+v: Bound() = %s, want %s", tt.p, got, tt.want)
		}
	}
}

// TestDelaySpreadMatchesTheStrategy draws many delays from a seeded source
// and checks the mean, the standard deviation and the range actually
// reached against the strategy's uniform distribution.
func TestDelaySpreadMatchesTheStrategy(t *testing.T) {
	const draws = 20000
	base, ceiling := time.Second, time.Hour
	d := float64(8 * time.Second) // attempt 4
	prev := 2 * time.Second       // for Decorrelated: uniform[1s, 6s]
	tests := []struct {
		jitter backoff.Jitter
		lo, hi float64 // the uniform distribution's support
	}{
		{backoff.Proportional, d * 0.9, d * 1.1},
		{backoff.Full, 0, d},
		{backoff.Equal, d / 2, d},
		{backoff.Decorrelated, float64(base), float64(3 * prev)},
	}
	for i, tt := range tests {
		t.Run(string(tt.jitter), func(t *testing.T) {
			p := backoff.Policy{Base: base, Max: ceiling, Jitter: tt.jitter, Rand: seeded(uint64(i + 42))}
			var sum, sumSq float64
			minSeen, maxSeen := math.Inf(1), math.Inf(-1)
			for range draws {
				v := float64(p.Delay(4, prev))
				sum += v
				sumSq += v * v
				minSeen, maxSeen = min(minSeen, v), max(maxSeen, v)
			}
			mean := sum / draws
			std := math.Sqrt(sumSq/draws - mean*mean)
			width := tt.hi - tt.lo
			wantMean, wantStd := (tt.lo+tt.hi)/2, width/math.Sqrt(12)
			// The standard error of the mean is wantStd/sqrt(draws) ≈ 0.2% of
			// the width; 1% leaves room without hiding a biased strategy.
			if math.Abs(mean-wantMean) > 0.01*width {
				t.Errorf("mean = %s, want %s ± 1%% of %s", time.Duration(mean), time.Duration(wantMean), time.Duration(width))
			}
			if math.Abs(std-wantStd) > 0.02*wantStd {
				t.Errorf("standard deviation = %s, want %s ± 2%%", time.Duration(std), time.Duration(wantStd))
			}
			// The draws must cover the whole range, not a corner of it.
			if minSeen > tt.lo+0.01*width || maxSeen < tt.hi-0.01*width {
				t.Errorf("draws span [%s, %s], want close to [%s, %s]",
					time.Duration(minSeen), time.Duration(maxSeen), time.Duration(tt.lo), time.Duration(tt.hi))
			}
		})
	}
}

func TestDelayWithTheDefaultSourceStaysInBounds(t *testing.T) {
	p := backoff.Policy{Base: time.Millisecond, Max: time.Second, Jitter: backoff.Full}
	for attempt := 1; attempt <= 1000; attempt++ {
		if got := p.Delay(attempt, 0); got < 0 || got > time.Second {
			t.Fatalf("Delay(%d) = %s, outside [0, 1s]", attempt, got)
		}
	}
}

func TestWithRetryAfterTakesTheLargerDelayStillCapped(t *testing.T) {
	p := backoff.Policy{Base: time.Second, Max: time.Minute} // Bound 66s
	tests := []struct {
		name          string
		d, retryAfter time.Duration
		want          time.Duration
	}{
		{"server asks for longer", 2 * time.Second, 10 * time.Second, 10 * time.Second},
		{"computed delay is longer", 20 * time.Second, 5 * time.Second, 20 * time.Second},
		{"no Retry-After", 3 * time.Second, 0, 3 * time.Second},
		{"negative Retry-After ignored", 3 * time.Second, -time.Hour, 3 * time.Second},
		{"server asks for too long", 2 * time.Second, time.Hour, time.Minute},
		{"jittered delay above Max is kept", 63 * time.Second, time.Hour, 63 * time.Second},
		{"delay above the bound is clamped", time.Hour, 0, 66 * time.Second},
		{"negative delay is clamped", -time.Second, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.WithRetryAfter(tt.d, tt.retryAfter); got != tt.want {
				t.Errorf("WithRetryAfter(%s, %s) = %s, want %s", tt.d, tt.retryAfter, got, tt.want)
			}
		})
	}
}

func TestParseRetryAfterReadsSecondsAndHTTPDates(t *testing.T) {
	now := time.Date(2015, 10, 21, 7, 28, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"120", 2 * time.Minute, true},
		{" 0 ", 0, true},
		{"99999999999999999999", time.Duration(math.MaxInt64), true},
		{"Wed, 21 Oct 2015 07:29:30 GMT", 90 * time.Second, true},     // IMF-fixdate
		{"Wednesday, 21-Oct-15 07:28:10 GMT", 10 * time.Second, true}, // RFC 850
		{"Wed Oct 21 07:28:05 2015", 5 * time.Second, true},           // ANSI C asctime
		{"Wed, 21 Oct 2015 07:00:00 GMT", 0, true},                    // in the past: retry now
		{"", 0, false},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"2015-10-21T07:29:00Z", 0, false},
	}
	for _, tt := range tests {
		got, ok := backoff.ParseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseRetryAfter(%q) = %s, %v; want %s, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func BenchmarkDelay(b *testing.B) {
	for _, j := range []backoff.Jitter{backoff.Proportional, backoff.Full, backoff.Equal, backoff.Decorrelated} {
		b.Run(string(j), func(b *testing.B) {
			p := backoff.Policy{Base: time.Second, Max: time.Minute, Jitter: j}
			var prev time.Duration
			for i := 0; b.Loop(); i++ {
				prev = p.Delay(i%10+1, prev)
			}
		})
	}
}
