package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/calls"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/store"
)

// Stats is the body of GET /admin/stats.
type Stats struct {
	Calls     calls.Stats `json:"calls"`
	Inventory store.Stats `json:"inventory"`
}

// CallList is the body of GET /admin/calls.
type CallList struct {
	Calls []calls.Call `json:"calls"`
}

// ContainerList is the body of GET /admin/containers (and of the inventory's
// GET /containers).
type ContainerList struct {
	Containers []store.Container `json:"containers"`
}

// Error is a non-2xx answer of the admin API.
type Error struct {
	Status  int
	Code    string // the body's "error" field
	Message string // the body's "message" field
}

func (e *Error) Error() string {
	return fmt.Sprintf("admin API answered %d %s: %s", e.Status, e.Code, e.Message)
}

// Client calls the admin API of one mock inventory. Its fields may be set
// directly; the zero HTTP uses a client with a 10 s timeout.
type Client struct {
	BaseURL string // for example "http://127.0.0.1:8081"
	Token   string // ADMIN_TOKEN, sent as a bearer token when not empty
	HTTP    *http.Client
}

// New returns a client for the mock at baseURL.
func New(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token, HTTP: &http.Client{Timeout: 10 * time.Second}}
}

// Faults returns the fault profile in force.
func (c *Client) Faults(ctx context.Context) (faults.Profile, error) {
	var p faults.Profile
	return p, c.do(ctx, http.MethodGet, "/admin/faults", nil, "", &p)
}

// SetFaults replaces the fault profile and returns it as applied (defaults and
// seed filled in).
func (c *Client) SetFaults(ctx context.Context, p faults.Profile) (faults.Profile, error) {
	var out faults.Profile
	return out, c.do(ctx, http.MethodPut, "/admin/faults", p, "application/json", &out)
}

// PatchFaults merges patch (anything that encodes to a JSON object, such as
// map[string]any{"errorRate": 0.5} or a json.RawMessage) into the profile, as
// a JSON merge patch: null removes a field.
func (c *Client) PatchFaults(ctx context.Context, patch any) (faults.Profile, error) {
	var out faults.Profile
	return out, c.do(ctx, http.MethodPatch, "/admin/faults", patch, "application/merge-patch+json", &out)
}

// Heal removes every fault (the seed stays).
func (c *Client) Heal(ctx context.Context) (faults.Profile, error) {
	var out faults.Profile
	return out, c.do(ctx, http.MethodDelete, "/admin/faults", nil, "", &out)
}

// Outage starts an outage now: For (zero: until healed), Mode and Status as in
// faults.Outage; Until is not used.
func (c *Client) Outage(ctx context.Context, o faults.Outage) (faults.Profile, error) {
	q := url.Values{}
	if o.For > 0 {
		q.Set("for", o.For.Std().String())
	}
	if o.Mode != "" {
		q.Set("mode", o.Mode)
	}
	if o.Status != 0 {
		q.Set("status", strconv.Itoa(o.Status))
	}
	var out faults.Profile
	return out, c.do(ctx, http.MethodPost, "/admin/outage?"+q.Encode(), nil, "", &out)
}

// Calls returns the logged calls matching q, oldest first.
func (c *Client) Calls(ctx context.Context, q calls.Query) ([]calls.Call, error) {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	if q.After > 0 {
		set("after", strconv.FormatUint(q.After, 10))
	}
	if q.Limit > 0 {
		set("limit", strconv.Itoa(q.Limit))
	}
	set("route", q.Route)
	set("orderID", q.OrderID)
	set("containerID", q.ContainerID)
	set("fault", q.Fault)
	var out CallList
	return out.Calls, c.do(ctx, http.MethodGet, "/admin/calls?"+v.Encode(), nil, "", &out)
}

// Stats returns the counters since start or the last reset.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var out Stats
	return out, c.do(ctx, http.MethodGet, "/admin/stats", nil, "", &out)
}

// Containers lists the inventory's containers, whatever the fault profile
// (status "" for all, or "allocated", "available").
func (c *Client) Containers(ctx context.Context, status store.Status) ([]store.Container, error) {
	path := "/admin/containers"
	if status != "" {
		path += "?status=" + url.QueryEscape(string(status))
	}
	var out ContainerList
	return out.Containers, c.do(ctx, http.MethodGet, path, nil, "", &out)
}

// Reset clears the containers, the call log, the counters and the per-order
// failFirst counts, and restarts the random sequence from the profile's seed.
// The profile itself stays.
func (c *Client) Reset(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/admin/reset", nil, "", nil)
}

func (c *Client) do(ctx context.Context, method, path string, in any, contentType string, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("admin %s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return fmt.Errorf("admin %s %s: %w", method, path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("admin %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{Status: resp.StatusCode}
		var eb struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &eb) == nil {
			e.Code, e.Message = eb.Error, eb.Message
		} else {
			e.Message = strings.TrimSpace(string(data))
		}
		return fmt.Errorf("admin %s %s: %w", method, path, e)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("admin %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// IsStatus reports whether err is an admin API answer with the given status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}
