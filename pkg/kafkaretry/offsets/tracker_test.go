package offsets

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// step is one call on a Tracker; for "commit" steps, want is the expected
// result of Committable.
type step struct {
	op        string // begin | done | commit
	partition int
	offset    int64
	want      map[int]int64
}

func begin(p int, o int64) step            { return step{op: "begin", partition: p, offset: o} }
func done(p int, o int64) step             { return step{op: "done", partition: p, offset: o} }
func commit(want map[int]int64) step       { return step{op: "commit", want: want} }
func inFlight(n int) step                  { return step{op: "inflight", offset: int64(n)} }
func uncommitted(p int, n int) step        { return step{op: "uncommitted", partition: p, offset: int64(n)} }
func beginAll(p int, offs ...int64) []step { return mapSteps(begin, p, offs) }
func doneAll(p int, offs ...int64) []step  { return mapSteps(done, p, offs) }

func mapSteps(f func(int, int64) step, p int, offs []int64) []step {
	out := make([]step, len(offs))
	for i, o := range offs {
		out[i] = f(p, o)
	}
	return out
}

func seq(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func one(s step) []step { return []step{s} }

func TestTracker(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name:  "nothing begun: nothing committable",
			steps: seq(one(commit(nil)), one(inFlight(0))),
		},
		{
			name: "in-order completion commits the last finished record",
			steps: seq(
				beginAll(0, 0, 1, 2),
				doneAll(0, 0, 1),
				one(commit(map[int]int64{0: 1})),
				one(inFlight(1)),
				doneAll(0, 2),
				one(commit(map[int]int64{0: 2})),
				one(inFlight(0)),
			),
		},
		{
			name: "out-of-order completion never commits past an unfinished offset",
			steps: seq(
				beginAll(0, 0, 1, 2, 3),
				doneAll(0, 3, 1, 2),
				one(commit(nil)),
				one(uncommitted(0, 4)),
				doneAll(0, 0),
				one(commit(map[int]int64{0: 3})),
				one(uncommitted(0, 0)),
			),
		},
		{
			name: "a gap in the middle holds the prefix there",
			steps: seq(
				beginAll(0, 10, 11, 12, 13),
				doneAll(0, 10, 12, 13),
				one(commit(map[int]int64{0: 10})),
				doneAll(0, 11),
				one(commit(map[int]int64{0: 13})),
			),
		},
		{
			name: "offsets with gaps (compaction) are never filled in with offset+1",
			steps: seq(
				beginAll(0, 5, 9, 20),
				doneAll(0, 5, 20),
				one(commit(map[int]int64{0: 5})),
				doneAll(0, 9),
				one(commit(map[int]int64{0: 20})),
			),
		},
		{
			name: "partitions are independent",
			steps: seq(
				beginAll(0, 0, 1),
				beginAll(1, 100, 101),
				doneAll(1, 100, 101),
				doneAll(0, 1),
				one(commit(map[int]int64{1: 101})),
				doneAll(0, 0),
				one(commit(map[int]int64{0: 1})),
			),
		},
		{
			name: "committable reports only partitions that advanced since the last call",
			steps: seq(
				beginAll(0, 0, 1),
				beginAll(1, 0),
				doneAll(0, 0),
				doneAll(1, 0),
				one(commit(map[int]int64{0: 0, 1: 0})),
				one(commit(nil)),
				doneAll(0, 1),
				one(commit(map[int]int64{0: 1})),
			),
		},
		{
			name: "done for unknown, repeated or never-begun offsets is ignored",
			steps: seq(
				beginAll(0, 0, 1),
				doneAll(0, 0, 0),
				doneAll(0, 7),
				doneAll(3, 0),
				one(inFlight(1)),
				one(commit(map[int]int64{0: 0})),
				doneAll(0, 0),
				one(commit(nil)),
			),
		},
		{
			name: "re-delivery from a lower offset resets the partition",
			steps: seq(
				beginAll(0, 0, 1, 2, 3, 4),
				doneAll(0, 0, 2, 3),
				// Rebalance: the group re-delivers from the committed offset 1.
				beginAll(0, 1),
				one(inFlight(1)),
				one(uncommitted(0, 1)),
				// The report of 0 from before the reset is dropped with the state.
				one(commit(nil)),
				beginAll(0, 2, 3),
				doneAll(0, 2, 3),
				one(commit(nil)),
				doneAll(0, 1),
				one(commit(map[int]int64{0: 3})),
			),
		},
		{
			name: "re-delivery of the newest offset itself resets too",
			steps: seq(
				beginAll(0, 0, 1),
				beginAll(0, 1),
				one(inFlight(1)),
				doneAll(0, 1),
				one(commit(map[int]int64{0: 1})),
			),
		},
		{
			name: "re-delivery after everything was committed restarts at the re-delivered offset",
			steps: seq(
				beginAll(0, 0, 1, 2),
				doneAll(0, 0, 1, 2),
				one(commit(map[int]int64{0: 2})),
				beginAll(0, 1),
				doneAll(0, 1),
				one(commit(map[int]int64{0: 1})),
			),
		},
		{
			name: "a late done from the earlier delivery counts for the re-delivered record",
			steps: seq(
				beginAll(0, 0, 1),
				beginAll(0, 0, 1),
				// The handler of the first delivery of 0 finishes now.
				doneAll(0, 0),
				one(commit(map[int]int64{0: 0})),
				one(inFlight(1)),
			),
		},
		{
			name: "a reset of one partition leaves the others alone",
			steps: seq(
				beginAll(0, 0, 1),
				beginAll(1, 0, 1),
				beginAll(0, 0),
				one(inFlight(3)),
				doneAll(1, 0, 1),
				one(commit(map[int]int64{1: 1})),
			),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker()
			for i, s := range tt.steps {
				switch s.op {
				case "begin":
					tr.Begin(s.partition, s.offset)
				case "done":
					tr.Done(s.partition, s.offset)
				case "commit":
					if diff := cmp.Diff(s.want, tr.Committable()); diff != "" {
						t.Fatalf("step %d: Committable() mismatch (-want +got):\n%s", i, diff)
					}
				case "inflight":
					if got := tr.InFlight(); got != int(s.offset) {
						t.Fatalf("step %d: InFlight() = %d, want %d", i, got, s.offset)
					}
				case "uncommitted":
					if got := tr.Uncommitted(s.partition); got != int(s.offset) {
						t.Fatalf("step %d: Uncommitted(%d) = %d, want %d", i, s.partition, got, s.offset)
					}
				default:
					t.Fatalf("step %d: unknown op %q", i, s.op)
				}
			}
		})
	}
}

