package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"unicode/utf8"
)

// The strict JSON reading and writing that Decode and Encode use: one
// object at a time, duplicate keys refused, errors that say what and where.

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
