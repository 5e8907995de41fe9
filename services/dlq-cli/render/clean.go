package render

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Clean makes text from a record safe to print on a terminal. Dead letters
// are the records that went wrong, and some are hostile: a value or header
// holding ESC [ 2 J clears the screen of whoever runs dlq show, an OSC
// sequence can set the window title or, on some terminals, write the
// clipboard. Clean removes
//
//   - escape sequences: CSI (ESC [ ... final byte), OSC, DCS, SOS, PM, APC
//     (ESC ] ... BEL or ESC \), and any other ESC plus the byte after it;
//   - C1 controls (U+0080..U+009F, 8-bit CSI among them) and DEL;
//   - C0 controls but newline and tab (carriage return and backspace can
//     overwrite what was printed before);
//   - invalid UTF-8 (replaced by U+FFFD).
//
// Each removed control or sequence leaves a U+FFFD mark, so a person sees
// that something was there; `dlq export` keeps the bytes exactly.
func Clean(s string) string {
	if isClean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteRune(utf8.RuneError)
			i++
		case r == 0x1b:
			i = skipEscape(s, i)
			b.WriteRune(utf8.RuneError)
		case r == '\n' || r == '\t':
			b.WriteRune(r)
			i += size
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			b.WriteRune(utf8.RuneError)
			i += size
		default:
			b.WriteString(s[i : i+size])
			i += size
		}
	}
	return b.String()
}

// CleanLine is Clean for text that must stay on one line (a table cell):
// newlines and tabs become spaces too.
func CleanLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return ' '
		}
		return r
	}, Clean(s))
}

func isClean(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f {
			return false
		}
		if c >= 0x80 {
			r, size := utf8.DecodeRuneInString(s[i:])
			if (r == utf8.RuneError && size <= 1) || (r >= 0x80 && r <= 0x9f) {
				return false
			}
			i += size - 1
		}
	}
	return true
}

// skipEscape returns the index after the escape sequence that starts with
// ESC at s[i].
func skipEscape(s string, i int) int {
	i++ // ESC
	if i >= len(s) {
		return i
	}
	switch s[i] {
	case '[': // CSI: parameters and intermediates, then a final byte 0x40..0x7e
		i++
		for i < len(s) && (s[i] < 0x40 || s[i] > 0x7e) {
			if s[i] < 0x20 { // not a CSI after all: stop before the control
				return i
			}
			i++
		}
		return min(i+1, len(s))
	case ']', 'P', 'X', '^', '_': // OSC, DCS, SOS, PM, APC: a string up to BEL or ST
		i++
		for i < len(s) {
			if s[i] == 0x07 {
				return i + 1
			}
			if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
			i++
		}
		return i
	}
	return i + 1 // a two-byte sequence (ESC c resets the terminal)
}

// jsonWriter escapes, in JSON that encoding/json wrote, what it leaves raw
// and a terminal would act on: DEL and the C1 controls. encoding/json
// already escapes C0 (ESC becomes \u001b); the result is the same JSON
// value, safe to print.
type jsonWriter struct{ w io.Writer }

func (j jsonWriter) Write(p []byte) (int, error) {
	if !bytes.ContainsFunc(p, func(r rune) bool { return r == 0x7f || (r >= 0x80 && r <= 0x9f) }) {
		return j.w.Write(p)
	}
	var b bytes.Buffer
	for i := 0; i < len(p); {
		r, size := utf8.DecodeRune(p[i:])
		if r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			fmt.Fprintf(&b, `\u%04x`, r)
		} else {
			b.Write(p[i : i+size])
		}
		i += size
	}
	if _, err := j.w.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}
