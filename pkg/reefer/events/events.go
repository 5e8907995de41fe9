package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// SpecVersion is the CloudEvents version this package speaks.
const SpecVersion = "1.0"

// ContentType is the only data content type: data is a JSON object.
const ContentType = "application/json"

// The event types.
const (
	TypeOrderCreated             = "OrderCreated"
	TypeContainerAllocated       = "ContainerAllocated"
	TypeOrderRejected            = "OrderRejected"
	TypeContainerAssignedToOrder = "ContainerAssignedToOrder"
)

// Types returns every known event type.
func Types() []string {
	return []string{TypeOrderCreated, TypeContainerAllocated, TypeOrderRejected, TypeContainerAssignedToOrder}
}

// knownType reports whether t is one of Types, without building the list.
func knownType(t string) bool {
	switch t {
	case TypeOrderCreated, TypeContainerAllocated, TypeOrderRejected, TypeContainerAssignedToOrder:
		return true
	}
	return false
}

// MaxSize is the largest encoded event in bytes. Larger values are rejected
// as oversize: an order is a few hundred bytes, so anything near this limit
// is a bug or an attack, and a bound keeps a poison record from exhausting
// memory.
const MaxSize = 64 << 10

// Envelope is a CloudEvents 1.0 event in structured JSON mode. Use Encode
// and Decode (or json.Marshal and json.Unmarshal, which call them).
type Envelope struct {
	SpecVersion string    `json:"specversion"`
	ID          string    `json:"id"`
	Source      string    `json:"source"`
	Type        string    `json:"type"`
	Time        time.Time `json:"time"`
	Subject     string    `json:"subject"`
	// DataContentType is empty when the attribute is absent, which
	// CloudEvents defines as application/json in structured mode.
	DataContentType string `json:"datacontenttype"`
	// Data is the payload, a compact JSON object.
	Data json.RawMessage `json:"data"`
	// Extensions holds CloudEvents extension attributes (such as
	// traceparent) by name, each a compact JSON string, number or boolean.
	// Nil when there are none.
	Extensions map[string]json.RawMessage `json:"-"`
}

// ID returns the deterministic event id for subject and eventType: the same
// order and type always give the same id, so a consumer can drop the
// duplicates that at-least-once delivery produces. It is a UUID (version 8,
// the RFC 9562 version for custom hashes) built from a SHA-256 of both.
func ID(subject, eventType string) string {
	// Length prefixes keep ("ab","c") and ("a","bc") apart.
	msg := []byte("reefer-dlq.events.v1")
	msg = binary.AppendUvarint(msg, uint64(len(eventType)))
	msg = append(msg, eventType...)
	msg = binary.AppendUvarint(msg, uint64(len(subject)))
	msg = append(msg, subject...)
	sum := sha256.Sum256(msg)
	u := sum[:16]
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:16])
	return string(b[:])
}

// New builds the event of eventType about subject (the order id) from data,
// emitted by source at the given time. The id is ID(subject, eventType).
// It fails when the result would not pass Decode and DecodeData, so a
// service cannot emit an event its consumers reject.
func New(source, eventType, subject string, data any, at time.Time) (Envelope, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Envelope{}, fmt.Errorf("new %s event for %s: encode data: %w", eventType, subject, err)
	}
	env := Envelope{
		SpecVersion:     SpecVersion,
		ID:              ID(subject, eventType),
		Source:          source,
		Type:            eventType,
		Time:            at.UTC(),
		Subject:         subject,
		DataContentType: ContentType,
		Data:            raw,
	}
	if err := env.validate(); err != nil {
		return Envelope{}, fmt.Errorf("new %s event for %s: %w", eventType, subject, err)
	}
	if err := validateData(env); err != nil {
		return Envelope{}, fmt.Errorf("new %s event for %s: %w", eventType, subject, err)
	}
	return env, nil
}

