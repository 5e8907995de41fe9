package inventorymock

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/labstack/echo/v4"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/opsserver"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/admin"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/calls"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/store"
)

// maxIDLength bounds container and order ids; the legacy system's columns are
// not unbounded either.
const maxIDLength = 128

// HeaderInjectedFault names the fault an answer was injected by, so that a
// human reading a client's log can tell a mock fault from a bug.
const HeaderInjectedFault = "X-Injected-Fault"

// errorBody is the JSON body of every inventory error, injected or real.
type errorBody struct {
	Error       string `json:"error"`
	Message     string `json:"message"`
	ContainerID string `json:"containerID,omitempty"`
	OrderID     string `json:"orderID,omitempty"`
}

// apiError is a refusal of the request itself (bad input, conflict, unknown id).
type apiError struct {
	status int
	body   errorBody
}

func newAPIError(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, body: errorBody{Error: code, Message: fmt.Sprintf(format, args...)}}
}

// inventoryCall is what a parser extracts from a request.
type inventoryCall struct {
	containerID string
	orderID     string
	status      store.Status // list filter
}

type (
	parseFunc  func(c echo.Context) (inventoryCall, *apiError)
	handleFunc func(c echo.Context, in inventoryCall) int // writes the answer, returns its status
)

// inventoryRoute wraps an inventory handler with what every inventory call
// goes through: parse and validate the input (the order id is needed to
// decide faults), ask the fault engine, apply its decision or run the handler,
// then record the call in the log and the metrics.
func (s *Service) inventoryRoute(route string, parse parseFunc, handle handleFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		s.metrics.inFlight.Inc()
		defer s.metrics.inFlight.Dec()
		start := time.Now()
		req := c.Request()
		call := calls.Call{
			Time:           start.UTC(),
			Method:         req.Method,
			Route:          route,
			Path:           clip(req.URL.Path, 2*maxIDLength),
			IdempotencyKey: clip(req.Header.Get("Idempotency-Key"), maxIDLength),
			Fault:          string(faults.None),
		}
		in, apiErr := parse(c)
		call.ContainerID, call.OrderID = clip(in.containerID, maxIDLength), clip(in.orderID, maxIDLength)
		if apiErr != nil {
			apiErr.body.ContainerID, apiErr.body.OrderID = call.ContainerID, call.OrderID
			call.Status = writeJSON(c, apiErr.status, apiErr.body)
		} else {
			d := s.faults.Decide(faults.Request{Route: route, OrderID: in.orderID, ContainerID: in.containerID})
			call.Fault, call.Rule = string(d.Fault), d.Rule
			call.Status = s.apply(c, d, in, handle)
		}
		call.LatencyMs = float64(time.Since(start).Microseconds()) / 1000
		s.calls.Add(call)
		s.metrics.calls.WithLabelValues(route, call.Fault, calls.StatusLabel(call.Status)).Inc()
		if call.Fault != string(faults.None) {
			s.log.Debug("fault injected", "route", route, "fault", call.Fault, "rule", call.Rule,
				"orderID", call.OrderID, "containerID", call.ContainerID, "status", call.Status)
		}
		return nil
	}
}

// clip bounds what a client controls before it goes into the call log, which
// keeps CALL_LOG_SIZE entries in memory.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// apply carries out a fault decision and returns the status sent.
func (s *Service) apply(c echo.Context, d faults.Decision, in inventoryCall, handle handleFunc) int {
	if d.Hang {
		switch s.wait(c, s.cfg.FaultMaxHang) {
		case waitClientGone:
			return calls.StatusClientGone
		case waitStopping:
			return s.injectError(c, d, in, http.StatusServiceUnavailable, "the inventory is shutting down")
		default:
			return s.injectError(c, d, in, http.StatusGatewayTimeout,
				fmt.Sprintf("injected timeout: the call was held for %s and the client was still waiting", s.cfg.FaultMaxHang))
		}
	}
	if d.Latency > 0 && s.wait(c, min(d.Latency, s.cfg.FaultMaxHang)) == waitClientGone {
		return calls.StatusClientGone
	}
	switch {
	case d.Drop:
		return s.drop(c)
	case d.Fault != faults.None:
		return s.injectError(c, d, in, d.Status, "")
	default:
		return handle(c, in)
	}
}

type waitResult int

