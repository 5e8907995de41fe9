package retrymeta

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
)

// Header names of the contract.
const (
	HeaderAttempt           = "x-retry-attempt"
	HeaderDueAt             = "x-retry-due-at"
	HeaderFirstFailureAt    = "x-retry-first-failure-at"
	HeaderLastFailureAt     = "x-retry-last-failure-at"
	HeaderErrorClass        = "x-error-class"
	HeaderErrorMessage      = "x-error-message"
	HeaderOriginalTopic     = "x-original-topic"
	HeaderOriginalPartition = "x-original-partition"
	HeaderOriginalOffset    = "x-original-offset"
	HeaderOriginalTimestamp = "x-original-timestamp"
	HeaderErrorStack        = "x-error-stack"
	HeaderDLQReason         = "x-dlq-reason"
	HeaderDeadLetteredAt    = "x-dlq-dead-lettered-at"
	HeaderRedriveCount      = "x-dlq-redrive-count"
	HeaderEditedFrom        = "x-dlq-edited-from"
	HeaderOriginalSize      = "x-dlq-original-size"
	HeaderTraceParent       = "traceparent"
	// HeaderRetryLink is the W3C traceparent of the span of the attempt
	// that failed: the next attempt's span links to it (package
	// tracing). Apply drops it with the other x-retry-* headers; the
	// router writes it afresh at each hop, when tracing is on.
	HeaderRetryLink = "x-retry-link"
)

// ownedPrefixes are the header families this package owns: Apply replaces
// all of them, including names it does not know, so a stale header from an
// older version cannot survive a hop.
var ownedPrefixes = []string{"x-retry-", "x-error-", "x-original-", "x-dlq-"}

// Reason says why a record was dead-lettered.
type Reason string

// The dead-letter reasons.
const (
	// MaxAttempts: transient failures until the attempt budget ran out.
	MaxAttempts Reason = "max-attempts"
	// PermanentError: a failure that retrying cannot fix.
	PermanentError Reason = "permanent-error"
	// Poison: the record cannot even be processed (unreadable headers or
	// payload).
	Poison Reason = "poison"
	// Oversize: the record, with the headers of its next hop, is larger
	// than the topic it had to go to accepts. Its dead letter carries
	// the original value's size (x-dlq-original-size) and as much of the
	// value as the dead-letter topic accepts.
	Oversize Reason = "oversize"
)

// Reasons lists every dead-letter reason, for metric labels and checks.
var Reasons = []Reason{MaxAttempts, PermanentError, Poison, Oversize}

// Caps of the free-text headers, in bytes, marker included.
const (
	MaxMessageBytes = 1024
	MaxStackBytes   = 4096
)

// TruncatedMarker ends a capped message or stack.
const TruncatedMarker = "…(truncated)"

// Meta is the retry and dead-letter history of a record. Times have
// millisecond precision on the wire; Parse returns them in UTC.
type Meta struct {
	// Attempt counts the failed attempts so far.
	Attempt int
	// DueAt is the time before which the next attempt must not start.
	DueAt          time.Time
	FirstFailureAt time.Time
	LastFailureAt  time.Time

	ErrorClass   failure.Class
	ErrorMessage string

	// Where the record was first consumed from.
	OriginalTopic     string
	OriginalPartition int
	OriginalOffset    int64
	OriginalTimestamp time.Time

	// Dead-letter topic only.
	ErrorStack     string
	DLQReason      Reason
	DeadLetteredAt time.Time
	// RedriveCount counts how often an operator sent the record back.
	RedriveCount int
	// EditedFrom identifies the record an operator's edit replaced (for
	// example "order-dead-letter/0/42").
	EditedFrom string
	// OriginalSize is the size in bytes of the record's value before an
	// oversize dead letter cut it (x-dlq-original-size); 0 when the value
	// is whole. The value was cut when it is shorter than OriginalSize.
	OriginalSize int
}

// HeaderError names a header whose value cannot be read.
type HeaderError struct {
	Header string
	// Missing is true when the header is absent but required.
	Missing bool
	// Value is the value as received, shortened when long.
	Value   string
	Problem string
}

