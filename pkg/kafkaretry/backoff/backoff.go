package backoff

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Jitter names a strategy that randomises the exponential delay.
type Jitter string

// The jitter strategies. See the package documentation for when to use which.
const (
	Proportional Jitter = "proportional"
	Full         Jitter = "full"
	Equal        Jitter = "equal"
	Decorrelated Jitter = "decorrelated"
)

// DefaultFraction is the spread of the proportional strategy when
// Policy.Fraction is 0: the pattern's ±10% rule.
const DefaultFraction = 0.1

// maxDuration is the largest representable time.Duration.
const maxDuration = time.Duration(math.MaxInt64)

// ParseJitter returns the strategy named by s (case-insensitive, surrounding
// spaces ignored).
func ParseJitter(s string) (Jitter, error) {
	j := Jitter(strings.ToLower(strings.TrimSpace(s)))
	switch j {
	case Proportional, Full, Equal, Decorrelated:
		return j, nil
	}
	return "", fmt.Errorf("unknown jitter %q: want one of proportional, full, equal, decorrelated", s)
}

// Policy describes the delays between attempts. The zero Jitter means
// Proportional and the zero Fraction means DefaultFraction, so a Policy only
// needs Base and Max.
type Policy struct {
	// Base is the delay before the first retry (before jitter).
	Base time.Duration
	// Max caps the exponential delay.
	Max time.Duration
	// Jitter is the randomisation strategy; empty means Proportional.
	Jitter Jitter
	// Fraction is the spread of the Proportional strategy, in [0, 1];
	// 0 means DefaultFraction. Other strategies ignore it.
	Fraction float64
	// Rand returns a number in [0, 1). Nil means math/rand/v2.Float64.
	// Inject a seeded source for deterministic tests.
	Rand func() float64
}

// Validate reports every problem of the policy. Each message names the field
// and the accepted form.
func (p Policy) Validate() error {
	var errs []error
	if p.Base <= 0 {
		errs = append(errs, fmt.Errorf("invalid Base: must be a positive duration such as 1s, got %s", p.Base))
	}
	if p.Max <= 0 {
		errs = append(errs, fmt.Errorf("invalid Max: must be a positive duration such as 1m, got %s", p.Max))
	} else if p.Base > 0 && p.Max < p.Base {
		errs = append(errs, fmt.Errorf("invalid Max: must be a duration >= Base (%s), got %s", p.Base, p.Max))
	}
	switch p.Jitter {
	case "", Proportional, Full, Equal, Decorrelated:
	default:
		errs = append(errs, fmt.Errorf("invalid Jitter: must be one of proportional, full, equal, decorrelated, got %q", p.Jitter))
	}
	if math.IsNaN(p.Fraction) || p.Fraction < 0 || p.Fraction > 1 {
		errs = append(errs, fmt.Errorf("invalid Fraction: must be a number between 0 and 1 such as 0.1, got %v", p.Fraction))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("backoff policy: %w", errors.Join(errs...))
}

// Exponential returns the un-jittered delay after attempt failed attempts:
// min(Max, Base*2^(attempt-1)). Attempts below 1 count as 1. It never
// overflows, however large attempt is.
func (p Policy) Exponential(attempt int) time.Duration {
	base, ceiling := p.limits()
	shift := max(attempt, 1) - 1
	// Base*2^shift > ceiling  <=>  Base > ceiling>>shift; checking it this
	// way round cannot overflow.
	if shift >= 63 || base > ceiling>>shift {
		return ceiling
	}
	return base << shift
}

// Delay returns the wait before the next attempt, after attempt failed
// attempts (attempt >= 1; smaller values count as 1). prev is the previous
// delay and is used only by Decorrelated (0 on the first retry). The result
// is never negative and never above Bound.
func (p Policy) Delay(attempt int, prev time.Duration) time.Duration {
	switch p.Jitter {
	case Full:
		return scale(p.Exponential(attempt), p.rand())
	case Equal:
		d := p.Exponential(attempt)
		half := d / 2
		return d - half + scale(half, p.rand())
	case Decorrelated:
		base, ceiling := p.limits()
		if prev < base {
			prev = base
		}
		upper := ceiling
		if prev <= ceiling/3 {
			upper = prev * 3
		}
		return min(ceiling, base+scale(upper-base, p.rand()))
	default: // Proportional
		f := p.fraction()
		return scale(p.Exponential(attempt), 1+f*(2*p.rand()-1))
	}
}

// Bound is the largest delay the policy can return: Max*(1+Fraction) for
// Proportional, Max for the others.
func (p Policy) Bound() time.Duration {
	_, ceiling := p.limits()
	if p.Jitter == "" || p.Jitter == Proportional {
		return scale(ceiling, 1+p.fraction())
	}
	return ceiling
}

// WithRetryAfter returns the delay to use when the server asked to wait
// retryAfter: the larger of d and retryAfter, where retryAfter is capped at
// Max (a server cannot park a record for longer than the policy allows) and
// d keeps its jittered value (at most Bound).
func (p Policy) WithRetryAfter(d, retryAfter time.Duration) time.Duration {
	_, ceiling := p.limits()
	d = min(max(d, 0), p.Bound())
	return max(d, min(retryAfter, ceiling))
}

// ParseRetryAfter reads a Retry-After header value (RFC 9110 §10.2.3):
// either delta-seconds ("120") or an HTTP date ("Wed, 21 Oct 2015 07:28:00
// GMT"), relative to now. A date in the past gives 0. ok is false when v is
// empty or neither form.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs > int64(maxDuration/time.Second) {
			// Only possible for absurdly large values; saturate, the
			// policy's cap applies anyway.
			return maxDuration, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

func isDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// limits returns Base and Max made safe for arithmetic: never negative and
// Max >= Base, so that even an invalid policy yields sane delays.
func (p Policy) limits() (base, ceiling time.Duration) {
	base = max(p.Base, 0)
	return base, max(p.Max, base)
}

func (p Policy) fraction() float64 {
	if p.Fraction == 0 || math.IsNaN(p.Fraction) {
		return DefaultFraction
	}
	return min(max(p.Fraction, 0), 1)
}

// rand draws from the injected source, clamped to [0, 1) so that a faulty
// source cannot produce negative or out-of-bound delays.
func (p Policy) rand() float64 {
	var r float64
	if p.Rand != nil {
		r = p.Rand()
	} else {
		r = rand.Float64()
	}
	if !(r >= 0) { // also catches NaN
		return 0
	}
	return min(r, math.Nextafter(1, 0))
}

// scale returns d*f for f >= 0, saturating instead of overflowing.
func scale(d time.Duration, f float64) time.Duration {
	v := float64(d) * f
	if v <= 0 {
		return 0
	}
	// float64(MaxInt64) rounds up to 2^63, which does not fit in an int64.
	if v >= float64(maxDuration) {
		return maxDuration
	}
	return time.Duration(v)
}
