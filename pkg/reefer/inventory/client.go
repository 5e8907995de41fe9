package inventory

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/trace"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/telemetry"
)

// Defaults, right for the demo and a sane start in production.
const (
	DefaultTimeout             = 2 * time.Second
	DefaultMaxFailures         = 10
	DefaultFailureRatio        = 0.5
	DefaultMinRequests         = 20
	DefaultWindow              = 10 * time.Second
	DefaultOpenTimeout         = 5 * time.Second
	DefaultHalfOpenMaxRequests = 1
	DefaultSlowCallFloor       = 500 * time.Millisecond

	// maxErrorBody bounds how much of an error response is read: enough
	// for {"error","message"}, not enough for a misbehaving server to
	// make us buffer megabytes.
	maxErrorBody = 16 << 10
	// maxDrain bounds how much of an unread body is discarded so the
	// connection can go back to the pool; a longer body costs a new
	// connection instead.
	maxDrain = 64 << 10
)

// Circuit breaker states as reported by BreakerState and OnStateChange.
const (
	StateClosed   = "closed"
	StateHalfOpen = "half-open"
	StateOpen     = "open"
)

// BreakerConfig tunes the circuit breaker. Zero fields take the defaults.
type BreakerConfig struct {
	// MaxFailures is the number of consecutive transient failures that
	// opens the circuit. Default 10: a flaky inventory (say 30% of calls
	// fail) almost never fails ten times in a row, an inventory that is
	// down does within milliseconds.
	MaxFailures uint32
	// FailureRatio also opens the circuit when at least MinRequests calls
	// were made in the current Window and this share of them failed
	// transiently. Default 0.5; a negative value turns the ratio rule off.
	FailureRatio float64
	// MinRequests is how many calls the window needs before FailureRatio
	// is judged, so three unlucky calls at start-up do not open it.
	// Default 20.
	MinRequests uint32
	// Window is how often the closed circuit forgets its counts, so the
	// ratio describes recent health, not the whole uptime. Default 10s.
	Window time.Duration
	// OpenTimeout is how long the circuit stays open (failing fast)
	// before it lets probe requests through. Default 5s.
	OpenTimeout time.Duration
	// HalfOpenMaxRequests is how many probe requests may run while half
	// open; that many successes in a row close the circuit. Default 1.
	HalfOpenMaxRequests uint32
}

// Config configures a Client.
type Config struct {
	// BaseURL of the inventory, e.g. http://localhost:8081 (INVENTORY_URL).
	BaseURL string
	// Timeout bounds each request, connection set-up included
	// (INVENTORY_TIMEOUT). Default 2s.
	Timeout time.Duration
	// HTTPClient sends the requests. Default: a client with keep-alive
	// and a pool sized for many concurrent requests to one host.
	HTTPClient *http.Client
	// Breaker tunes the circuit breaker.
	Breaker BreakerConfig
	// OnStateChange, when set, is called on every breaker transition with
	// the state names above (for a metric). It runs while the breaker
	// holds its lock: keep it quick and do not call the Client from it.
	OnStateChange func(from, to string)
	// Tracing, when set, wraps every call in a client span and sends its
	// traceparent to the inventory (telemetry.Transport). nil: no spans.
	Tracing trace.TracerProvider
	// SlowCallFloor is the least a call may run before it counts as slow
	// (see slowcalls.go): when Breaker.MaxFailures calls are in flight at
	// once past the slow-call threshold, every call in flight fails at
	// once (transient, "inventory-slow") and the breaker opens, instead
	// of every lane waiting out Timeout. The threshold is learnt from the
	// calls (mean + 4 deviations, at least twice the mean), between this
	// floor and Timeout.
	// Default 500ms; a negative value turns the slow-call trip off.
	SlowCallFloor time.Duration
}

// Client calls the legacy container inventory. It is safe for concurrent use.
type Client struct {
	base        string
	timeout     time.Duration
	http        *http.Client
	breaker     *gobreaker.CircuitBreaker[struct{}]
	openTimeout time.Duration
	openedAt    atomic.Int64 // unix nanoseconds of the last transition to open
	slow        *slowCalls   // nil: no slow-call trip
}

