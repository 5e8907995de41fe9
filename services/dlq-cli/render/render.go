package render

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/resolution"
)

// Format is an output format.
type Format string

// The output formats of -o.
const (
	Table Format = "table"
	JSON  Format = "json"
	JSONL Format = "jsonl"
)

// ParseFormat accepts table, json or jsonl.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case Table, JSON, JSONL:
		return f, nil
	}
	return "", fmt.Errorf("output format %q: want table, json or jsonl", s)
}

// Item is a dead letter and its resolution, nil while it is pending.
type Item struct {
	Letter     deadletter.Letter
	Resolution *resolution.Entry
}

// Status is "pending" or "resolved".
func (it Item) Status() string {
	if it.Resolution == nil {
		return "pending"
	}
	return "resolved"
}

// Printer writes in one format.
type Printer struct {
	W      io.Writer
	Format Format
	// Color adds ANSI colors to tables.
	Color bool
}

// messageWidth is how much of the error message a table row shows.
const messageWidth = 60

// timeLayout is how tables show instants: RFC 3339 in UTC, to the second.
const timeLayout = "2006-01-02T15:04:05Z"

// Row is the JSON shape of one dead letter in `dlq list`.
type Row struct {
	Partition      int               `json:"partition"`
	Offset         int64             `json:"offset"`
	OrderID        string            `json:"orderID"`
	Status         string            `json:"status"`
	Dialect        string            `json:"dialect"`
	Reason         string            `json:"reason"`
	ErrorClass     string            `json:"errorClass"`
	ErrorType      string            `json:"errorType,omitempty"`
	Attempts       int               `json:"attempts"`
	FirstFailureAt *time.Time        `json:"firstFailureAt,omitempty"`
	DeadLetteredAt time.Time         `json:"deadLetteredAt"`
	ErrorMessage   string            `json:"errorMessage"`
	RedriveCount   int               `json:"redriveCount"`
	Original       *Origin           `json:"original,omitempty"`
	Malformed      string            `json:"malformed,omitempty"`
	Resolution     *resolution.Entry `json:"resolution,omitempty"`
}

// Origin is where a dead letter was first consumed from, as its headers
// say, whatever its dialect.
type Origin struct {
	Topic     string     `json:"topic"`
	Partition int        `json:"partition"`
	Offset    int64      `json:"offset"`
	Timestamp *time.Time `json:"timestamp,omitempty"`
}

// OriginOf returns the letter's origin, nil when its headers name none.
func OriginOf(l deadletter.Letter) *Origin {
	if !l.HasOrigin() {
		return nil
	}
	return &Origin{Topic: l.Meta.OriginalTopic, Partition: l.Meta.OriginalPartition, Offset: l.Meta.OriginalOffset, Timestamp: timePtr(l.Meta.OriginalTimestamp)}
}

