package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"slices"
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

// objectFields splits a JSON object into its members, rejecting anything
// that is not exactly one object and duplicate keys. Values are compacted.
// path prefixes field names in errors ("data").
//
// Well-formed objects, nearly every record, take a fast path; everything
// else goes to readObjectFields, which finds the first problem and says
// what and where. Both give the same result for every input that the fast
// path accepts (FuzzObjectFields checks it).
func objectFields(b []byte, path string) (map[string]json.RawMessage, []string, error) {
	if fields, order, ok := splitObject(b); ok {
		return fields, order, nil
	}
	return readObjectFields(b, path)
}

// splitObject is objectFields for the common case: b is valid JSON (one
// pass of the standard library's validating scanner, which allocates
// nothing), an object, without duplicate keys. It compacts b into one new
// buffer (a plain copy when b has no whitespace at all, as what Encode
// writes) and cuts the members out of it, which needs no tokenizer: in
// compact, valid JSON every member is "key":value followed by ',' or the
// closing '}'. ok is false for any other input.
func splitObject(b []byte) (fields map[string]json.RawMessage, order []string, ok bool) {
	if !json.Valid(b) {
		return nil, nil, false
	}
	c := bytes.Clone(b)
	if bytes.ContainsAny(b, " \t\r\n") {
		buf := bytes.NewBuffer(c[:0])
		if err := json.Compact(buf, b); err != nil {
			return nil, nil, false
		}
		c = buf.Bytes()
	}
	if c[0] != '{' {
		return nil, nil, false
	}
	fields = make(map[string]json.RawMessage)
	for i := 1; c[i] != '}'; {
		end := stringEnd(c, i)
		name, ok := unquote(c[i:end])
		if !ok {
			if err := json.Unmarshal(c[i:end], &name); err != nil {
				return nil, nil, false
			}
		}
		start := end + 1 // after the ':'
		end = valueEnd(c, start)
		if _, dup := fields[name]; dup {
			return nil, nil, false
		}
		// Capped, so that appending to one value cannot overwrite the next.
		fields[name] = c[start:end:end]
		order = append(order, name)
		i = end
		if c[i] == ',' {
			i++
		}
	}
	return fields, order, true
}

// stringEnd returns the index just past the JSON string that starts at
// c[i] (a '"') in valid JSON.
func stringEnd(c []byte, i int) int {
	for i++; c[i] != '"'; i++ {
		if c[i] == '\\' {
			i++ // the escaped character, which may be a '"'
		}
	}
	return i + 1
}

// valueEnd returns the index just past the value that starts at c[i] in
// compact, valid JSON.
func valueEnd(c []byte, i int) int {
	switch c[i] {
	case '"':
		return stringEnd(c, i)
	case '{', '[':
		depth := 0
		for {
			switch c[i] {
			case '"':
				i = stringEnd(c, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
	default: // number, true, false, null
		for i < len(c) && c[i] != ',' && c[i] != '}' && c[i] != ']' {
			i++
		}
		return i
	}
}

// unquote returns the contents of the JSON string q when they need no
// decoding: no escapes, and valid UTF-8 (json.Unmarshal would replace
// invalid bytes with U+FFFD). ok is false otherwise; the caller then lets
// encoding/json decode it, so both ways give the same string.
func unquote(q []byte) (string, bool) {
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		return "", false
	}
	inner := q[1 : len(q)-1]
	ascii := true
	for _, c := range inner {
		switch {
		case c == '\\' || c == '"' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(inner) {
		return "", false
	}
	return string(inner), true
}

// readObjectFields is objectFields token by token with encoding/json's
// streaming decoder: slow, but it stops at the first problem and reports
// it precisely.
func readObjectFields(b []byte, path string) (map[string]json.RawMessage, []string, error) {
	at := func(name string) string {
		if path == "" {
			return name
		}
		return path + "." + name
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, syntaxError(path, b, err)
	}
	if tok != json.Delim('{') {
		// Token has read a whole scalar or the start of an array.
		return nil, nil, bad(KindSyntax, path, "must be a JSON object, got %s", jsonKind(b))
	}
	fields := make(map[string]json.RawMessage)
	var order []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, syntaxError(path, b, err)
		}
		name := tok.(string) // inside an object, Token returns keys as strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, syntaxError(path, b, err)
		}
		if _, dup := fields[name]; dup {
			return nil, nil, bad(KindSyntax, at(name), "duplicate key")
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return nil, nil, syntaxError(path, b, err)
		}
		fields[name] = compact.Bytes()
		order = append(order, name)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, nil, syntaxError(path, b, err)
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, bad(KindSyntax, path, "unexpected data after the JSON object (offset %d)", end)
	}
	return fields, order, nil
}

func syntaxError(path string, b []byte, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		if len(bytes.TrimSpace(b)) == 0 {
			return bad(KindSyntax, path, "empty: want a JSON object")
		}
		return bad(KindSyntax, path, "not valid JSON: unexpected end of input")
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return bad(KindSyntax, path, "not valid JSON: %s (offset %d)", se.Error(), se.Offset)
	}
	return bad(KindSyntax, path, "not valid JSON: %s", err.Error())
}

// decodeString reads a JSON string into dst.
func decodeString(raw json.RawMessage, field string, dst *string) error {
	if k := jsonKind(raw); k != "string" {
		return bad(KindWrongType, field, "must be a string, got %s %s", k, excerpt(raw))
	}
	if str, ok := unquote(raw); ok {
		*dst = str
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return bad(KindSyntax, field, "not a valid JSON string: %s", err.Error())
	}
	return nil
}

// jsonKind names the JSON type of a valid value by its first byte.
func jsonKind(raw []byte) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

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

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

// writeString writes s as a JSON string, escaping only what JSON requires
// (quote, backslash and control characters); s must be valid UTF-8.
func writeString(b *bytes.Buffer, s string) {
	const hexDigits = "0123456789abcdef"
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b.WriteString(s[start:i])
		switch c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			b.WriteString(`\u00`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		}
		start = i + 1
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}
