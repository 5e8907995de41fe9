package resolution_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/kafkalog"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/resolution"
)

const dlqTopic = "order-dead-letter"

func newStore(t *testing.T) (resolution.Store, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	b, err := devbroker.Start(ctx, devbroker.Config{Topics: map[string]int{dlqTopic: 2}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := kafkalog.Open(kafkaclient.Config{Brokers: []string{b.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(); b.Close() })
	return resolution.Store{Log: l, Topic: dlqTopic, ResolutionsTopic: resolution.TopicFor(dlqTopic), Group: resolution.DefaultGroup}, ctx
}

func entry(p int, o int64, action resolution.Action, note string) resolution.Entry {
	return resolution.Entry{
		DeadLetter: kafkalog.Coord{Topic: dlqTopic, Partition: p, Offset: o},
		Action:     action,
		Note:       note,
		At:         time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		By:         "alice",
	}
}

func TestStoreRecordsAndReloadsResolutions(t *testing.T) {
	s, ctx := newStore(t)
	st, err := s.Load(ctx, []int{0, 1})
	if err != nil {
		t.Fatalf("load before the log exists: %v", err)
	}
	if st.Len() != 0 || st.Resolved(pos(0, 0)) {
		t.Fatal("an empty store resolves something")
	}
	if err := s.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Ensure(ctx); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	first := entry(0, 3, resolution.Resolved, "fixed by hand")
	if err := s.Record(ctx, st, []resolution.Entry{first, entry(1, 0, resolution.Redriven, "")}); err != nil {
		t.Fatal(err)
	}
	// The latest entry for a letter wins.
	second := entry(0, 3, resolution.Edited, "edited after all")
	if err := s.Record(ctx, st, []resolution.Entry{second}); err != nil {
		t.Fatal(err)
	}

	again, err := s.Load(ctx, []int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	got, ok := again.Lookup(pos(0, 3))
	if !ok {
		t.Fatal("0:3 not resolved after reload")
	}
	if diff := cmp.Diff(second, got); diff != "" {
		t.Errorf("entry of 0:3 (-want +got):\n%s", diff)
	}
	if !again.Resolved(pos(1, 0)) || again.Resolved(pos(0, 2)) || again.Len() != 2 {
		t.Errorf("reloaded state: 1:0 %t, 0:2 %t, %d entries", again.Resolved(pos(1, 0)), again.Resolved(pos(0, 2)), again.Len())
	}
}

func TestStoreReadsTombstonesAndSkipsGarbage(t *testing.T) {
	s, ctx := newStore(t)
	if err := s.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	st := resolution.NewState()
	if err := s.Record(ctx, st, []resolution.Entry{entry(0, 1, resolution.Resolved, "x"), entry(0, 2, resolution.Resolved, "y")}); err != nil {
		t.Fatal(err)
	}
	// Someone reopens 0:1 with a tombstone and writes two records that are
	// not resolutions.
	if _, err := s.Log.AppendTo(ctx, s.ResolutionsTopic, 0, []kafka.Message{
		{Key: []byte("0:1")},
		{Key: []byte("not-a-position"), Value: []byte(`{"action":"resolved"}`)},
		{Key: []byte("0:9"), Value: []byte(`not json`)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(ctx, st); err != nil {
		t.Fatal(err)
	}
	if st.Resolved(pos(0, 1)) || !st.Resolved(pos(0, 2)) || st.Resolved(pos(0, 9)) {
		t.Errorf("after refresh: 0:1 %t (reopened), 0:2 %t, 0:9 %t", st.Resolved(pos(0, 1)), st.Resolved(pos(0, 2)), st.Resolved(pos(0, 9)))
	}
	if st.Skipped != 2 {
		t.Errorf("skipped %d records, want 2", st.Skipped)
	}
}

func TestCommitMovesTheGroupOffsetForwardOnly(t *testing.T) {
	s, ctx := newStore(t)
	st, err := s.Load(ctx, []int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, st, map[int]int64{0: 5, 1: 2}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, st, map[int]int64{0: 3, 1: 4}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Log.GroupOffsets(ctx, s.Group, dlqTopic, []int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[int]int64{0: 5, 1: 4}, got); diff != "" {
		t.Errorf("group offsets (-want +got):\n%s", diff)
	}
	// Below the group offset counts as resolved, even without an entry.
	reloaded, err := s.Load(ctx, []int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	e, ok := reloaded.Lookup(pos(0, 4))
	if !ok || e.Action != resolution.BelowGroupOffset {
		t.Errorf("0:4 below offset 5: %v %+v", ok, e)
	}
	if reloaded.Resolved(pos(0, 5)) {
		t.Error("0:5 at the group offset counts as resolved")
	}
}