// envelopeAttributes are the attributes Envelope holds in its own fields.
var envelopeAttributes = []string{"specversion", "id", "source", "type", "time", "subject", "datacontenttype", "data"}

// Decode parses a record value strictly: valid UTF-8, at most MaxSize
// bytes, one JSON object without duplicate keys, every required attribute
// (specversion, id, source, type, time, subject, data) present with the
// right JSON type, specversion "1.0", a known type, an RFC 3339 time,
// datacontenttype application/json when present, data a JSON object.
// Extension attributes (lowercase letters and digits) are kept in
// Extensions; any other attribute is rejected.
//
// Errors are *failure.Error of class Permanent (reason "decode" or
// "validation") wrapping a *DecodeError. Decode does not look inside data;
// DecodeData does.
func Decode(b []byte) (Envelope, error) {
	if len(b) > MaxSize {
		return Envelope{}, bad(KindOversize, "", "payload is %d bytes, larger than the %d-byte limit", len(b), MaxSize)
	}
	if !utf8.Valid(b) {
		return Envelope{}, bad(KindEncoding, "", "payload is not valid UTF-8 (first bad byte at offset %d)", firstInvalidUTF8(b))
	}
	fields, order, err := objectFields(b, "")
	if err != nil {
		return Envelope{}, err
	}
	var env Envelope
	for _, name := range order {
		if slices.Contains(envelopeAttributes, name) {
			continue
		}
		if name == "data_base64" {
			return Envelope{}, bad(KindUnknownField, name, "binary data is not supported: data must be a JSON object")
		}
		if !isExtensionName(name) {
			return Envelope{}, bad(KindUnknownField, name, "unknown attribute: CloudEvents attributes are %s, and extension names are lowercase letters and digits",
				strings.Join(envelopeAttributes, ", "))
		}
		raw := fields[name]
		if k := jsonKind(raw); k != "string" && k != "number" && k != "boolean" {
			return Envelope{}, bad(KindWrongType, name, "extension attribute must be a string, number or boolean, got %s", k)
		}
		if env.Extensions == nil {
			env.Extensions = make(map[string]json.RawMessage)
		}
		env.Extensions[name] = raw
	}

	strs := []struct {
		name     string
		dst      *string
		required bool
	}{
		{"specversion", &env.SpecVersion, true},
		{"id", &env.ID, true},
		{"source", &env.Source, true},
		{"type", &env.Type, true},
		{"subject", &env.Subject, true},
		{"datacontenttype", &env.DataContentType, false},
	}
	for _, s := range strs {
		raw, ok := fields[s.name]
		if !ok {
			if s.required {
				return Envelope{}, bad(KindMissing, s.name, "required attribute is missing")
			}
			continue
		}
		if err := decodeString(raw, s.name, s.dst); err != nil {
			return Envelope{}, err
		}
	}

	raw, ok := fields["time"]
	if !ok {
		return Envelope{}, bad(KindMissing, "time", "required attribute is missing")
	}
	var ts string
	if err := decodeString(raw, "time", &ts); err != nil {
		return Envelope{}, err
	}
	if env.Time, err = parseTimestamp(ts); err != nil {
		return Envelope{}, bad(KindInvalid, "time", "must be an RFC 3339 timestamp such as 2025-01-02T03:04:05Z, got %q", excerpt([]byte(ts)))
	}

	raw, ok = fields["data"]
	if !ok {
		return Envelope{}, bad(KindMissing, "data", "required attribute is missing")
	}
	if k := jsonKind(raw); k != "object" {
		return Envelope{}, bad(KindWrongType, "data", "must be a JSON object, got %s", k)
	}
	env.Data = raw

	if err := env.validate(); err != nil {
		return Envelope{}, err
	}
	return env, nil
}