const (
	waitElapsed waitResult = iota
	waitClientGone
	waitStopping
)

// wait holds the call for d, or until the client gives up or shutdown begins.
// The server's write deadline, counted from the request's arrival, would lose
// the answer to a long hold, so it is moved past the hold. (The read deadline
// needs nothing: net/http clears it once the request is read, to watch for
// the client closing the connection.)
func (s *Service) wait(c echo.Context, d time.Duration) waitResult {
	// An error only means the writer cannot move deadlines (never with
	// net/http); the hold then ends at the server's write timeout, still bounded.
	_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(d + 10*time.Second))

	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return waitElapsed
	case <-c.Request().Context().Done():
		return waitClientGone
	case <-s.stopping:
		return waitStopping
	}
}

// drop closes the connection without an answer, with a TCP reset where
// possible: what a crashing legacy process looks like to its client.
func (s *Service) drop(c echo.Context) int {
	conn, _, err := c.Response().Hijack()
	if err != nil {
		s.log.Warn("cannot drop the connection, answering 503 instead", "err", err)
		return writeJSON(c, http.StatusServiceUnavailable, errorBody{Error: opsserver.ErrorCode(http.StatusServiceUnavailable), Message: "injected outage"})
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	if err := conn.Close(); err != nil {
		s.log.Debug("close dropped connection", "err", err)
	}
	return calls.StatusDropped
}

// injectError answers an injected failure: the rule's body if it has one,
// otherwise the standard error body.
func (s *Service) injectError(c echo.Context, d faults.Decision, in inventoryCall, status int, message string) int {
	h := c.Response().Header()
	h.Set(HeaderInjectedFault, string(d.Fault))
	if status >= 300 && status < 400 {
		// A redirect: no error body (a 304 may carry none), a Location
		// for the others.
		if status != http.StatusNotModified {
			h.Set("Location", faults.RedirectLocation)
		}
		_ = c.NoContent(status) // an error means the client has gone
		return status
	}
	if d.RetryAfter > 0 && (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(d.RetryAfter.Seconds()))))
	}
	if len(d.Body) > 0 {
		if err := c.JSONBlob(status, d.Body); err != nil {
			s.log.Debug("write injected answer", "err", err)
		}
		return status
	}
	if message == "" {
		message = "injected fault: " + string(d.Fault)
		if d.Rule != "" {
			message += " (" + d.Rule + ")"
		}
	}
	return writeJSON(c, status, errorBody{
		Error: opsserver.ErrorCode(status), Message: message, ContainerID: in.containerID, OrderID: in.orderID,
	})
}

// writeJSON answers v with status and returns the status.
func writeJSON(c echo.Context, status int, v any) int {
	// An error here means the client has gone; the status was chosen anyway.
	_ = c.JSON(status, v)
	return status
}

// --- parsers: validate input and extract the ids the fault engine needs ---

func (s *Service) parseContainer(c echo.Context) (inventoryCall, *apiError) {
	id := c.Param("containerID")
	if err := validateID("containerID", id); err != nil {
		return inventoryCall{}, err
	}
	return inventoryCall{containerID: id}, nil
}

func (s *Service) parseList(c echo.Context) (inventoryCall, *apiError) {
	status := store.Status(c.QueryParam("status"))
	switch status {
	case "", store.Allocated, store.Available:
		return inventoryCall{status: status}, nil
	}
	return inventoryCall{}, newAPIError(http.StatusBadRequest, "invalid_status",
		"status %q: want %s or %s", status, store.Allocated, store.Available)
}

// allocationRequest is the body of PUT /containers/{containerID}/allocation.
type allocationRequest struct {
	OrderID *string `json:"orderID"`
}