// NewRow returns the JSON shape of it.
func NewRow(it Item) Row {
	l := it.Letter
	return Row{
		Partition:      l.Coord.Partition,
		Offset:         l.Coord.Offset,
		OrderID:        l.OrderID,
		Status:         it.Status(),
		Dialect:        string(l.Dialect),
		Reason:         string(l.Meta.DLQReason),
		ErrorClass:     string(l.Meta.ErrorClass),
		ErrorType:      l.ErrorType,
		Attempts:       l.Meta.Attempt,
		FirstFailureAt: timePtr(l.Meta.FirstFailureAt),
		DeadLetteredAt: l.DeadLetteredAt().UTC(),
		ErrorMessage:   l.Meta.ErrorMessage,
		RedriveCount:   l.Meta.RedriveCount,
		Original:       OriginOf(l),
		Malformed:      l.Malformed,
		Resolution:     it.Resolution,
	}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// writeShapes writes the JSON shape of each item: one array for JSON, one
// line each for JSON lines. It reports false for the table format, which
// the caller prints itself.
func writeShapes[T any](p Printer, items []Item, shape func(Item) T) (bool, error) {
	switch p.Format {
	case JSON:
		out := make([]T, len(items))
		for i, it := range items {
			out[i] = shape(it)
		}
		return true, writeJSON(p.W, out)
	case JSONL:
		enc := newEncoder(p.W)
		for _, it := range items {
			if err := enc.Encode(shape(it)); err != nil {
				return true, err
			}
		}
		return true, nil
	}
	return false, nil
}

// List prints one row per dead letter.
func (p Printer) List(items []Item) error {
	if done, err := writeShapes(p, items, NewRow); done {
		return err
	}
	t := table{header: []string{"POSITION", "ORDER", "STATUS", "DIALECT", "REASON", "CLASS", "ATTEMPTS", "FIRST FAILURE", "DEAD-LETTERED", "MESSAGE"}}
	for _, it := range items {
		l := it.Letter
		msg := cell{shorten(l.Meta.ErrorMessage, messageWidth), plain}
		if l.Malformed != "" {
			msg = cell{shorten("malformed headers: "+l.Malformed, messageWidth), red}
		}
		t.add(
			cell{l.Position().String(), plain},
			cell{orDash(l.OrderID), cyan},
			statusCell(it),
			cell{string(l.Dialect), plain},
			cell{orDash(string(l.Meta.DLQReason)), plain},
			classCell(l),
			cell{strconv.Itoa(l.Meta.Attempt), plain},
			cell{formatTime(l.Meta.FirstFailureAt), plain},
			cell{formatTime(l.DeadLetteredAt()), plain},
			msg,
		)
	}
	return t.write(p.W, p.Color)
}

func statusCell(it Item) cell {
	if it.Resolution == nil {
		return cell{"pending", yellow}
	}
	return cell{"resolved", green}
}

func classCell(l deadletter.Letter) cell {
	c := l.Meta.ErrorClass
	if c == "" && l.ErrorType != "" {
		return cell{SimpleName(l.ErrorType), red}
	}
	switch c {
	case failure.Transient:
		return cell{string(c), yellow}
	case failure.Permanent:
		return cell{string(c), red}
	}
	return cell{orDash(string(c)), plain}
}

// SimpleName is a Java class name without its package:
// org.apache.kafka.common.errors.SerializationException ->
// SerializationException.
func SimpleName(fqcn string) string {
	if i := strings.LastIndexByte(fqcn, '.'); i >= 0 {
		return fqcn[i+1:]
	}
	return fqcn
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(timeLayout)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// newEncoder writes JSON as people read it: "<" stays "<" (HTML escaping
// is for embedding in web pages, not for terminals and jq).
func newEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(jsonWriter{w})
	enc.SetEscapeHTML(false)
	return enc
}

func writeJSONLine(w io.Writer, v any) error { return newEncoder(w).Encode(v) }

func writeJSON(w io.Writer, v any) error {
	enc := newEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// ExportRecord is one line of `dlq export`: the record exactly as it is in
// the topic, for audits and tickets. Keys, values and header values that
// are valid UTF-8 are strings; others are base64 in the *Base64 field.
type ExportRecord struct {
	Topic       string            `json:"topic"`
	Partition   int               `json:"partition"`
	Offset      int64             `json:"offset"`
	Timestamp   time.Time         `json:"timestamp"`
	Key         *string           `json:"key"`
	KeyBase64   *string           `json:"keyBase64,omitempty"`
	Value       *string           `json:"value"`
	ValueBase64 *string           `json:"valueBase64,omitempty"`
	Headers     []ExportHeader    `json:"headers"`
	Status      string            `json:"status"`
	Resolution  *resolution.Entry `json:"resolution,omitempty"`
}

// ExportHeader is one record header.
type ExportHeader struct {
	Key         string  `json:"key"`
	Value       *string `json:"value,omitempty"`
	ValueBase64 *string `json:"valueBase64,omitempty"`
}

// NewExportRecord returns the export shape of it.
func NewExportRecord(it Item) ExportRecord {
	l := it.Letter
	r := ExportRecord{
		Topic:      l.Coord.Topic,
		Partition:  l.Coord.Partition,
		Offset:     l.Coord.Offset,
		Timestamp:  l.Time.UTC(),
		Headers:    make([]ExportHeader, len(l.Headers)),
		Status:     it.Status(),
		Resolution: it.Resolution,
	}
	r.Key, r.KeyBase64 = textOrBase64(l.Key)
	r.Value, r.ValueBase64 = textOrBase64(l.Value)
	for i, h := range l.Headers {
		r.Headers[i].Key = h.Key
		r.Headers[i].Value, r.Headers[i].ValueBase64 = textOrBase64(h.Value)
		if r.Headers[i].Value == nil && r.Headers[i].ValueBase64 == nil {
			empty := ""
			r.Headers[i].Value = &empty
		}
	}
	return r
}

// textOrBase64 returns b as text when it is valid UTF-8, as base64
// otherwise, and both nil for a nil slice (a null key or value).
func textOrBase64(b []byte) (text, b64 *string) {
	if b == nil {
		return nil, nil
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, nil
	}
	s := base64.StdEncoding.EncodeToString(b)
	return nil, &s
}

// Export writes one JSON line per dead letter, whatever -o says: an export
// is for tools.
func Export(w io.Writer, items []Item) error {
	_, err := writeShapes(Printer{W: w, Format: JSONL}, items, NewExportRecord)
	return err
}