// Encode returns the compact JSON of env, after the checks Decode makes, so
// what Encode returns always decodes. Strings are written with the minimum
// of escaping, which keeps a decoded event from growing when re-encoded.
func Encode(env Envelope) ([]byte, error) {
	if err := env.validate(); err != nil {
		return nil, fmt.Errorf("encode %s event %s: %w", env.Type, env.ID, err)
	}
	var b bytes.Buffer
	b.Grow(256 + len(env.Data))
	b.WriteString(`{"specversion":`)
	writeString(&b, env.SpecVersion)
	b.WriteString(`,"id":`)
	writeString(&b, env.ID)
	b.WriteString(`,"source":`)
	writeString(&b, env.Source)
	b.WriteString(`,"type":`)
	writeString(&b, env.Type)
	b.WriteString(`,"time":`)
	writeString(&b, env.Time.Format(time.RFC3339Nano))
	b.WriteString(`,"subject":`)
	writeString(&b, env.Subject)
	if env.DataContentType != "" {
		b.WriteString(`,"datacontenttype":`)
		writeString(&b, env.DataContentType)
	}
	b.WriteString(`,"data":`)
	if err := json.Compact(&b, env.Data); err != nil {
		return nil, fmt.Errorf("encode %s event %s: data: %w", env.Type, env.ID, err)
	}
	names := make([]string, 0, len(env.Extensions))
	for name := range env.Extensions {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		b.WriteByte(',')
		writeString(&b, name)
		b.WriteByte(':')
		if err := json.Compact(&b, env.Extensions[name]); err != nil {
			return nil, fmt.Errorf("encode %s event %s: extension %s: %w", env.Type, env.ID, name, err)
		}
	}
	b.WriteByte('}')
	if b.Len() > MaxSize {
		return nil, fmt.Errorf("encode %s event %s: %w", env.Type, env.ID,
			bad(KindOversize, "", "payload is %d bytes, larger than the %d-byte limit", b.Len(), MaxSize))
	}
	return b.Bytes(), nil
}

// MarshalJSON encodes the envelope with Encode, so json.Marshal produces a
// valid event with its extensions.
func (env Envelope) MarshalJSON() ([]byte, error) { return Encode(env) }

// UnmarshalJSON decodes the envelope with Decode, strictly.
func (env *Envelope) UnmarshalJSON(b []byte) error {
	e, err := Decode(b)
	if err != nil {
		return err
	}
	*env = e
	return nil
}

// validate checks the values of the envelope's attributes (Decode has
// already checked presence and JSON types).
func (env Envelope) validate() error {
	if env.SpecVersion != SpecVersion {
		return bad(KindInvalid, "specversion", "must be %q, got %q", SpecVersion, excerpt([]byte(env.SpecVersion)))
	}
	for _, f := range []struct{ name, value string }{{"id", env.ID}, {"source", env.Source}, {"subject", env.Subject}} {
		if f.value == "" {
			return bad(KindInvalid, f.name, "must not be empty")
		}
		if !utf8.ValidString(f.value) {
			return bad(KindEncoding, f.name, "must be valid UTF-8")
		}
	}
	if _, err := url.Parse(env.Source); err != nil {
		return bad(KindInvalid, "source", "must be a URI-reference such as /reefer-manager, got %q", excerpt([]byte(env.Source)))
	}
	if !knownType(env.Type) {
		return bad(KindUnknownType, "type", "unknown event type %q: want one of %s", excerpt([]byte(env.Type)), strings.Join(Types(), ", "))
	}
	if env.Time.IsZero() {
		return bad(KindInvalid, "time", "must be set")
	}
	if y := env.Time.Year(); y < 0 || y > 9999 {
		return bad(KindInvalid, "time", "year %d is outside the RFC 3339 range 0000-9999", y)
	}
	if env.DataContentType != "" && env.DataContentType != ContentType {
		mt, _, err := mime.ParseMediaType(env.DataContentType)
		if err != nil || mt != ContentType {
			return bad(KindInvalid, "datacontenttype", "must be %q when present, got %q", ContentType, excerpt([]byte(env.DataContentType)))
		}
	}
	if !json.Valid(env.Data) {
		return bad(KindSyntax, "data", "is not valid JSON")
	}
	if k := jsonKind(env.Data); k != "object" {
		return bad(KindWrongType, "data", "must be a JSON object, got %s", k)
	}
	for name, raw := range env.Extensions {
		if !isExtensionName(name) || slices.Contains(envelopeAttributes, name) || name == "data_base64" {
			return bad(KindUnknownField, name, "is not a valid extension name: lowercase letters and digits, not a CloudEvents attribute")
		}
		if !json.Valid(raw) {
			return bad(KindSyntax, name, "extension attribute is not valid JSON")
		}
		if k := jsonKind(raw); k != "string" && k != "number" && k != "boolean" {
			return bad(KindWrongType, name, "extension attribute must be a string, number or boolean, got %s", k)
		}
	}
	return nil
}

