package render

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/kafkalog"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/resolution"
)

func TestShortenKeepsOneLineOfAtMostNRunes(t *testing.T) {
	tests := []struct{ in, want string }{
		{"short", "short"},
		{"exactly ten", "exactly t…"},
		{"line one\nline two", "line one …"},
		{"ünïcödé-ünïcödé", "ünïcödé-ü…"},
		{"0123456789", "0123456789"},
	}
	for _, tc := range tests {
		if got := shorten(tc.in, 10); got != tc.want {
			t.Errorf("shorten(%q, 10) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

var ansi = regexp.MustCompile("\x1b\\[[0-9]+m")

func TestTableAlignsColoredCellsByTheirVisibleWidth(t *testing.T) {
	tb := table{header: []string{"A", "B"}}
	tb.add(cell{"pending", yellow}, cell{"x", plain})
	tb.add(cell{"ok", green}, cell{"y", plain})
	var plainOut, colored strings.Builder
	if err := tb.write(&plainOut, false); err != nil {
		t.Fatal(err)
	}
	if err := tb.write(&colored, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(colored.String(), "\x1b[33mpending\x1b[0m") {
		t.Errorf("no color in:\n%q", colored.String())
	}
	if diff := cmp.Diff(plainOut.String(), ansi.ReplaceAllString(colored.String(), "")); diff != "" {
		t.Errorf("colors moved the columns (-plain +colored):\n%s", diff)
	}
	want := "A        B\npending  x\nok       y\n"
	if plainOut.String() != want {
		t.Errorf("table =\n%q\nwant\n%q", plainOut.String(), want)
	}
}

func TestSummarizeWithNothingPending(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	items := []Item{{
		Letter:     deadletter.Letter{Coord: kafkalog.Coord{Partition: 0, Offset: 0}, Time: at},
		Resolution: &resolution.Entry{Action: resolution.Resolved},
	}}
	s := Summarize(items, at.Add(time.Hour))
	want := Summary{
		Total: 1, Resolved: 1,
		ByReason: []Count{{Key: "(none)", Count: 1}},
		ByClass:  []Count{{Key: "(none)", Count: 1}},
		ByHour:   []Count{{Key: "2026-01-02T03:00Z", Count: 1}},
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	var b strings.Builder
	if err := (Printer{W: &b, Format: Table}).Stats(s); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Oldest pending: none") {
		t.Errorf("stats table:\n%s", b.String())
	}
}

func TestExportRecordSeparatesTextFromBinary(t *testing.T) {
	l := deadletter.Letter{Key: []byte("O-1"), Value: []byte{0xff, 0xfe}}
	r := NewExportRecord(Item{Letter: l})
	if r.Key == nil || *r.Key != "O-1" || r.KeyBase64 != nil {
		t.Errorf("key: %v %v", r.Key, r.KeyBase64)
	}
	if r.Value != nil || r.ValueBase64 == nil || *r.ValueBase64 != "//4=" {
		t.Errorf("value: %v %v", r.Value, r.ValueBase64)
	}
	null := NewExportRecord(Item{Letter: deadletter.Letter{}})
	if null.Key != nil || null.Value != nil || null.KeyBase64 != nil || null.ValueBase64 != nil {
		t.Errorf("a null key and value must stay null: %+v", null)
	}
}