func (s *Service) parseAllocate(c echo.Context) (inventoryCall, *apiError) {
	in, apiErr := s.parseContainer(c)
	if apiErr != nil {
		return in, apiErr
	}
	req := c.Request()
	ct := req.Header.Get(echo.HeaderContentType)
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != echo.MIMEApplicationJSON {
		return in, newAPIError(http.StatusUnsupportedMediaType, opsserver.ErrorCode(http.StatusUnsupportedMediaType),
			"Content-Type %q: want application/json", ct)
	}
	var body allocationRequest
	dec := json.NewDecoder(req.Body)
	err := dec.Decode(&body)
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the JSON object")
	}
	if err == nil {
		// Read to the end so that an oversize body is noticed, not truncated.
		_, err = io.Copy(io.Discard, req.Body)
	}
	var he *echo.HTTPError
	switch {
	case errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge:
		return in, newAPIError(http.StatusRequestEntityTooLarge, opsserver.ErrorCode(http.StatusRequestEntityTooLarge),
			"request body larger than %s", s.cfg.BodyLimit)
	case errors.Is(err, io.EOF):
		return in, newAPIError(http.StatusBadRequest, "invalid_json", `empty body: want {"orderID": "..."}`)
	case err != nil:
		return in, newAPIError(http.StatusBadRequest, "invalid_json", "malformed JSON body: %v", err)
	case body.OrderID == nil || *body.OrderID == "":
		return in, newAPIError(http.StatusBadRequest, "missing_order_id", `orderID is required: want {"orderID": "..."}`)
	}
	in.orderID = *body.OrderID
	if err := validateID("orderID", in.orderID); err != nil {
		return in, err
	}
	if key := req.Header.Get("Idempotency-Key"); key != "" && key != in.orderID {
		return in, newAPIError(http.StatusBadRequest, "idempotency_key_mismatch",
			"Idempotency-Key %q differs from orderID %q: the key of an allocation is its order id", key, in.orderID)
	}
	return in, nil
}

func (s *Service) parseRelease(c echo.Context) (inventoryCall, *apiError) {
	in, apiErr := s.parseContainer(c)
	if apiErr != nil {
		return in, apiErr
	}
	in.orderID = c.QueryParam("orderID")
	if in.orderID == "" {
		return in, newAPIError(http.StatusBadRequest, "missing_order_id",
			"the orderID query parameter is required: only the order holding a container may release it")
	}
	return in, validateID("orderID", in.orderID)
}

// validateID accepts printable ids of a bounded length.
func validateID(name, id string) *apiError {
	if len(id) > maxIDLength {
		return newAPIError(http.StatusBadRequest, "invalid_"+snake(name), "%s is %d bytes long: at most %d", name, len(id), maxIDLength)
	}
	if strings.TrimSpace(id) == "" || strings.IndexFunc(id, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }) >= 0 {
		return newAPIError(http.StatusBadRequest, "invalid_"+snake(name), "%s %q: want printable characters without spaces", name, id)
	}
	return nil
}

// snake turns "orderID" into "order_id" for error codes.
func snake(name string) string {
	return strings.ToLower(strings.ReplaceAll(name, "ID", "_id"))
}

// --- handlers: the legacy inventory itself ---

func (s *Service) allocate(c echo.Context, in inventoryCall) int {
	got, _, err := s.store.Allocate(in.containerID, in.orderID)
	var conflict *store.ConflictError
	if errors.As(err, &conflict) {
		return writeJSON(c, http.StatusConflict, errorBody{
			Error: "already_allocated", Message: conflict.Error(), ContainerID: in.containerID, OrderID: in.orderID,
		})
	}
	// Allocate has no other error.
	return writeJSON(c, http.StatusOK, got)
}

func (s *Service) release(c echo.Context, in inventoryCall) int {
	got, err := s.store.Release(in.containerID, in.orderID)
	var conflict *store.ConflictError
	switch {
	case errors.As(err, &conflict):
		return writeJSON(c, http.StatusConflict, errorBody{
			Error: "already_allocated", Message: conflict.Error(), ContainerID: in.containerID, OrderID: in.orderID,
		})
	case errors.Is(err, store.ErrNotFound):
		return writeJSON(c, http.StatusNotFound, errorBody{
			Error: "container_not_found", Message: "no container " + in.containerID, ContainerID: in.containerID, OrderID: in.orderID,
		})
	}
	return writeJSON(c, http.StatusOK, got)
}

func (s *Service) getContainer(c echo.Context, in inventoryCall) int {
	got, ok := s.store.Get(in.containerID)
	if !ok {
		return writeJSON(c, http.StatusNotFound, errorBody{
			Error: "container_not_found", Message: "no container " + in.containerID, ContainerID: in.containerID,
		})
	}
	return writeJSON(c, http.StatusOK, got)
}

func (s *Service) listContainers(c echo.Context, in inventoryCall) int {
	return writeJSON(c, http.StatusOK, admin.ContainerList{Containers: s.store.List(in.status)})
}