func (e *HeaderError) Error() string {
	if e.Missing {
		return "header " + e.Header + " is missing: " + e.Problem
	}
	return fmt.Sprintf("header %s: %q %s", e.Header, e.Value, e.Problem)
}

// Get returns the value of the last header named key (Kafka allows
// repeats; the last one written wins).
func Get(h []kafka.Header, key string) (string, bool) {
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Key == key {
			return string(h[i].Value), true
		}
	}
	return "", false
}

// Parse reads the retry and dead-letter headers. Absent headers leave the
// field at its zero value; a malformed one is an error. The error is a
// permanent *failure.Error with reason "poison-headers" that wraps one
// *HeaderError per bad header.
func Parse(h []kafka.Header) (Meta, error) {
	m, _, err := parse(h)
	return m, err
}

// ParseRetry reads the headers of a record on the retry topic: as Parse,
// and the headers a retry record must carry (attempt, due-at, original
// topic, partition and offset) must be present.
func ParseRetry(h []kafka.Header) (Meta, error) {
	m, present, err := parse(h)
	if err != nil {
		return Meta{}, err
	}
	var errs []error
	for _, name := range []string{HeaderAttempt, HeaderDueAt, HeaderOriginalTopic, HeaderOriginalPartition, HeaderOriginalOffset} {
		if !present[name] {
			errs = append(errs, &HeaderError{Header: name, Missing: true, Problem: "a retry record must carry it"})
		}
	}
	if len(errs) > 0 {
		return Meta{}, poison(errs)
	}
	return m, nil
}

// FirstAttempt reads the headers of a record on the original topic, for
// its first attempt: what a redrive there (dlq redrive --to original)
// carries over is kept, the redrive count (which reopens the order and is
// the loop guard) and the original coordinates and edit origin; the
// history of earlier trips (attempts, errors, due time) is dropped, since
// a redrive starts the attempts over. A record with none of these
// headers, a new order, gives the zero Meta. An unreadable kept header is
// an error as Parse's: the record is poison, because processing it without
// its redrive count would lose it as a stale chain of its dead letter.
func FirstAttempt(h []kafka.Header) (Meta, error) {
	m, _, err := parse(keep(h, HeaderRedriveCount, HeaderEditedFrom,
		HeaderOriginalTopic, HeaderOriginalPartition, HeaderOriginalOffset, HeaderOriginalTimestamp))
	if err != nil {
		return Meta{}, err
	}
	return m, nil
}

// keep returns the headers of h named in names.
func keep(h []kafka.Header, names ...string) []kafka.Header {
	var out []kafka.Header
	for _, hd := range h {
		if slices.Contains(names, hd.Key) {
			out = append(out, hd)
		}
	}
	return out
}

func poison(errs []error) error {
	return failure.NewPermanent("poison-headers", errors.Join(errs...))
}

