package resolution_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/resolution"
)

func pos(p int, o int64) deadletter.Position { return deadletter.Position{Partition: p, Offset: o} }

func TestCursorOffsetIsTheFirstPendingLetter(t *testing.T) {
	type seen struct {
		offset   int64
		resolved bool
	}
	tests := []struct {
		name    string
		seen    []seen // partition 0, in offset order
		end     int64
		resolve []int64
		want    int64
	}{
		{"nothing pending: the end", []seen{{0, true}, {1, true}}, 2, nil, 2},
		{"first pending", []seen{{0, true}, {1, false}, {2, false}}, 3, nil, 1},
		{"resolving the first moves past it", []seen{{0, false}, {1, false}, {2, false}}, 3, []int64{0}, 1},
		{"out of order: a later letter resolved does not move it", []seen{{0, false}, {1, false}, {2, false}}, 3, []int64{2}, 0},
		{"out of order, then the gap closes", []seen{{0, false}, {1, false}, {2, false}}, 3, []int64{2, 0, 1}, 3},
		{"starting above zero (group offset 10)", []seen{{10, false}, {11, false}}, 12, []int64{10}, 11},
		{"an empty scan keeps the end", nil, 5, nil, 5},
		{"a rescan changes nothing", []seen{{0, false}, {1, false}, {0, true}, {1, true}}, 2, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := resolution.NewCursor()
			for _, s := range tc.seen {
				c.Observe(pos(0, s.offset), s.resolved)
			}
			c.ScannedTo(0, tc.end)
			for _, o := range tc.resolve {
				c.Resolve(pos(0, o))
			}
			if diff := cmp.Diff(map[int]int64{0: tc.want}, c.Offsets()); diff != "" {
				t.Errorf("offsets (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCursorLeavesUnscannedPartitionsAlone(t *testing.T) {
	c := resolution.NewCursor()
	c.Observe(pos(1, 4), false)
	c.Resolve(pos(1, 4))
	if got := c.Offsets(); len(got) != 0 {
		t.Errorf("a partition whose scan did not finish got offset %v", got)
	}
	c.ScannedTo(1, 9)
	if diff := cmp.Diff(map[int]int64{1: 9}, c.Offsets()); diff != "" {
		t.Errorf("offsets (-want +got):\n%s", diff)
	}
}
