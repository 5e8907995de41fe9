package redrive_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/kafkalog"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/redrive"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/resolution"
)

func TestEngineRecordsWhatWasPublishedWhenATargetFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := devbroker.Start(ctx, devbroker.Config{Topics: map[string]int{"order-dead-letter": 1, "orders": 2, "order-retries": 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	log, err := kafkalog.Open(kafkaclient.Config{Brokers: []string{b.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	store := resolution.Store{Log: log, Topic: "order-dead-letter", ResolutionsTopic: "order-dead-letter.resolutions", Group: "dlq-redrive"}
	if err := store.Ensure(ctx); err != nil {
		t.Fatal(err)
	}

	// Two letters whose original topics are "orders" and a topic that was
	// deleted since.
	good, gone := deadLetter(0), deadLetter(0)
	gone.Coord.Offset, gone.Meta.OriginalTopic = 43, "orders-v1"
	cursor := resolution.NewCursor()
	cursor.Observe(good.Position(), false)
	cursor.Observe(gone.Position(), false)
	cursor.ScannedTo(1, 44)
	state := resolution.NewState()
	var results []redrive.Result
	e := &redrive.Engine{
		Log: log, Store: store, State: state, Cursor: cursor,
		To: redrive.ToOriginal, RetryTopic: "order-retries", MaxRedrives: 3, By: "test",
		OnResult: func(r redrive.Result) { results = append(results, r) },
	}
	rep, err := e.Run(ctx, []deadletter.Letter{good, gone})
	if err == nil || !strings.Contains(err.Error(), "orders-v1") {
		t.Fatalf("Run error = %v, want one naming orders-v1", err)
	}
	if diff := cmp.Diff(redrive.Report{Redriven: 1}, rep); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	if len(results) != 1 || results[0].Letter.Position() != good.Position() || results[0].Target.Topic != "orders" {
		t.Fatalf("results: %+v", results)
	}
	if !state.Resolved(good.Position()) || state.Resolved(gone.Position()) {
		t.Errorf("resolved: good %t, gone %t; want only good", state.Resolved(good.Position()), state.Resolved(gone.Position()))
	}
	// The watermark stops at the letter that failed.
	if diff := cmp.Diff(map[int]int64{1: 43}, cursor.Offsets()); diff != "" {
		t.Errorf("cursor (-want +got):\n%s", diff)
	}
	var published []kafka.Message
	parts, _ := log.Partitions(ctx, "orders")
	for _, p := range parts {
		_ = log.Scan(ctx, "orders", p.ID, p.First, p.End, func(m kafka.Message) error {
			published = append(published, m)
			return nil
		})
	}
	if len(published) != 1 {
		t.Errorf("%d records in orders, want 1", len(published))
	}
}