// parse reads every header of the contract and reports which were present.
func parse(h []kafka.Header) (Meta, map[string]bool, error) {
	var m Meta
	present := make(map[string]bool)
	var errs []error
	bad := func(name, value, problem string) {
		errs = append(errs, &HeaderError{Header: name, Value: shorten(value), Problem: problem})
	}
	get := func(name string) (string, bool) {
		v, ok := Get(h, name)
		present[name] = ok
		return v, ok
	}
	count := func(name string, dst *int) {
		if v, ok := get(name); ok {
			n, err := parseUint(v, 31) // fits an int on every platform
			if err != nil {
				bad(name, v, "is not a decimal integer >= 0")
			}
			*dst = int(n)
		}
	}
	millis := func(name string, dst *time.Time) {
		if v, ok := get(name); ok {
			n, err := parseUint(v, 63)
			if err != nil {
				bad(name, v, "is not a time in epoch milliseconds (a decimal integer >= 0)")
				return
			}
			*dst = time.UnixMilli(n).UTC()
		}
	}
	text := func(name string, dst *string) {
		if v, ok := get(name); ok {
			if !utf8.ValidString(v) {
				bad(name, v, "is not valid UTF-8")
				return
			}
			*dst = v
		}
	}

	count(HeaderAttempt, &m.Attempt)
	millis(HeaderDueAt, &m.DueAt)
	millis(HeaderFirstFailureAt, &m.FirstFailureAt)
	millis(HeaderLastFailureAt, &m.LastFailureAt)
	if v, ok := get(HeaderErrorClass); ok {
		if c := failure.Class(v); slices.Contains(failure.Classes, c) {
			m.ErrorClass = c
		} else {
			bad(HeaderErrorClass, v, "is not transient, permanent or config")
		}
	}
	text(HeaderErrorMessage, &m.ErrorMessage)
	if v, ok := get(HeaderOriginalTopic); ok {
		if problem := checkTopic(v); problem != "" {
			bad(HeaderOriginalTopic, v, problem)
		} else {
			m.OriginalTopic = v
		}
	}
	count(HeaderOriginalPartition, &m.OriginalPartition)
	if v, ok := get(HeaderOriginalOffset); ok {
		n, err := parseUint(v, 63)
		if err != nil {
			bad(HeaderOriginalOffset, v, "is not a decimal integer >= 0")
		}
		m.OriginalOffset = n
	}
	millis(HeaderOriginalTimestamp, &m.OriginalTimestamp)
	text(HeaderErrorStack, &m.ErrorStack)
	if v, ok := get(HeaderDLQReason); ok {
		if r := Reason(v); slices.Contains(Reasons, r) {
			m.DLQReason = r
		} else {
			bad(HeaderDLQReason, v, "is not max-attempts, permanent-error, poison or oversize")
		}
	}
	millis(HeaderDeadLetteredAt, &m.DeadLetteredAt)
	count(HeaderRedriveCount, &m.RedriveCount)
	text(HeaderEditedFrom, &m.EditedFrom)
	if v, ok := get(HeaderOriginalSize); ok {
		n, err := parseUint(v, 31)
		if err != nil {
			bad(HeaderOriginalSize, v, "is not a decimal integer >= 0")
		}
		m.OriginalSize = int(n)
	}

	if len(errs) > 0 {
		return Meta{}, present, poison(errs)
	}
	return m, present, nil
}

// parseUint accepts only plain decimal digits (no sign, no spaces, no
// leading "+"), at most bits bits.
func parseUint(v string, bits int) (int64, error) {
	if v == "" {
		return 0, errors.New("empty")
	}
	for i := range len(v) {
		if v[i] < '0' || v[i] > '9' {
			return 0, errors.New("not a digit")
		}
	}
	n, err := strconv.ParseUint(v, 10, bits)
	return int64(n), err
}

// checkTopic applies Kafka's rules for topic names, because a redrive
// publishes to this topic.
func checkTopic(t string) string {
	if t == "" || t == "." || t == ".." || len(t) > 249 {
		return "is not a Kafka topic name (1-249 characters, not . or ..)"
	}
	for i := range len(t) {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return "is not a Kafka topic name (letters, digits, '.', '_' and '-')"
		}
	}
	return ""
}