// New validates cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	base, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("inventory: timeout %s is negative: want a positive duration such as 2s", cfg.Timeout)
	}
	if cfg.Breaker.OpenTimeout < 0 {
		return nil, fmt.Errorf("inventory: breaker open timeout %s is negative: want a positive duration such as 5s", cfg.Breaker.OpenTimeout)
	}
	c := &Client{
		base:        base,
		timeout:     orDefault(cfg.Timeout, DefaultTimeout),
		http:        cfg.HTTPClient,
		openTimeout: orDefault(cfg.Breaker.OpenTimeout, DefaultOpenTimeout),
	}
	if c.http == nil {
		c.http = newHTTPClient()
	} else {
		// A copy, so the caller's client keeps its own redirect policy.
		hc := *c.http
		c.http = &hc
	}
	// Never follow a redirect: following turns the PUT into a GET of
	// whatever page the Location names, whose 200 would count as an
	// allocation the inventory never recorded. The 3xx itself is returned
	// and classified (config).
	c.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if cfg.Tracing != nil {
		c.http.Transport = telemetry.Transport(cfg.Tracing, c.http.Transport)
	}
	maxFailures := orDefault(cfg.Breaker.MaxFailures, DefaultMaxFailures)
	if floor := orDefault(cfg.SlowCallFloor, DefaultSlowCallFloor); floor > 0 {
		c.slow = newSlowCalls(floor, c.timeout, int(maxFailures))
	}
	ratio := orDefault(cfg.Breaker.FailureRatio, DefaultFailureRatio)
	minRequests := orDefault(cfg.Breaker.MinRequests, DefaultMinRequests)
	c.breaker = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "inventory",
		MaxRequests: orDefault(cfg.Breaker.HalfOpenMaxRequests, DefaultHalfOpenMaxRequests),
		Interval:    orDefault(cfg.Breaker.Window, DefaultWindow),
		Timeout:     c.openTimeout,
		// Two rules: a run of failures (the inventory is down) or a high
		// share of failures among enough recent calls (it is drowning).
		// A merely flaky inventory trips neither, so its callers keep
		// getting real answers and the retry topic does the rest.
		ReadyToTrip: func(counts gobreaker.Counts) bool {
			if counts.ConsecutiveFailures >= maxFailures {
				return true
			}
			return ratio > 0 && counts.Requests >= minRequests &&
				float64(counts.TotalFailures) >= ratio*float64(counts.Requests)
		},
		// A permanent answer (409, 422, ...) proves the inventory is up and
		// working: it counts as a success, so a burst of bad orders never
		// opens the circuit for the good ones. A config answer (401, 403,
		// a redirect) is a failure: every call will get it until an
		// operator acts, so failing fast is right.
		IsSuccessful: func(err error) bool {
			return err == nil || failure.IsPermanent(err)
		},
		// Our own shutdown says nothing about the inventory's health.
		IsExcluded: func(err error) bool {
			return errors.Is(err, context.Canceled)
		},
		OnStateChange: func(_ string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				c.openedAt.Store(time.Now().UnixNano())
			}
			if cfg.OnStateChange != nil {
				cfg.OnStateChange(stateName(from), stateName(to))
			}
		},
	})
	return c, nil
}

func parseBaseURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("inventory: base URL %q is not valid: want http(s)://host[:port][/path], e.g. http://localhost:8081", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("inventory: base URL %q must not carry a query or fragment", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// newHTTPClient returns a client for many concurrent requests to one host.
// net/http keeps only 2 idle connections per host by default; with more
// requests in flight than that, every extra request would open a new
// connection and close it afterwards, leaving thousands of sockets in
// TIME_WAIT under load.
func newHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 128
	t.IdleConnTimeout = 90 * time.Second
	t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	// The per-request timeout is a context deadline set in Allocate, so
	// the client itself has none.
	return &http.Client{Transport: t}
}

// allocationRoute is the URL template of the allocation calls, for the
// name of their spans.
const allocationRoute = "/containers/{containerID}/allocation"

// allocationRequest is the body of PUT /containers/{id}/allocation.
type allocationRequest struct {
	OrderID string `json:"orderID"`
}

// apiError is the inventory's error body.
type apiError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// Allocate records in the inventory that containerID carries orderID:
// PUT {base}/containers/{containerID}/allocation with the order id as
// Idempotency-Key, so a retry of a request that succeeded is answered 200
// again instead of 409.
//
// Only a 2xx answer is success. Errors are classified with package
// failure: 5xx, 408, 429, timeouts and connection failures are transient
// (a Retry-After header is kept in the error); 401, 403 and any 3xx
// (redirects are not followed) are config; other 4xx are permanent (409:
// the container belongs to another order). While the circuit is open, Allocate fails at once with a
// transient "circuit-open" error whose RetryAfter is the time left until
// the breaker lets a probe through. If ctx is canceled, the error wraps
// context.Canceled.
func (c *Client) Allocate(ctx context.Context, containerID, orderID string) error {
	return c.guarded("allocate", containerID, orderID, func() error { return c.allocate(ctx, containerID, orderID) })
}

// guarded runs one call about (containerID, orderID) through the circuit
// breaker; op names it in errors.
func (c *Client) guarded(op, containerID, orderID string, call func() error) error {
	if containerID == "" || orderID == "" {
		return failure.NewPermanent("invalid-request",
			fmt.Errorf("inventory %s: container id %q and order id %q must both be set", op, containerID, orderID))
	}
	_, err := c.breaker.Execute(func() (struct{}, error) { return struct{}{}, call() })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		fe := failure.NewTransient(ReasonCircuitOpen, fmt.Errorf("inventory %s %s for order %s: %w", op, containerID, orderID, err))
		fe.RetryAfter = c.remainingOpen()
		return fe
	}
	return err
}

func (c *Client) allocate(ctx context.Context, containerID, orderID string) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	endpoint := c.base + "/containers/" + url.PathEscape(containerID) + "/allocation"
	body, err := json.Marshal(allocationRequest{OrderID: orderID})
	if err != nil {
		return failure.NewPermanent("encode", fmt.Errorf("inventory allocate: encode request: %w", err))
	}
	req, err := http.NewRequestWithContext(telemetry.WithRoute(ctx, allocationRoute), http.MethodPut, endpoint, bytes.NewReader(body))
	if err != nil {
		return failure.NewPermanent("invalid-request", fmt.Errorf("inventory allocate: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Idempotency-Key", orderID)

	if err := c.doWatched(req); err != nil {
		return fmt.Errorf("inventory PUT %s (order %s): %w", req.URL.Path, orderID, err)
	}
	return nil
}

// Release makes the inventory forget that containerID carries orderID:
// DELETE {base}/containers/{containerID}/allocation?orderID={orderID}.
// The inventory releases a container only for the order that holds it,
// so a release can never take a container from another order. It is the
// compensation of Allocate: a reefer the database gives back to the pool
// must first be free in the inventory too, or the next order it goes to
// is refused with 409.
//
// A release is done when the inventory no longer holds the container for
// the order: a 2xx, a 404 (no such container) and a 409 (another order
// holds it) all mean so and return nil. Other errors are classified as
// Allocate's, and go through the same circuit breaker.
func (c *Client) Release(ctx context.Context, containerID, orderID string) error {
	return c.guarded("release", containerID, orderID, func() error { return c.release(ctx, containerID, orderID) })
}

func (c *Client) release(ctx context.Context, containerID, orderID string) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	endpoint := c.base + "/containers/" + url.PathEscape(containerID) + "/allocation?orderID=" + url.QueryEscape(orderID)
	req, err := http.NewRequestWithContext(telemetry.WithRoute(ctx, allocationRoute), http.MethodDelete, endpoint, nil)
	if err != nil {
		return failure.NewPermanent("invalid-request", fmt.Errorf("inventory release: %w", err))
	}
	req.Header.Set("Accept", "application/json")
	err = c.doWatched(req)
	if reason := failure.ReasonOf(err); reason == "http-404" || reason == "http-409" {
		return nil // the inventory does not hold it for the order
	}
	if err != nil {
		return fmt.Errorf("inventory DELETE %s (order %s): %w", req.URL.Path, orderID, err)
	}
	return nil
}

