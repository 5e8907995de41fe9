package filter_test

import (
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/filter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/kafkalog"
)

var now = time.Date(2026, 3, 1, 22, 0, 0, 0, time.UTC)

func TestParseTimeAcceptsRFC3339AndDurationsAgo(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"2026-03-01T20:00:00Z", time.Date(2026, 3, 1, 20, 0, 0, 0, time.UTC), false},
		{"2026-03-01T21:00:00+01:00", time.Date(2026, 3, 1, 20, 0, 0, 0, time.UTC), false},
		{"2h", now.Add(-2 * time.Hour), false},
		{"90m", now.Add(-90 * time.Minute), false},
		{"3d", now.Add(-72 * time.Hour), false},
		{"0s", now, false},
		{"-2h", time.Time{}, true},
		{"yesterday", time.Time{}, true},
		{"2026-03-01", time.Time{}, true},
		{"xd", time.Time{}, true},
	}
	for _, tc := range tests {
		got, err := filter.ParseTime(tc.in, now)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseTime(%q) error = %v, want error %t", tc.in, err, tc.wantErr)
			continue
		}
		if !got.Equal(tc.want) {
			t.Errorf("ParseTime(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestParseRejectsValuesOutsideTheContract(t *testing.T) {
	if _, err := filter.ParseStatus("done"); err == nil {
		t.Error("status done accepted")
	}
	if _, err := filter.ParseReason("tired"); err == nil {
		t.Error("reason tired accepted")
	}
	if _, err := filter.ParseErrorClass("fatal"); err == nil {
		t.Error("error class fatal accepted")
	}
	for _, s := range []string{"pending", "resolved", "all"} {
		if _, err := filter.ParseStatus(s); err != nil {
			t.Errorf("status %s: %v", s, err)
		}
	}
}

func letter(p int, o int64, order string, reason retrymeta.Reason, class failure.Class, msg string, at time.Time, value string) deadletter.Letter {
	return deadletter.Letter{
		Coord:   kafkalog.Coord{Topic: "order-dead-letter", Partition: p, Offset: o},
		Key:     []byte(order),
		Value:   []byte(value),
		OrderID: order,
		Meta:    retrymeta.Meta{DLQReason: reason, ErrorClass: class, ErrorMessage: msg, DeadLetteredAt: at},
	}
}

func TestMatch(t *testing.T) {
	l := letter(1, 7, "O-1", retrymeta.MaxAttempts, failure.Transient, "http-503: Service Unavailable", now.Add(-time.Hour), `{"data":{"pickupCity":"Oakland"}}`)
	tests := []struct {
		name     string
		edit     func(*filter.Filter)
		resolved bool
		want     bool
	}{
		{"no condition", func(*filter.Filter) {}, false, true},
		{"pending letter, status pending", func(f *filter.Filter) { f.Status = filter.Pending }, false, true},
		{"resolved letter, status pending", func(f *filter.Filter) { f.Status = filter.Pending }, true, false},
		{"resolved letter, status resolved", func(f *filter.Filter) { f.Status = filter.Resolved }, true, true},
		{"pending letter, status resolved", func(f *filter.Filter) { f.Status = filter.Resolved }, false, false},
		{"order id", func(f *filter.Filter) { f.OrderID = "O-1" }, false, true},
		{"other order id", func(f *filter.Filter) { f.OrderID = "O-2" }, false, false},
		{"reason", func(f *filter.Filter) { f.Reason = retrymeta.MaxAttempts }, false, true},
		{"other reason", func(f *filter.Filter) { f.Reason = retrymeta.Poison }, false, false},
		{"class", func(f *filter.Filter) { f.ErrorClass = failure.Transient }, false, true},
		{"other class", func(f *filter.Filter) { f.ErrorClass = failure.Permanent }, false, false},
		{"text in the message, any case", func(f *filter.Filter) { f.Contains = "service UNAVAILABLE" }, false, true},
		{"text in the value", func(f *filter.Filter) { f.Contains = "oakland" }, false, true},
		{"text nowhere", func(f *filter.Filter) { f.Contains = "Rotterdam" }, false, false},
		{"since before", func(f *filter.Filter) { f.Since = now.Add(-2 * time.Hour) }, false, true},
		{"since exactly", func(f *filter.Filter) { f.Since = now.Add(-time.Hour) }, false, true},
		{"since after", func(f *filter.Filter) { f.Since = now.Add(-30 * time.Minute) }, false, false},
		{"until after", func(f *filter.Filter) { f.Until = now }, false, true},
		{"until exactly excludes", func(f *filter.Filter) { f.Until = now.Add(-time.Hour) }, false, false},
		{"partition", func(f *filter.Filter) { f.Partition = 1 }, false, true},
		{"other partition", func(f *filter.Filter) { f.Partition = 0 }, false, false},
		{"from offset below", func(f *filter.Filter) { f.FromOffset = 7 }, false, true},
		{"from offset above", func(f *filter.Filter) { f.FromOffset = 8 }, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := filter.New()
			tc.edit(&f)
			if got := f.Match(l, tc.resolved); got != tc.want {
				t.Errorf("Match = %t, want %t", got, tc.want)
			}
		})
	}
}

func TestMatchFallsBackToTheRecordTime(t *testing.T) {
	l := deadletter.FromMessage(kafka.Message{Topic: "order-dead-letter", Time: now.Add(-time.Hour), Key: []byte("O-1")})
	f := filter.New()
	f.Since = now.Add(-2 * time.Hour)
	if !f.Match(l, false) {
		t.Error("a letter without x-dlq-dead-lettered-at is not matched by its record time")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*filter.Filter)
		wantErr bool
	}{
		{"default", func(*filter.Filter) {}, false},
		{"since before until", func(f *filter.Filter) { f.Since, f.Until = now.Add(-time.Hour), now }, false},
		{"since after until", func(f *filter.Filter) { f.Since, f.Until = now, now.Add(-time.Hour) }, true},
		{"negative limit", func(f *filter.Filter) { f.Limit = -1 }, true},
		{"negative offset", func(f *filter.Filter) { f.FromOffset = -1 }, true},
		{"negative partition", func(f *filter.Filter) { f.Partition = -2 }, true},
	}
	for _, tc := range tests {
		f := filter.New()
		tc.edit(&f)
		if err := f.Validate(); (err != nil) != tc.wantErr {
			t.Errorf("%s: Validate() = %v, want error %t", tc.name, err, tc.wantErr)
		}
	}
}
