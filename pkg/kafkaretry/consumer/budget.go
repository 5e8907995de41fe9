package consumer

import (
	"context"
	"sync"

	"github.com/segmentio/kafka-go"
)

// RecordOverhead is what a held record costs beyond the bytes of its key,
// value and headers: the kafka.Message itself, its work closure, its place
// in a lane or in the scheduler's heap, and its entry in the offset
// tracker's window. It is an estimate from heap profiles of order-retry
// holding retries (see docs/performance.md), rounded up.
const RecordOverhead = 512

// headerOverhead is what each header costs beyond its key and value: the
// kafka.Header (a string and a slice header) and the rounding of two small
// allocations.
const headerOverhead = 48

// windowEntryBytes is the part of RecordOverhead that stays held after
// the record finished, while it waits in the offset tracker's window for
// the records before it to finish (an entry, with append's slack).
const windowEntryBytes = 32

// RecordSize is the number of bytes a record counts against
// Config.MaxPendingBytes while it is held.
func RecordSize(msg kafka.Message) int64 {
	n := int64(RecordOverhead + len(msg.Key) + len(msg.Value))
	for _, h := range msg.Headers {
		n += int64(headerOverhead + len(h.Key) + len(h.Value))
	}
	return n
}

// budget bounds the bytes held by Run. acquire blocks while the budget is
// full; a record larger than the whole budget is let in when nothing else
// is held, so it progresses alone instead of deadlocking the fetch loop.
type budget struct {
	max int64

	mu      sync.Mutex
	used    int64
	changed chan struct{} // closed and replaced at every release
}

func newBudget(max int64) *budget {
	return &budget{max: max, changed: make(chan struct{})}
}

// acquire takes n bytes, waiting until they fit (or nothing is held) or
// ctx ends.
func (b *budget) acquire(ctx context.Context, n int64) error {
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.max {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		changed := b.changed
		b.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release gives n bytes back and wakes a waiting acquire.
func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}
