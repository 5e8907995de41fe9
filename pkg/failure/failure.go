package failure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/backoff"
)

// Class says whether retrying can help.
type Class string

// The two classes.
const (
	// Transient failures may succeed later: retry with backoff.
	Transient Class = "transient"
	// Permanent failures fail the same way every time: dead-letter now.
	Permanent Class = "permanent"
)

// maxFrames bounds the captured stack; the dead-letter header keeps 4 KiB
// of it anyway.
const maxFrames = 32

// Error is a classified failure.
type Error struct {
	// Class is Transient or Permanent.
	Class Class
	// Reason is short and stable, fit for a metric label or a header:
	// "http-503", "timeout", "connection-refused", "decode",
	// "validation", "circuit-open".
	Reason string
	// RetryAfter is how long the other side asked us to wait (from an HTTP
	// Retry-After header); 0 when it did not say.
	RetryAfter time.Duration
	// Err is the underlying error; may be nil.
	Err error

	stack []uintptr
}

// NewTransient returns a transient failure with reason, wrapping err, and
// captures the caller's stack.
func NewTransient(reason string, err error) *Error {
	return newError(Transient, reason, err, 3)
}

// NewPermanent returns a permanent failure with reason, wrapping err, and
// captures the caller's stack.
func NewPermanent(reason string, err error) *Error {
	return newError(Permanent, reason, err, 3)
}

// newError captures the stack from skip frames above callers: 3 skips
// newError and the exported function that called it.
func newError(c Class, reason string, err error, skip int) *Error {
	return &Error{Class: c, Reason: reason, Err: err, stack: callers(skip)}
}

// Error returns "<reason>: <underlying error>".
func (e *Error) Error() string {
	reason := e.Reason
	if reason == "" {
		reason = string(e.Class) + " failure"
	}
	if e.Err == nil {
		return reason
	}
	return reason + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Stack returns the stack captured when the error was created, one
// "function\n\tfile:line" entry per frame, innermost first. It is empty for
// an Error built as a struct literal.
func (e *Error) Stack() string { return formatStack(e.stack) }

// ClassOf returns the class of err: "" for nil; the Class of the first
// *Error in the chain; Transient for everything else, including the known
// transient I/O errors (deadline exceeded, network timeouts, refused and
// reset connections, broken pipes, EOF) and errors nobody classified (see
// the package documentation for why).
func ClassOf(err error) Class {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok && e.Class == Permanent {
		return Permanent
	}
	return Transient
}

// IsPermanent reports whether err is classified permanent.
func IsPermanent(err error) bool { return ClassOf(err) == Permanent }

// ReasonOf returns the reason of the first *Error in the chain, otherwise a
// reason derived from well-known errors ("timeout", "connection-refused",
// "canceled"...), "unknown" for anything else and "" for nil.
func ReasonOf(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok && e.Reason != "" {
		return e.Reason
	}
	if errors.Is(err, context.Canceled) {
		return "canceled"
	}
	if reason, ok := knownTransient(err); ok {
		return reason
	}
	return "unknown"
}

// RetryAfterOf returns the RetryAfter of the first *Error in the chain, or 0.
func RetryAfterOf(err error) time.Duration {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.RetryAfter
	}
	return 0
}

// StackOf returns the stack captured by the first *Error in the chain that
// has one; otherwise the stack of StackOf's caller, so a dead-letter record
// always shows where the failure was handled.
func StackOf(err error) string {
	for e := err; e != nil; {
		fe, ok := errors.AsType[*Error](e)
		if !ok {
			break
		}
		if len(fe.stack) > 0 {
			return fe.Stack()
		}
		e = fe.Err
	}
	return formatStack(callers(2))
}

// FromHTTPStatus classifies an HTTP response status. It returns nil for
// 1xx-3xx; a transient *Error for 5xx, 408 and 429 (with RetryAfter from
// the Retry-After header, delta-seconds or HTTP date, relative to now); a
// permanent *Error for every other 4xx; and a transient *Error for a status
// outside 100-599, which only a broken server sends. The reason is
// "http-<code>".
func FromHTTPStatus(status int, header http.Header, now time.Time) error {
	if status >= 100 && status < 400 {
		return nil
	}
	reason := "http-" + strconv.Itoa(status)
	cause := fmt.Errorf("unexpected status %d %s", status, http.StatusText(status))
	if status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests {
		return newError(Permanent, reason, cause, 3)
	}
	e := newError(Transient, reason, cause, 3)
	if d, ok := backoff.ParseRetryAfter(header.Get("Retry-After"), now); ok {
		e.RetryAfter = d
	}
	return e
}

// FromTransport classifies an error returned by http.Client.Do (or any
// network call). nil stays nil; an error already classified is returned as
// is; context.Canceled is returned unchanged because shutdown is not a
// failure. Timeouts, refused and reset connections, broken pipes and EOF
// become transient with a precise reason ("timeout", "connection-refused",
// "connection-reset", "broken-pipe", "eof", "unexpected-eof", "dns"); any
// other transport error becomes transient with reason "transport".
func FromTransport(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*Error](err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	reason, ok := knownTransient(err)
	if !ok {
		if _, dns := errors.AsType[*net.DNSError](err); dns {
			reason = "dns"
		} else {
			reason = "transport"
		}
	}
	return newError(Transient, reason, err, 3)
}

// knownTransient recognises the standard errors that mean "try again
// later" and names them.
func knownTransient(err error) (string, bool) {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout", true
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection-refused", true
	case errors.Is(err, syscall.ECONNRESET):
		return "connection-reset", true
	case errors.Is(err, syscall.EPIPE):
		return "broken-pipe", true
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected-eof", true
	case errors.Is(err, io.EOF):
		return "eof", true
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return "timeout", true
	}
	return "", false
}

// callers returns the program counters of the stack, skip frames above
// callers itself (1 is the function that called callers).
func callers(skip int) []uintptr {
	pcs := make([]uintptr, maxFrames)
	n := runtime.Callers(skip+1, pcs)
	return pcs[:n]
}

func formatStack(pcs []uintptr) string {
	if len(pcs) == 0 {
		return ""
	}
	var b strings.Builder
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		if f.Function != "" {
			fmt.Fprintf(&b, "%s\n\t%s:%d\n", f.Function, f.File, f.Line)
		}
		if !more {
			break
		}
	}
	return b.String()
}