// Ping checks that the inventory answers GET {base}/healthz with 2xx. It
// bypasses the circuit breaker: a health probe must neither be refused by
// an open circuit nor move it.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("inventory ping: %w", err)
	}
	if err := c.do(req); err != nil {
		return fmt.Errorf("inventory GET %s: %w", req.URL.Path, err)
	}
	return nil
}

// doWatched is do for the calls that go through the breaker: it watches
// them for the slow-call trip (slowcalls.go).
func (c *Client) doWatched(req *http.Request) error {
	if c.slow == nil {
		return c.do(req)
	}
	ctx, done := c.slow.start(req.Context())
	start := time.Now()
	err := c.do(req.WithContext(ctx))
	done(err == nil || strings.HasPrefix(failure.ReasonOf(err), "http-"), time.Since(start))
	if err != nil && tripped(ctx) {
		return failure.NewTransient(ReasonSlow, fmt.Errorf("the inventory stopped answering: %d calls in flight at once past %s: %w",
			c.slow.trip, c.slow.threshold(), errSlowTrip))
	}
	return err
}

// do sends req and turns any failure into a classified error.
func (c *Client) do(req *http.Request) error {
	resp, err := c.http.Do(req)
	if err != nil {
		// http.Client wraps the context's error; keep cancellation
		// recognisable and classify the rest (timeouts, refused, reset).
		return failure.FromTransport(err)
	}
	defer func() {
		// Drain so that keep-alive can reuse the connection.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		_ = resp.Body.Close()
	}()

	classified := failure.FromHTTPStatus(resp.StatusCode, resp.Header, time.Now())
	if classified == nil {
		return nil
	}
	if msg := readErrorMessage(resp.Body); msg != "" {
		return fmt.Errorf("%s: %w", msg, classified)
	}
	return classified
}

// readErrorMessage extracts what the inventory says about a failure, for
// the operator who reads the dead-letter record.
func readErrorMessage(body io.Reader) string {
	raw, err := io.ReadAll(io.LimitReader(body, maxErrorBody))
	if err != nil || len(raw) == 0 {
		return ""
	}
	var e apiError
	if json.Unmarshal(raw, &e) == nil && (e.Error != "" || e.Message != "") {
		switch {
		case e.Error == "":
			return e.Message
		case e.Message == "":
			return e.Error
		}
		return e.Error + ": " + e.Message
	}
	// Not the documented shape (a proxy's HTML page, say): keep a short,
	// single-line excerpt.
	text := strings.Join(strings.Fields(string(raw)), " ")
	if len(text) > 200 {
		text = text[:200] + "..."
	}
	return text
}

// BreakerState returns "closed", "half-open" or "open".
func (c *Client) BreakerState() string {
	return stateName(c.breaker.State())
}

// remainingOpen is how long the circuit stays open from now, or 0 when
// it is about to let probes through (or is half open with its probes
// already running).
func (c *Client) remainingOpen() time.Duration {
	opened := c.openedAt.Load()
	if opened == 0 {
		return 0
	}
	left := c.openTimeout - time.Since(time.Unix(0, opened))
	return max(left, 0)
}

func stateName(s gobreaker.State) string {
	switch s {
	case gobreaker.StateOpen:
		return StateOpen
	case gobreaker.StateHalfOpen:
		return StateHalfOpen
	}
	return StateClosed
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// ReasonSlow is the failure reason of the calls cancelled by the
// slow-call trip: many calls at once ran past the slow-call threshold.
const ReasonSlow = "inventory-slow"

// ReasonCircuitOpen is the failure reason of a call the open circuit
// refused without calling the inventory: a fast failure.
const ReasonCircuitOpen = "circuit-open"

// FastFailure reports whether err is a call the open (or half-open and
// busy) circuit refused without calling the inventory.
func FastFailure(err error) bool {
	var fe *failure.Error
	return errors.As(err, &fe) && fe.Reason == ReasonCircuitOpen
}