var errNotRFC3339 = errors.New("not an RFC 3339 timestamp")

// parseTimestamp parses an RFC 3339 timestamp strictly: time.Parse also
// accepts forms RFC 3339 does not (one-digit hours, a comma before the
// fraction), so the shape is checked first:
// YYYY-MM-DDTHH:MM:SS[.1-9 digits](Z|±HH:MM).
func parseTimestamp(s string) (time.Time, error) {
	const shape = "dddd-dd-ddTdd:dd:dd"
	if len(s) < len(shape) {
		return time.Time{}, errNotRFC3339
	}
	for i := range len(shape) {
		if shape[i] == 'd' && !isDigit(s[i]) || shape[i] != 'd' && s[i] != shape[i] {
			return time.Time{}, errNotRFC3339
		}
	}
	rest := s[len(shape):]
	if strings.HasPrefix(rest, ".") {
		n := 1
		for n < len(rest) && isDigit(rest[n]) {
			n++
		}
		if n == 1 || n > 10 { // 1 to 9 digits: nanoseconds
			return time.Time{}, errNotRFC3339
		}
		rest = rest[n:]
	}
	zoneOK := rest == "Z" || len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') &&
		isDigit(rest[1]) && isDigit(rest[2]) && rest[3] == ':' && isDigit(rest[4]) && isDigit(rest[5])
	if !zoneOK {
		return time.Time{}, errNotRFC3339
	}
	return time.Parse(time.RFC3339Nano, s) // checks the ranges
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isExtensionName reports whether name is a valid CloudEvents attribute
// name: lowercase ASCII letters and digits.
func isExtensionName(name string) bool {
	if name == "" {
		return false
	}
	for i := range len(name) {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// OrderCreated asks for a reefer container: a customer ships Quantity units
// of a product from PickupCity to DestinationCity.
type OrderCreated struct {
	OrderID         string `json:"orderID"`
	ProductID       string `json:"productID"`
	CustomerID      string `json:"customerID"`
	Quantity        int    `json:"quantity"`
	PickupCity      string `json:"pickupCity"`
	DestinationCity string `json:"destinationCity"`
	// ExpectedDeliveryDate is YYYY-MM-DD or an RFC 3339 timestamp.
	ExpectedDeliveryDate string `json:"expectedDeliveryDate"`
}

// DeliveryDate parses ExpectedDeliveryDate (a date is midnight UTC).
func (o OrderCreated) DeliveryDate() (time.Time, error) {
	return parseDate(o.ExpectedDeliveryDate)
}

// ContainerAllocated says that a reefer was reserved for the order.
type ContainerAllocated struct {
	OrderID     string `json:"orderID"`
	ContainerID string `json:"containerID"`
}

// OrderRejected is a business outcome (for example no reefer has the
// capacity), not an error: it is never retried.
type OrderRejected struct {
	OrderID string `json:"orderID"`
	Reason  string `json:"reason"`
}

// ContainerAssignedToOrder tells the container side that a container now
// serves the order.
type ContainerAssignedToOrder struct {
	ContainerID string `json:"containerID"`
	OrderID     string `json:"orderID"`
}

// Data is the set of event payload types, for DecodeData.
type Data interface {
	OrderCreated | ContainerAllocated | OrderRejected | ContainerAssignedToOrder
}

// DecodeData decodes env.Data as T strictly: env.Type must be T's event
// type, every field must be present with the right JSON type, unknown and
// duplicate fields are rejected, strings must not be blank, and data.orderID
// must equal the subject. OrderCreated also needs quantity > 0 and a valid
// expectedDeliveryDate. Errors are like Decode's.
func DecodeData[T Data](env Envelope) (T, error) {
	var v T
	var err error
	switch p := any(&v).(type) {
	case *OrderCreated:
		err = decodeOrderCreated(env, p)
	case *ContainerAllocated:
		err = decodeContainerAllocated(env, p)
	case *OrderRejected:
		err = decodeOrderRejected(env, p)
	case *ContainerAssignedToOrder:
		err = decodeContainerAssignedToOrder(env, p)
	}
	if err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// DecodeOrderCreated decodes a record value that must be an OrderCreated
// event: Decode followed by DecodeData[OrderCreated]. When only the data is
// bad, the decoded envelope is returned with the error, for logging.
func DecodeOrderCreated(b []byte) (Envelope, OrderCreated, error) {
	env, err := Decode(b)
	if err != nil {
		return Envelope{}, OrderCreated{}, err
	}
	oc, err := DecodeData[OrderCreated](env)
	return env, oc, err
}

// validateData checks that env.Data decodes as env.Type's payload.
func validateData(env Envelope) error {
	var err error
	switch env.Type {
	case TypeOrderCreated:
		_, err = DecodeData[OrderCreated](env)
	case TypeContainerAllocated:
		_, err = DecodeData[ContainerAllocated](env)
	case TypeOrderRejected:
		_, err = DecodeData[OrderRejected](env)
	case TypeContainerAssignedToOrder:
		_, err = DecodeData[ContainerAssignedToOrder](env)
	}
	return err
}

func decodeOrderCreated(env Envelope, o *OrderCreated) error {
	r, err := newFieldReader(env, TypeOrderCreated)
	if err != nil {
		return err
	}
	r.string("orderID", &o.OrderID)
	r.string("productID", &o.ProductID)
	r.string("customerID", &o.CustomerID)
	r.int("quantity", &o.Quantity)
	r.string("pickupCity", &o.PickupCity)
	r.string("destinationCity", &o.DestinationCity)
	r.string("expectedDeliveryDate", &o.ExpectedDeliveryDate)
	if err := r.done(); err != nil {
		return err
	}
	if o.Quantity <= 0 {
		return bad(KindInvalid, "data.quantity", "must be an integer > 0, got %d", o.Quantity)
	}
	if _, err := parseDate(o.ExpectedDeliveryDate); err != nil {
		return bad(KindInvalid, "data.expectedDeliveryDate", "must be a date (YYYY-MM-DD) or an RFC 3339 timestamp, got %q", excerpt([]byte(o.ExpectedDeliveryDate)))
	}
	return subjectIs(env, o.OrderID)
}

func decodeContainerAllocated(env Envelope, c *ContainerAllocated) error {
	r, err := newFieldReader(env, TypeContainerAllocated)
	if err != nil {
		return err
	}
	r.string("orderID", &c.OrderID)
	r.string("containerID", &c.ContainerID)
	if err := r.done(); err != nil {
		return err
	}
	return subjectIs(env, c.OrderID)
}

func decodeOrderRejected(env Envelope, o *OrderRejected) error {
	r, err := newFieldReader(env, TypeOrderRejected)
	if err != nil {
		return err
	}
	r.string("orderID", &o.OrderID)
	r.string("reason", &o.Reason)
	if err := r.done(); err != nil {
		return err
	}
	return subjectIs(env, o.OrderID)
}

func decodeContainerAssignedToOrder(env Envelope, c *ContainerAssignedToOrder) error {
	r, err := newFieldReader(env, TypeContainerAssignedToOrder)
	if err != nil {
		return err
	}
	r.string("containerID", &c.ContainerID)
	r.string("orderID", &c.OrderID)
	if err := r.done(); err != nil {
		return err
	}
	return subjectIs(env, c.OrderID)
}

// subjectIs checks the contract's rule that the subject is the order id.
func subjectIs(env Envelope, orderID string) error {
	if env.Subject != orderID {
		return bad(KindInvalid, "subject", "must equal data.orderID %q, got %q", excerpt([]byte(orderID)), excerpt([]byte(env.Subject)))
	}
	return nil
}

func parseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return parseTimestamp(s)
}

// fieldReader reads the members of a data object one by one, remembering
// the first problem, so each decoder reads like a list of its fields.
type fieldReader struct {
	eventType string
	fields    map[string]json.RawMessage
	read      []string
	err       error
}

func newFieldReader(env Envelope, eventType string) (*fieldReader, error) {
	if env.Type != eventType {
		return nil, bad(KindInvalid, "type", "is %q, want %q", excerpt([]byte(env.Type)), eventType)
	}
	fields, _, err := objectFields(env.Data, "data")
	if err != nil {
		return nil, err
	}
	return &fieldReader{eventType: eventType, fields: fields, read: make([]string, 0, len(fields))}, nil
}

// raw returns the member name, recording a problem when it is absent.
func (r *fieldReader) raw(name string) (json.RawMessage, bool) {
	r.read = append(r.read, name)
	raw, ok := r.fields[name]
	if !ok && r.err == nil {
		r.err = bad(KindMissing, "data."+name, "required field is missing")
	}
	return raw, ok && r.err == nil
}

// string reads a non-blank string.
func (r *fieldReader) string(name string, dst *string) {
	raw, ok := r.raw(name)
	if !ok {
		return
	}
	if str, plain := unquote(raw); plain {
		*dst = str // what decodeString gives, without building the field path
	} else if err := decodeString(raw, "data."+name, dst); err != nil {
		r.err = err
		return
	}
	if strings.TrimSpace(*dst) == "" {
		r.err = bad(KindInvalid, "data."+name, "must not be blank")
	}
}

// int reads an integer: no fraction, no exponent, within int's range.
func (r *fieldReader) int(name string, dst *int) {
	raw, ok := r.raw(name)
	if !ok {
		return
	}
	if k := jsonKind(raw); k != "number" {
		r.err = bad(KindWrongType, "data."+name, "must be an integer, got %s %s", k, excerpt(raw))
		return
	}
	if n, ok := plainInt(raw); ok {
		*dst = n
		return
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		r.err = bad(KindWrongType, "data."+name, "must be an integer, got %s", excerpt(raw))
	}
}

// plainInt reads a JSON number that is an optional minus and digits and
// fits an int, the way json.Unmarshal into an int does. ok is false for
// anything else (a fraction, an exponent, too many digits); the caller
// then lets encoding/json decide, so both ways agree.
func plainInt(raw []byte) (int, bool) {
	digits := raw
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(raw), 10, strconv.IntSize)
	if err != nil {
		return 0, false
	}
	return int(n), true
}

// done reports unknown fields first (a misspelt field also shows up as a
// missing one, and the unknown name is the better hint), then the first
// problem met while reading.
func (r *fieldReader) done() error {
	var unknown []string
	for name := range r.fields {
		if !slices.Contains(r.read, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return bad(KindUnknownField, "data."+unknown[0], "unknown field: %s data has %s", r.eventType, strings.Join(r.read, ", "))
	}
	return r.err
}
