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

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/backoff"
)

// Class says whether retrying can help.
type Class string

// The three classes.
const (
	// Transient failures may succeed later: retry with backoff.
	Transient Class = "transient"
	// Permanent failures fail the same way every time: dead-letter now.
	Permanent Class = "permanent"
	// Config failures say that the deployment, not the record, is wrong:
	// a credential the other side refuses (HTTP 401/403, SQLSTATE class
	// 28), a schema that does not match (SQLSTATE class 42), a redirect
	// where an API was expected, a topic the broker does not authorise.
	// Every record fails the same way until an operator fixes it, and
	// then every record succeeds: retry with backoff (never dead-letter
	// at the first attempt), count them apart so an alert can say "fix
	// the configuration", and let a circuit breaker open on them.
	Config Class = "config"
)

// Classes lists every class, for metric labels and header validation.
var Classes = []Class{Transient, Permanent, Config}

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

// NewConfig returns a configuration failure with reason, wrapping err, and
// captures the caller's stack.
func NewConfig(reason string, err error) *Error {
	return newError(Config, reason, err, 3)
}

// New returns a failure of class c with reason, wrapping err, and captures
// the caller's stack. Use it to re-create a failure of a class known only
// at run time (for example after rewriting its message).
func New(c Class, reason string, err error) *Error {
	return newError(c, reason, err, 3)
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
	if e, ok := errors.AsType[*Error](err); ok && (e.Class == Permanent || e.Class == Config) {
		return e.Class
	}
	return Transient
}

// IsPermanent reports whether err is classified permanent.
func IsPermanent(err error) bool { return ClassOf(err) == Permanent }

// IsConfig reports whether err is classified config.
func IsConfig(err error) bool { return ClassOf(err) == Config }

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

// FromHTTPStatus classifies an HTTP response status. Only 2xx is success
// (nil). The rest:
//
//   - 3xx is config: the client does not follow redirects, so a redirect
//     (a moved API, a proxy sending us to a login page) and a 304 to a
//     write mean the request did not happen, and the base URL or the
//     proxy is what is wrong;
//   - 401, 403 and 407 are config: the credential is refused, for every
//     request alike, until an operator fixes it;
//   - 5xx, 408 and 429 are transient, with RetryAfter from the
//     Retry-After header (delta-seconds or HTTP date, relative to now);
//   - every other 4xx is permanent;
//   - 1xx (which net/http only returns when something is broken) and a
//     status outside 100-599 are transient.
//
// The reason is "http-<code>".
func FromHTTPStatus(status int, header http.Header, now time.Time) error {
	if status >= 200 && status < 300 {
		return nil
	}
	reason := "http-" + strconv.Itoa(status)
	cause := fmt.Errorf("unexpected status %d %s", status, http.StatusText(status))
	switch {
	case status >= 300 && status < 400:
		if loc := header.Get("Location"); loc != "" {
			cause = fmt.Errorf("unexpected status %d %s to %.200q (redirects are not followed)", status, http.StatusText(status), loc)
		}
		return newError(Config, reason, cause, 3)
	case status == http.StatusUnauthorized, status == http.StatusForbidden, status == http.StatusProxyAuthRequired:
		return newError(Config, reason, cause, 3)
	}
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
	return newError(Transient, transportReason(err), err, 3)
}

// transportReason names a transport failure for FromTransport and
// FromProducer.
func transportReason(err error) string {
	if reason, ok := knownTransient(err); ok {
		return reason
	}
	if _, dns := errors.AsType[*net.DNSError](err); dns {
		return "dns"
	}
	return "transport"
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
