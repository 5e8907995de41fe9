package failure_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
)

func TestConstructorsCarryClassReasonAndCause(t *testing.T) {
	cause := errors.New("inventory said no")
	tests := []struct {
		err       *failure.Error
		class     failure.Class
		wantError string
	}{
		{failure.NewTransient("http-503", cause), failure.Transient, "http-503: inventory said no"},
		{failure.NewPermanent("validation", cause), failure.Permanent, "validation: inventory said no"},
		{failure.NewPermanent("decode", nil), failure.Permanent, "decode"},
		{&failure.Error{Class: failure.Transient}, failure.Transient, "transient failure"},
	}
	for _, tt := range tests {
		if tt.err.Class != tt.class {
			t.Errorf("%v: Class = %q, want %q", tt.err, tt.err.Class, tt.class)
		}
		if got := tt.err.Error(); got != tt.wantError {
			t.Errorf("Error() = %q, want %q", got, tt.wantError)
		}
	}
	if !errors.Is(failure.NewTransient("x", cause), cause) {
		t.Error("errors.Is does not find the wrapped cause: Unwrap is broken")
	}
}

func TestClassOfFindsTheErrorAnywhereInTheChainAndDefaultsToTransient(t *testing.T) {
	permanent := failure.NewPermanent("validation", errors.New("quantity must be > 0"))
	tests := []struct {
		name string
		err  error
		want failure.Class
	}{
		{"nil has no class", nil, ""},
		{"permanent", permanent, failure.Permanent},
		{"permanent wrapped twice", fmt.Errorf("allocate order o-1: %w", fmt.Errorf("reserve: %w", permanent)), failure.Permanent},
		{"permanent inside errors.Join", errors.Join(errors.New("other"), permanent), failure.Permanent},
		{"transient wrapped", fmt.Errorf("call: %w", failure.NewTransient("http-503", nil)), failure.Transient},
		{"the outermost Error wins", failure.NewTransient("retry", permanent), failure.Transient},
		{"Error with an empty class", &failure.Error{Reason: "x"}, failure.Transient},
		{"deadline exceeded", context.DeadlineExceeded, failure.Transient},
		{"refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), failure.Transient},
		{"EOF", io.EOF, failure.Transient},
		{"unknown error", errors.New("something odd"), failure.Transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := failure.ClassOf(tt.err); got != tt.want {
				t.Errorf("ClassOf = %q, want %q", got, tt.want)
			}
			if got := failure.IsPermanent(tt.err); got != (tt.want == failure.Permanent) {
				t.Errorf("IsPermanent = %v, want %v", got, tt.want == failure.Permanent)
			}
		})
	}
}

// opError builds the error chain the net package returns for a failed
// syscall: *net.OpError → *os.SyscallError → syscall.Errno.
func opError(op string, errno syscall.Errno) error {
	return &url.Error{Op: "Post", URL: "http://inventory/reserve", Err: &net.OpError{
		Op: op, Net: "tcp", Err: os.NewSyscallError(op, errno),
	}}
}

