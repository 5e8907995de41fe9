package deadletter

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/tidwall/gjson"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/kafkalog"
)

// Letter is one record of the dead-letter topic, decoded as far as it can be.
type Letter struct {
	// Coord is where the record is: topic, partition, offset.
	Coord kafkalog.Coord
	// Time is the record's timestamp.
	Time time.Time
	// Key, Value and Headers are the record's, unchanged.
	Key     []byte
	Value   []byte
	Headers []kafka.Header
	// Meta is what the contract headers say. When Malformed is set it holds
	// whatever could be read.
	Meta retrymeta.Meta
	// Malformed says why the headers could not be read; empty when they
	// could.
	Malformed string
	// OrderID is the order the record concerns: the CloudEvents subject of
	// the value, else the record key.
	OrderID string
	// EventType is the CloudEvents type of the value, if it has one.
	EventType string
	// Dialect says who wrote the record and so how its headers were read.
	Dialect Dialect
	// ErrorType is the exception's class as a foreign dialect names it
	// (java.lang.IllegalStateException); this suite's records have an
	// error class (Meta.ErrorClass) instead.
	ErrorType string
}

// FromMessage decodes a record read from the dead-letter topic in the
// dialect its headers show.
func FromMessage(m kafka.Message) Letter { return Decode(m, Auto) }

// Decode decodes a record read from the dead-letter topic as dialect d
// (Auto: detect it from the headers).
func Decode(m kafka.Message, d Dialect) Letter {
	l := Letter{
		Coord:   kafkalog.Coord{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset},
		Time:    m.Time,
		Key:     m.Key,
		Value:   m.Value,
		Headers: m.Headers,
		Dialect: d,
	}
	if d == Auto || d == "" {
		l.Dialect = Detect(m.Headers)
	}
	switch l.Dialect {
	case Reefer:
		l.Meta, l.Malformed = parseLeniently(m.Headers)
	case Raw:
	default:
		l.Meta, l.ErrorType, l.Malformed = foreign(l.Dialect, m.Headers)
	}
	l.OrderID, l.EventType = identify(m.Key, m.Value)
	return l
}

// parseLeniently reads the contract headers. When some are malformed,
// retrymeta.Parse returns nothing; parsing again without the bad headers
// keeps what the good ones say, so a listing of a malformed record still
// shows its reason, class and times.
func parseLeniently(h []kafka.Header) (retrymeta.Meta, string) {
	meta, err := retrymeta.Parse(h)
	if err == nil {
		return meta, ""
	}
	bad := map[string]bool{}
	for _, he := range headerErrors(err) {
		bad[he.Header] = true
	}
	rest := slices.DeleteFunc(slices.Clone(h), func(x kafka.Header) bool { return bad[x.Key] })
	if partial, err2 := retrymeta.Parse(rest); err2 == nil {
		meta = partial
	}
	return meta, err.Error()
}

// headerErrors collects every *retrymeta.HeaderError in err's tree.
func headerErrors(err error) []*retrymeta.HeaderError {
	var out []*retrymeta.HeaderError
	var walk func(error)
	walk = func(e error) {
		if he, ok := e.(*retrymeta.HeaderError); ok {
			out = append(out, he)
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			if x := u.Unwrap(); x != nil {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}

// identify reads the order id and event type leniently: a dead letter may be
// a poison record that no strict decoder accepts, and it still needs a name.
//
// gjson reads the three fields without decoding the whole value: listing a
// large queue reads every record, and this runs for each.
func identify(key, value []byte) (orderID, eventType string) {
	if gjson.ValidBytes(value) {
		r := gjson.GetManyBytes(value, "subject", "data.orderID", "type")
		orderID = cmp.Or(stringOf(r[0]), stringOf(r[1]))
		eventType = stringOf(r[2])
	}
	if orderID == "" {
		orderID = string(key)
	}
	return orderID, eventType
}

// stringOf returns a JSON string's value, "" for anything else.
func stringOf(r gjson.Result) string {
	if r.Type != gjson.String {
		return ""
	}
	return r.Str
}

// DeadLetteredAt is when the record was dead-lettered: the
// x-dlq-dead-lettered-at header, else the record's timestamp.
func (l Letter) DeadLetteredAt() time.Time {
	if !l.Meta.DeadLetteredAt.IsZero() {
		return l.Meta.DeadLetteredAt
	}
	return l.Time
}

// Transient reports whether the failure that dead-lettered the record was
// transient or config: retrying may help once the backend is healthy, or
// its configuration fixed, again.
func (l Letter) Transient() bool {
	return l.Dialect == Reefer && l.Malformed == "" && (l.Meta.ErrorClass == failure.Transient || l.Meta.ErrorClass == failure.Config)
}

// HasOrigin reports whether the letter's headers name the topic it was
// first consumed from.
func (l Letter) HasOrigin() bool { return l.Meta.OriginalTopic != "" }

// Origin returns where the record was first consumed from, as its headers
// say: topic, partition, offset.
func (l Letter) Origin() kafkalog.Coord {
	return kafkalog.Coord{Topic: l.Meta.OriginalTopic, Partition: l.Meta.OriginalPartition, Offset: l.Meta.OriginalOffset}
}

// Identity names the dead letter a record is, as opposed to where it is:
// its key, its order record's original coordinates and its redrive count, for
// this suite's records ("" for other dialects and unreadable headers).
// Two records with one identity are copies of one dead letter. The
// pipeline claims one dead letter per order and redrive generation, but
// writes it again when the process that wrote it died before recording
// so (docs/contract.md); a redrive or resolution of one copy resolves
// every copy, including one written later.
func (l Letter) Identity() string {
	if l.Dialect != Reefer || l.Malformed != "" || !l.HasOrigin() {
		return ""
	}
	return fmt.Sprintf("%q %s/%d@%d redrive %d", l.Key, l.Meta.OriginalTopic, l.Meta.OriginalPartition, l.Meta.OriginalOffset, l.Meta.RedriveCount)
}

// Position names a record of the dead-letter topic by partition and offset,
// the form people type: "0:15".
type Position struct {
	Partition int
	Offset    int64
}

// String formats the position as partition:offset.
func (p Position) String() string { return fmt.Sprintf("%d:%d", p.Partition, p.Offset) }

// ErrNotPosition is returned by ParsePosition for text that is not of the
// form partition:offset.
var ErrNotPosition = errors.New("not a partition:offset position")

// ParsePosition parses "partition:offset", e.g. "0:15".
func ParsePosition(s string) (Position, error) {
	ps, os, ok := strings.Cut(s, ":")
	if !ok {
		return Position{}, fmt.Errorf("%q: %w", s, ErrNotPosition)
	}
	p, err := strconv.Atoi(ps)
	if err != nil || p < 0 {
		return Position{}, fmt.Errorf("%q: partition %q is not a number >= 0: %w", s, ps, ErrNotPosition)
	}
	o, err := strconv.ParseInt(os, 10, 64)
	if err != nil || o < 0 {
		return Position{}, fmt.Errorf("%q: offset %q is not a number >= 0: %w", s, os, ErrNotPosition)
	}
	return Position{Partition: p, Offset: o}, nil
}

// Position returns the letter's partition and offset.
func (l Letter) Position() Position {
	return Position{Partition: l.Coord.Partition, Offset: l.Coord.Offset}
}
