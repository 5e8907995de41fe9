package resolution

import "github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"

// Cursor computes the group offset of each dead-letter partition: the
// first dead letter still pending, or the end of what was scanned when
// none is. A run feeds it every record it scans from the group's current
// offset on (Observe), says how far the scan went (ScannedTo), and reports
// each letter it resolves (Resolve). Offsets then returns the new group
// offsets. It is not safe for concurrent use.
type Cursor struct {
	parts map[int]*partCursor
}

type partCursor struct {
	pending []int64 // pending offsets seen, increasing
	seen    int64   // highest offset observed; -1 before the first
	next    int     // pending[:next] are resolved
	done    map[int64]bool
	end     int64 // scanned up to here (exclusive); -1 until ScannedTo
}

// NewCursor returns an empty Cursor.
func NewCursor() *Cursor { return &Cursor{parts: map[int]*partCursor{}} }

func (c *Cursor) part(p int) *partCursor {
	pc, ok := c.parts[p]
	if !ok {
		pc = &partCursor{done: map[int64]bool{}, seen: -1, end: -1}
		c.parts[p] = pc
	}
	return pc
}

// Observe records a scanned dead letter. Call it for every record of the
// partition from the group's offset on, in offset order, whether or not it
// matches any filter: the watermark may only pass records it knows.
// Observing an offset again (a rescan) changes nothing.
func (c *Cursor) Observe(pos deadletter.Position, resolved bool) {
	pc := c.part(pos.Partition)
	if pos.Offset <= pc.seen {
		return
	}
	pc.seen = pos.Offset
	if !resolved {
		pc.pending = append(pc.pending, pos.Offset)
	}
}

// ScannedTo records that the partition was scanned up to end (exclusive).
func (c *Cursor) ScannedTo(partition int, end int64) {
	pc := c.part(partition)
	pc.end = max(pc.end, end)
}

// Resolve records that the dead letter at pos is now resolved (its entry
// is acknowledged in the log).
func (c *Cursor) Resolve(pos deadletter.Position) {
	c.part(pos.Partition).done[pos.Offset] = true
}

// Offsets returns the group offset of every partition that was scanned:
// the first pending offset, or the scan's end when nothing seen is pending.
func (c *Cursor) Offsets() map[int]int64 {
	out := make(map[int]int64, len(c.parts))
	for p, pc := range c.parts {
		if pc.end < 0 {
			continue
		}
		for pc.next < len(pc.pending) && pc.done[pc.pending[pc.next]] {
			delete(pc.done, pc.pending[pc.next])
			pc.next++
		}
		if pc.next < len(pc.pending) {
			out[p] = pc.pending[pc.next]
		} else {
			out[p] = pc.end
		}
	}
	return out
}
