package redrive

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
)

// TestLimiterSpacesBatchesOnAFakeClock proves the spacing of a limited run
// exactly, on synctest's fake clock, where machine load cannot move it:
// the burst leaves at once, the rest at the rate, and no second holds more
// than the rate plus the burst. (dlq's TestRateLimitSpacesRecords checks
// the same run end to end on the wall clock, with bounds a loaded machine
// meets.)
func TestLimiterSpacesBatchesOnAFakeClock(t *testing.T) {
	const (
		n     = 330
		rate  = 100.0
		burst = 10 // NewLimiter's burst: a tenth of a second
	)
	synctest.Test(t, func(t *testing.T) {
		letters := make([]deadletter.Letter, n)
		for i := range letters {
			letters[i] = deadletter.FromMessage(kafka.Message{Topic: "order-dead-letter", Partition: i % 3, Offset: int64(i), Key: []byte(fmt.Sprintf("O-%05d", i))})
		}
		e := &Engine{To: ToRetry, RetryTopic: "order-retries", Limiter: NewLimiter(rate)}
		formed := make(chan *batch)
		var failed atomic.Bool
		done := make(chan error, 1)
		go func() {
			done <- e.form(t.Context(), letters, formed, &failed)
			close(formed)
		}()
		start := time.Now()
		var times []time.Time
		for b := range formed {
			for range b.copies {
				times = append(times, b.at)
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if len(times) != n {
			t.Fatalf("%d records formed, want %d", len(times), n)
		}
		if first := times[burst-1]; !first.Equal(start) {
			t.Errorf("the burst of %d left after %s, want at once", burst, first.Sub(start))
		}
		// On the fake clock the run takes exactly the time the rate
		// allows; a millisecond covers the limiter's rounding.
		spread := times[n-1].Sub(times[0])
		want := time.Duration(float64(n-burst) / rate * float64(time.Second))
		if d := spread - want; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("%d records spread over %s, want %s", n, spread, want)
		}
		for i := range times {
			j, _ := slices.BinarySearchFunc(times, times[i].Add(time.Second), time.Time.Compare)
			if j-i > int(rate)+burst {
				t.Fatalf("%d records within one second from %s", j-i, times[i].Sub(start))
			}
		}
	})
}