// Apply returns a new header list: h without any header this package owns
// (every x-retry-*, x-error-*, x-original-* and x-dlq-* header), other
// headers (traceparent, the producer's own) kept in order, followed by m's
// fields. Each hop replaces the history instead of appending to it, so the
// record does not grow. h is not modified and the result shares no memory
// with it.
//
// Zero fields are not written, with two exceptions that keep a retry
// record readable by ParseRetry: the original partition and offset are
// written whenever OriginalTopic is set (partition 0 and offset 0 are real
// positions), and the attempt whenever it is above 0 or DueAt is set. The
// message and the stack are capped at MaxMessageBytes and MaxStackBytes on
// a UTF-8 boundary, ending with TruncatedMarker; invalid UTF-8 in them is
// replaced with U+FFFD.
func Apply(h []kafka.Header, m Meta) []kafka.Header {
	out := make([]kafka.Header, 0, len(h)+16)
	for _, hd := range h {
		if !owned(hd.Key) {
			out = append(out, kafka.Header{Key: hd.Key, Value: append([]byte(nil), hd.Value...)})
		}
	}
	set := func(key, value string) {
		out = append(out, kafka.Header{Key: key, Value: []byte(value)})
	}
	setTime := func(key string, t time.Time) {
		if !t.IsZero() {
			// The wire has no negative times; before 1970 is a bug upstream.
			set(key, strconv.FormatInt(max(t.UnixMilli(), 0), 10))
		}
	}
	if m.Attempt > 0 || !m.DueAt.IsZero() {
		set(HeaderAttempt, strconv.Itoa(max(m.Attempt, 0)))
	}
	setTime(HeaderDueAt, m.DueAt)
	setTime(HeaderFirstFailureAt, m.FirstFailureAt)
	setTime(HeaderLastFailureAt, m.LastFailureAt)
	if m.ErrorClass != "" {
		set(HeaderErrorClass, string(m.ErrorClass))
	}
	if m.ErrorMessage != "" {
		set(HeaderErrorMessage, Truncate(m.ErrorMessage, MaxMessageBytes))
	}
	if m.OriginalTopic != "" {
		set(HeaderOriginalTopic, m.OriginalTopic)
		set(HeaderOriginalPartition, strconv.Itoa(max(m.OriginalPartition, 0)))
		set(HeaderOriginalOffset, strconv.FormatInt(max(m.OriginalOffset, 0), 10))
	}
	setTime(HeaderOriginalTimestamp, m.OriginalTimestamp)
	if m.ErrorStack != "" {
		set(HeaderErrorStack, Truncate(m.ErrorStack, MaxStackBytes))
	}
	if m.DLQReason != "" {
		set(HeaderDLQReason, string(m.DLQReason))
	}
	setTime(HeaderDeadLetteredAt, m.DeadLetteredAt)
	if m.RedriveCount > 0 {
		set(HeaderRedriveCount, strconv.Itoa(m.RedriveCount))
	}
	if m.EditedFrom != "" {
		set(HeaderEditedFrom, m.EditedFrom)
	}
	if m.OriginalSize > 0 {
		set(HeaderOriginalSize, strconv.Itoa(m.OriginalSize))
	}
	return out
}

func owned(key string) bool {
	for _, p := range ownedPrefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// Truncate returns s, made valid UTF-8, in at most limit bytes: when it is
// longer, it is cut on a character boundary and ends with TruncatedMarker.
func Truncate(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= limit {
		return s
	}
	if limit < len(TruncatedMarker) {
		return ""
	}
	cut := limit - len(TruncatedMarker)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + TruncatedMarker
}

// shorten keeps error messages about a bad header small.
func shorten(v string) string {
	const limit = 64
	if len(v) <= limit {
		return v
	}
	return Truncate(v, limit)
}

// Failed returns m updated for one more failed attempt at now: Attempt+1,
// FirstFailureAt set on the first failure and kept afterwards,
// LastFailureAt now, and the class and message of err. The caller sets
// DueAt (from the backoff policy) and, on the first failure, the original
// topic, partition, offset and timestamp.
func (m Meta) Failed(err error, now time.Time) Meta {
	m.Attempt++
	if m.FirstFailureAt.IsZero() {
		m.FirstFailureAt = now
	}
	m.LastFailureAt = now
	m.ErrorClass = failure.ClassOf(err)
	if err != nil {
		m.ErrorMessage = err.Error()
	}
	return m
}

// DeadLettered returns m updated for parking the record on the dead-letter
// topic at now for reason: DLQReason, DeadLetteredAt, the stack of err
// (failure.StackOf) and no due time, since nothing will retry it.
func (m Meta) DeadLettered(reason Reason, err error, now time.Time) Meta {
	m.DLQReason = reason
	m.DeadLetteredAt = now
	m.DueAt = time.Time{}
	if err != nil {
		m.ErrorStack = failure.StackOf(err)
	}
	return m
}
