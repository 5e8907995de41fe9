package events

import (
	"fmt"
	"unicode/utf8"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
)

// Kind says what kind of problem a DecodeError reports.
type Kind string

// The kinds of decoding problems. Encoding, Oversize, Syntax, WrongType and
// UnknownField are reported with failure reason "decode"; Missing,
// UnknownType and Invalid with reason "validation".
const (
	KindEncoding     Kind = "encoding"      // not valid UTF-8
	KindOversize     Kind = "oversize"      // larger than MaxSize
	KindSyntax       Kind = "syntax"        // not JSON, not an object, duplicate key, trailing data
	KindWrongType    Kind = "wrong-type"    // a field of the wrong JSON type
	KindUnknownField Kind = "unknown-field" // a field the event does not define
	KindMissing      Kind = "missing"       // a required field is absent
	KindUnknownType  Kind = "unknown-type"  // an event type nobody knows
	KindInvalid      Kind = "invalid"       // a field of the right type with a bad value
)

// DecodeError says what is wrong with an event: which field (a dotted path
// such as "data.quantity"; empty for the payload as a whole) and the
// problem.
type DecodeError struct {
	Kind    Kind
	Field   string
	Problem string
}

func (e *DecodeError) Error() string {
	if e.Field == "" {
		return "event: " + e.Problem
	}
	return "event " + e.Field + ": " + e.Problem
}

// reason maps the kind to the failure reason.
func (k Kind) reason() string {
	switch k {
	case KindMissing, KindUnknownType, KindInvalid:
		return "validation"
	default:
		return "decode"
	}
}

// bad returns the permanent failure for a problem with field.
func bad(kind Kind, field, format string, args ...any) error {
	return failure.NewPermanent(kind.reason(), &DecodeError{Kind: kind, Field: field, Problem: fmt.Sprintf(format, args...)})
}

// excerpt quotes a value for an error message, shortened so that a huge
// bad value does not produce a huge message.
func excerpt(b []byte) string {
	const limit = 64
	if len(b) <= limit {
		return string(b)
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return string(b[:cut]) + "…"
}