func TestReasonOfNamesWellKnownErrors(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{failure.NewTransient("circuit-open", errors.New("breaker open")), "circuit-open"},
		{fmt.Errorf("call: %w", context.DeadlineExceeded), "timeout"},
		{opError("dial", syscall.ECONNREFUSED), "connection-refused"},
		{opError("read", syscall.ECONNRESET), "connection-reset"},
		{opError("write", syscall.EPIPE), "broken-pipe"},
		{io.EOF, "eof"},
		{fmt.Errorf("body: %w", io.ErrUnexpectedEOF), "unexpected-eof"},
		{os.ErrDeadlineExceeded, "timeout"},
		{context.Canceled, "canceled"},
		{errors.New("what"), "unknown"},
	}
	for _, tt := range tests {
		if got := failure.ReasonOf(tt.err); got != tt.want {
			t.Errorf("ReasonOf(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestRetryAfterOfReadsTheWrappedError(t *testing.T) {
	e := failure.NewTransient("http-429", nil)
	e.RetryAfter = 7 * time.Second
	if got := failure.RetryAfterOf(fmt.Errorf("wrapped: %w", e)); got != 7*time.Second {
		t.Errorf("RetryAfterOf = %s, want 7s", got)
	}
	if got := failure.RetryAfterOf(errors.New("plain")); got != 0 {
		t.Errorf("RetryAfterOf(plain) = %s, want 0", got)
	}
}

func createdHere() *failure.Error { return failure.NewPermanent("decode", nil) }

func TestStackStartsWhereTheErrorWasCreated(t *testing.T) {
	stack := failure.StackOf(fmt.Errorf("wrapped: %w", createdHere()))
	first, _, _ := strings.Cut(stack, "\n")
	if !strings.HasSuffix(first, "failure_test.createdHere") {
		t.Errorf("first frame = %q, want failure_test.createdHere; stack:\n%s", first, stack)
	}
	if !strings.Contains(stack, "TestStackStartsWhereTheErrorWasCreated") || !strings.Contains(stack, "failure_test.go:") {
		t.Errorf("stack lacks the test's frame with file:line:\n%s", stack)
	}
}

func TestStackOfAnUnclassifiedErrorIsTheCallersStack(t *testing.T) {
	stack := failure.StackOf(errors.New("plain"))
	first, _, _ := strings.Cut(stack, "\n")
	if !strings.HasSuffix(first, "TestStackOfAnUnclassifiedErrorIsTheCallersStack") {
		t.Errorf("first frame = %q, want the caller of StackOf; stack:\n%s", first, stack)
	}
	// A hand-built Error has no stack: StackOf falls back the same way, and
	// looks through it for an inner Error that has one.
	inner := createdHere()
	if got := failure.StackOf(&failure.Error{Class: failure.Transient, Err: inner}); got != inner.Stack() {
		t.Errorf("StackOf(literal wrapping inner) = %q, want the inner stack %q", got, inner.Stack())
	}
	if got := (&failure.Error{}).Stack(); got != "" {
		t.Errorf("Stack() of a literal = %q, want empty", got)
	}
}

func TestFromHTTPStatusMapsStatusCodes(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		status     int
		retryAfter string
		wantClass  failure.Class // "" means nil error
		wantAfter  time.Duration
	}{
		{200, "", "", 0},
		{201, "", "", 0},
		{204, "", "", 0},
		{301, "", failure.Config, 0},
		{302, "", failure.Config, 0},
		{304, "", failure.Config, 0},
		{307, "", failure.Config, 0},
		{308, "", failure.Config, 0},
		{500, "", failure.Transient, 0},
		{502, "", failure.Transient, 0},
		{503, "30", failure.Transient, 30 * time.Second},
		{503, "Thu, 02 Jan 2025 03:05:05 GMT", failure.Transient, time.Minute},
		{503, "garbage", failure.Transient, 0},
		{504, "", failure.Transient, 0},
		{408, "", failure.Transient, 0},
		{429, "2", failure.Transient, 2 * time.Second},
		{400, "", failure.Permanent, 0},
		{401, "", failure.Config, 0},
		{403, "", failure.Config, 0},
		{407, "", failure.Config, 0},
		{404, "", failure.Permanent, 0},
		{409, "", failure.Permanent, 0},
		{422, "", failure.Permanent, 0},
		{451, "", failure.Permanent, 0},
		{99, "", failure.Transient, 0},
		{100, "", failure.Transient, 0},
		{600, "", failure.Transient, 0},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.retryAfter != "" {
			h.Set("Retry-After", tt.retryAfter)
		}
		err := failure.FromHTTPStatus(tt.status, h, now)
		if tt.wantClass == "" {
			if err != nil {
				t.Errorf("FromHTTPStatus(%d) = %v, want nil", tt.status, err)
			}
			continue
		}
		if got := failure.ClassOf(err); got != tt.wantClass {
			t.Errorf("FromHTTPStatus(%d) class = %q, want %q", tt.status, got, tt.wantClass)
		}
		if got, want := failure.ReasonOf(err), fmt.Sprintf("http-%d", tt.status); got != want {
			t.Errorf("FromHTTPStatus(%d) reason = %q, want %q", tt.status, got, want)
		}
		if got := failure.RetryAfterOf(err); got != tt.wantAfter {
			t.Errorf("FromHTTPStatus(%d, Retry-After %q) RetryAfter = %s, want %s", tt.status, tt.retryAfter, got, tt.wantAfter)
		}
	}
	err := failure.FromHTTPStatus(http.StatusServiceUnavailable, nil, now)
	if got := err.Error(); got != "http-503: unexpected status 503 Service Unavailable" {
		t.Errorf("Error() = %q", got)
	}
	if first, _, _ := strings.Cut(failure.StackOf(err), "\n"); !strings.HasSuffix(first, "TestFromHTTPStatusMapsStatusCodes") {
		t.Errorf("stack starts at %q, want the caller of FromHTTPStatus", first)
	}
}

// closedAddr returns an address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestFromTransportClassifiesRealClientErrors provokes each failure with a
// real http.Client against a real socket.
func TestFromTransportClassifiesRealClientErrors(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers before the client gives up
	}))
	defer slow.Close()
	hangUp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close() // closes without a response: the client sees EOF
		}
	}))
	defer hangUp.Close()

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name       string
		ctx        context.Context
		url        string
		timeout    time.Duration
		wantReason string
	}{
		{"client timeout", context.Background(), slow.URL, 50 * time.Millisecond, "timeout"},
		{"context deadline", ctxWithTimeout(t, 50*time.Millisecond), slow.URL, 0, "timeout"},
		{"refused", context.Background(), "http://" + closedAddr(t), 0, "connection-refused"},
		{"server hangs up", context.Background(), hangUp.URL, 0, "eof"},
		{"shutdown", canceled, slow.URL, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := &http.Client{Timeout: tt.timeout, Transport: &http.Transport{DisableKeepAlives: true}}
			req, err := http.NewRequestWithContext(tt.ctx, http.MethodGet, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
				t.Fatal("request succeeded, want a transport error")
			}
			got := failure.FromTransport(err)
			if tt.wantReason == "" {
				if got != err || !errors.Is(got, context.Canceled) {
					t.Fatalf("FromTransport(canceled) = %v, want the error unchanged", got)
				}
				return
			}
			if failure.ClassOf(got) != failure.Transient || failure.ReasonOf(got) != tt.wantReason {
				t.Errorf("FromTransport(%v) = %q/%q, want transient/%q", err, failure.ClassOf(got), failure.ReasonOf(got), tt.wantReason)
			}
			if !errors.Is(got, err) {
				t.Errorf("FromTransport lost the original error")
			}
		})
	}
}

func ctxWithTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestFromTransportNamesSyscallFailuresAndKeepsClassifiedErrors(t *testing.T) {
	classified := failure.NewPermanent("validation", nil)
	tests := []struct {
		err        error
		wantReason string
		wantSame   bool
	}{
		{opError("read", syscall.ECONNRESET), "connection-reset", false},
		{opError("write", syscall.EPIPE), "broken-pipe", false},
		{&url.Error{Op: "Get", URL: "http://x", Err: io.ErrUnexpectedEOF}, "unexpected-eof", false},
		{&url.Error{Op: "Get", URL: "http://nowhere.invalid", Err: &net.DNSError{Err: "no such host", Name: "nowhere.invalid", IsNotFound: true}}, "dns", false},
		{errors.New("tls: handshake failure"), "transport", false},
		{fmt.Errorf("wrapped: %w", classified), "validation", true},
	}
	for _, tt := range tests {
		got := failure.FromTransport(tt.err)
		if tt.wantSame && got != tt.err {
			t.Errorf("FromTransport(%v) = %v, want it unchanged", tt.err, got)
		}
		if r := failure.ReasonOf(got); r != tt.wantReason {
			t.Errorf("FromTransport(%v) reason = %q, want %q", tt.err, r, tt.wantReason)
		}
	}
	if failure.FromTransport(nil) != nil {
		t.Error("FromTransport(nil) != nil")
	}
}
