// Package backoff computes how long to wait before the next attempt of a
// failed operation.
//
// # Why wait longer each time
//
// A transient failure (a timeout, a 503 from an overloaded service) usually
// means the other side needs time to recover. Retrying at once adds load at
// the worst moment, so the delay grows exponentially with the number of
// failed attempts and is capped so that a record is never parked for hours:
//
//	d = min(Max, Base * 2^(attempt-1))
//
// attempt counts the failed attempts so far and starts at 1, so the first
// retry waits about Base, the second 2*Base, the third 4*Base. (The
// pattern's description writes base*2^n with n counted from 0; it is the
// same sequence.)
//
// # Why jitter
//
// When a dependency fails, it fails for many records at once. Without
// randomness all of them would come back at exactly the same moment, a
// "thundering herd" that knocks the dependency over again. Jitter spreads
// the retries out. Four strategies are offered:
//
//   - Proportional: d*(1±Fraction), default ±10%. The exponential shape
//     stays visible, which makes the demo easy to follow. Upper bound
//     Max*(1+Fraction).
//   - Full: uniform in [0, d]. The widest spread and the least total load;
//     some retries happen almost immediately.
//   - Equal: d/2 + uniform in [0, d/2]. Always waits at least half of d.
//   - Decorrelated: min(Max, uniform in [Base, 3*prev]), where prev is the
//     previous delay. Each delay depends on the last one rather than on the
//     attempt number, which spreads clients well (see the AWS Architecture
//     Blog post "Exponential Backoff And Jitter").
//
// # Retry-After
//
// A server that answers 429 or 503 may say how long to wait with a
// Retry-After header (delta-seconds or an HTTP date). It knows its own state
// better than a formula does, so [Policy.WithRetryAfter] takes the larger of
// the computed delay and the server's, still capped.
//
// Randomness is injectable through [Policy.Rand], so tests are
// deterministic.
package backoff
