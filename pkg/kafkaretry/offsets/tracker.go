package offsets

import (
	"sort"
	"sync"
)

// Tracker records, per partition, which fetched records have finished and
// reports the contiguous prefix of finished offsets that may be committed.
// The zero value is not usable; call [NewTracker]. A Tracker is safe for
// concurrent use: typically the fetch loop calls Begin, workers call Done and
// a commit loop calls Committable.
type Tracker struct {
	mu         sync.Mutex
	partitions map[int]*partState
	inFlight   int
}

// partState is the state of one partition.
type partState struct {
	// window holds the fetched records from the oldest unfinished one to the
	// newest fetched one, in fetch (= ascending offset) order. Records before
	// the window have finished and were folded into last.
	window []entry
	// newest is the highest offset given to Begin since the last reset;
	// valid when seen is true.
	newest int64
	seen   bool
	// last is the offset of the last record of the finished prefix; advanced
	// says it moved since the previous Committable.
	last     int64
	advanced bool
}

type entry struct {
	offset int64
	done   bool
}

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker {
	return &Tracker{partitions: make(map[int]*partState)}
}

// Begin records that the record at offset of partition was fetched and is
// about to be processed. Call it in fetch order, before the record is handed
// to a worker, so that a record can never finish before it is tracked.
//
// An offset at or below the newest offset already begun for the partition
// means the broker re-delivers from there (the partition was revoked and
// assigned again after a rebalance, or the reader was repositioned): the
// partition's earlier state is dropped and tracking restarts at offset.
//
// Begin returns how many entries left the window because of such a reset
// (0 otherwise): with Done's count, the caller knows the window's size and
// can bound its memory.
func (t *Tracker) Begin(partition int, offset int64) (dropped int) {
	t.mu.Lock()
	defer t.mu.Unlock()

	p := t.partitions[partition]
	if p == nil {
		p = &partState{}
		t.partitions[partition] = p
	}
	if p.seen && offset <= p.newest {
		dropped = len(p.window)
		t.reset(p)
	}
	p.window = append(p.window, entry{offset: offset})
	p.newest, p.seen = offset, true
	t.inFlight++
	return dropped
}

// reset forgets a partition's records. Their handlers may still finish; the
// Done calls then find nothing (or the re-delivered copy) and are handled as
// documented on Done.
func (t *Tracker) reset(p *partState) {
	for _, e := range p.window {
		if !e.done {
			t.inFlight--
		}
	}
	*p = partState{}
}

// Done records that the record at offset of partition finished: its outcome
// is acknowledged, so it may be committed once every record before it has
// finished too. Done may be called in any order and from any goroutine.
//
// Done for an offset that is not tracked (never begun, already finished, or
// dropped by a re-delivery reset) is ignored. After a reset, a Done from the
// earlier delivery of a record that is tracked again marks it finished: the
// record was processed to an acknowledged outcome, which is all a commit
// needs; the second delivery then runs as a harmless duplicate.
//
// Done returns how many entries left the window: the finished prefix that
// this call completed, 0 when an earlier record is still running.
func (t *Tracker) Done(partition int, offset int64) (folded int) {
	t.mu.Lock()
	defer t.mu.Unlock()

	p := t.partitions[partition]
	if p == nil {
		return 0
	}
	i := sort.Search(len(p.window), func(i int) bool { return p.window[i].offset >= offset })
	if i == len(p.window) || p.window[i].offset != offset || p.window[i].done {
		return 0
	}
	p.window[i].done = true
	t.inFlight--
	if i != 0 {
		return 0 // an earlier record is still running: the prefix did not move
	}

	n := 0
	for n < len(p.window) && p.window[n].done {
		n++
	}
	p.last, p.advanced = p.window[n-1].offset, true
	clear(p.window[:n])
	p.window = p.window[n:]
	return n
}

// Committable returns, for each partition whose finished prefix advanced
// since the previous call, the offset of the last record of that prefix: the
// highest offset o such that every record begun at or below o has finished.
// It returns nil when nothing advanced.
//
// The value is the offset of a record, in kafka-go's convention:
// Reader.CommitMessages(ctx, kafka.Message{Topic: t, Partition: p, Offset: o})
// commits o+1, the next offset to read. Do not add 1 yourself.
//
// Each call consumes what it reports: if the commit fails, the caller must
// keep the value and retry it (a later value for the same partition supersedes
// it).
func (t *Tracker) Committable() map[int]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()

	var out map[int]int64
	for id, p := range t.partitions {
		if !p.advanced {
			continue
		}
		if out == nil {
			out = make(map[int]int64)
		}
		out[id] = p.last
		p.advanced = false
	}
	return out
}

// InFlight returns the number of records begun and not yet done, over all
// partitions (records dropped by a re-delivery reset no longer count).
func (t *Tracker) InFlight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.inFlight
}

// Uncommitted returns the number of records held for the partition: from the
// oldest unfinished record to the newest fetched one, finished or not. It is
// the memory the tracker uses for the partition and a measure of how far the
// committed offset lags behind the work already done.
func (t *Tracker) Uncommitted(partition int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.partitions[partition]; p != nil {
		return len(p.window)
	}
	return 0
}