// TestTrackerRandomCompletionNeverCommitsPastUnfinished drives the tracker
// with random fetches, completions in random order and commits at random
// moments, and checks every reported offset against a simple model: a
// reported offset o is valid only if every begun offset <= o has finished,
// reports per partition only grow, and once everything finished the last
// report is the newest offset.
func TestTrackerRandomCompletionNeverCommitsPastUnfinished(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		tr := NewTracker()

		const partitions = 3
		type rec struct {
			partition int
			offset    int64
		}
		var (
			next      [partitions]int64
			finished  [partitions]map[int64]bool
			begun     [partitions][]int64
			reported  [partitions]int64
			running   []rec
			remaining = 300
		)
		for p := range partitions {
			finished[p] = map[int64]bool{}
			reported[p] = -1
		}

		check := func() {
			for p, o := range tr.Committable() {
				if o <= reported[p] {
					t.Fatalf("seed %d: partition %d: report %d does not advance past %d", seed, p, o, reported[p])
				}
				for _, b := range begun[p] {
					if b <= o && !finished[p][b] {
						t.Fatalf("seed %d: partition %d: committable %d passes unfinished offset %d", seed, p, o, b)
					}
				}
				reported[p] = o
			}
			want := 0
			for p := range partitions {
				for _, b := range begun[p] {
					if !finished[p][b] {
						want++
					}
				}
			}
			if got := tr.InFlight(); got != want {
				t.Fatalf("seed %d: InFlight() = %d, want %d", seed, got, want)
			}
		}

		for remaining > 0 || len(running) > 0 {
			switch r := rng.IntN(10); {
			case r < 4 && remaining > 0:
				p := rng.IntN(partitions)
				next[p] += 1 + int64(rng.IntN(3)) // gaps, as after compaction
				tr.Begin(p, next[p])
				begun[p] = append(begun[p], next[p])
				running = append(running, rec{p, next[p]})
				remaining--
			case r < 8 && len(running) > 0:
				i := rng.IntN(len(running))
				d := running[i]
				running = append(running[:i], running[i+1:]...)
				tr.Done(d.partition, d.offset)
				finished[d.partition][d.offset] = true
			default:
				check()
			}
		}
		check()
		for p := range partitions {
			if len(begun[p]) > 0 && reported[p] != next[p] {
				t.Fatalf("seed %d: partition %d: last report %d, want newest offset %d", seed, p, reported[p], next[p])
			}
			if n := tr.Uncommitted(p); n != 0 {
				t.Fatalf("seed %d: partition %d: Uncommitted() = %d after all finished, want 0", seed, p, n)
			}
		}
	}
}

// TestTrackerConcurrentUse runs Begin, Done and Committable from several
// goroutines (run it with -race) and checks the final report.
func TestTrackerConcurrentUse(t *testing.T) {
	const (
		partitions = 4
		perPart    = 2000
	)
	tr := NewTracker()
	work := make(chan [2]int64, 64)

	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for w := range work {
				tr.Done(int(w[0]), w[1])
			}
		})
	}
	last := map[int]int64{}
	stop := make(chan struct{})
	committer := make(chan struct{})
	go func() {
		defer close(committer)
		for {
			for p, o := range tr.Committable() {
				last[p] = o
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()

	for o := range int64(perPart) {
		for p := range partitions {
			tr.Begin(p, o)
			work <- [2]int64{int64(p), o}
		}
	}
	close(work)
	wg.Wait()
	close(stop)
	<-committer
	for p, o := range tr.Committable() {
		last[p] = o
	}

	want := map[int]int64{}
	for p := range partitions {
		want[p] = perPart - 1
	}
	if diff := cmp.Diff(want, last); diff != "" {
		t.Errorf("final committable offsets mismatch (-want +got):\n%s", diff)
	}
	if n := tr.InFlight(); n != 0 {
		t.Errorf("InFlight() = %d after all done, want 0", n)
	}
}

func BenchmarkTrackerBeginDone(b *testing.B) {
	tr := NewTracker()
	var o int64
	for b.Loop() {
		tr.Begin(0, o)
		tr.Done(0, o)
		o++
	}
}
