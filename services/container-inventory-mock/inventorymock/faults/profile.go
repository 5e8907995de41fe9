package faults

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Route names a part of the inventory API that faults can be scoped to.
const (
	RouteAllocate       = "allocate"       // PUT /containers/{containerID}/allocation
	RouteRelease        = "release"        // DELETE /containers/{containerID}/allocation
	RouteGetContainer   = "getContainer"   // GET /containers/{containerID}
	RouteListContainers = "listContainers" // GET /containers
)

// Routes lists every route name a profile may scope faults to.
var Routes = []string{RouteAllocate, RouteRelease, RouteGetContainer, RouteListContainers}

// Outage modes.
const (
	OutageStatus = "status" // answer every call with Outage.Status
	OutageDrop   = "drop"   // close the connection without answering
)

// DefaultStatus is the status of injected failures that name none.
const DefaultStatus = 503

// RedirectLocation is the Location of an injected 3xx answer (304 has
// none): a page of the mock that answers 200 to a GET, which is what a
// legacy system behind a misconfigured proxy or a login page sends. A
// client that follows the redirect sees a 200 for an allocation the
// inventory never recorded; a correct client treats any 3xx as a failure.
const RedirectLocation = "/healthz"

// Profile describes how the inventory misbehaves. The zero value is healthy.
type Profile struct {
	// Seed makes the random decisions reproducible. When absent the engine picks
	// one and reports it, so a run can be replayed.
	Seed *int64 `json:"seed,omitempty"`
	// Routes limits faults to these routes (see Routes); empty means all.
	Routes []string `json:"routes,omitempty"`

	// ErrorRate is the share of calls (0..1) answered with ErrorStatus.
	ErrorRate   float64 `json:"errorRate,omitempty"`
	ErrorStatus int     `json:"errorStatus,omitempty"`
	// RetryAfter is sent as the Retry-After header (whole seconds, rounded up)
	// on every injected 429 or 503.
	RetryAfter Duration `json:"retryAfter,omitempty"`

	// Latency ± LatencyJitter (uniform) is added to every call in scope.
	Latency       Duration `json:"latency,omitempty"`
	LatencyJitter Duration `json:"latencyJitter,omitempty"`
	// TimeoutRate is the share of calls (0..1) held until the client gives up
	// (bounded by the service's FAULT_MAX_HANG). ErrorRate+TimeoutRate <= 1.
	TimeoutRate float64 `json:"timeoutRate,omitempty"`

	Outage    *Outage    `json:"outage,omitempty"`
	FailFirst *FailFirst `json:"failFirst,omitempty"`
	Rules     []Rule     `json:"rules,omitempty"`
}

// Outage makes every call in scope fail until Until (or, set with For, for a
// duration from the moment the profile is applied). Neither means until healed.
type Outage struct {
	Until *time.Time `json:"until,omitempty"`
	For   Duration   `json:"for,omitempty"`
	// Mode is OutageStatus (default) or OutageDrop.
	Mode string `json:"mode,omitempty"`
	// Status is the answer in OutageStatus mode, default 503.
	Status int `json:"status,omitempty"`
}

// FailFirst fails the first Count calls of each order id with Status (default 503).
type FailFirst struct {
	Count  int `json:"count"`
	Status int `json:"status,omitempty"`
}

// Rule gives a fixed outcome to the calls whose ids match. At least one
// pattern is required; when both are given both must match. A call without an
// order id (a GET) never matches an OrderID pattern.
type Rule struct {
	// Name identifies the rule in the call log; default "rules[<index>]".
	Name        string `json:"name,omitempty"`
	OrderID     string `json:"orderID,omitempty"`     // regular expression (Go RE2 syntax)
	ContainerID string `json:"containerID,omitempty"` // regular expression (Go RE2 syntax)
	// Status is the fixed answer (300..599; a 3xx is a redirect, see
	// RedirectLocation). Without a status the matching
	// calls are exempt from failFirst and the random faults (an outage still
	// applies) and reach the real handler.
	Status int `json:"status,omitempty"`
	// Body replaces the default JSON error body.
	Body json.RawMessage `json:"body,omitempty"`
	// Latency replaces the profile's latency for matching calls.
	Latency    *Duration `json:"latency,omitempty"`
	RetryAfter Duration  `json:"retryAfter,omitempty"`
}

// Duration is a time.Duration written in JSON as a Go duration string ("250ms").
type Duration time.Duration

// MarshalJSON writes the duration as a string such as "1.5s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a Go duration string such as "250ms" or "2s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration %s: want a string such as \"250ms\" or \"2s\"", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: want a string such as \"250ms\" or \"2s\"", s)
	}
	*d = Duration(v)
	return nil
}

// Std returns the duration as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Decode reads one profile from JSON, strictly: an unknown field (a typo such
// as "errorrate") is an error, not a silently healthy profile. The result is
// validated and has its defaults filled in.
func Decode(data []byte) (Profile, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Profile
	if err := dec.Decode(&p); err != nil {
		return Profile{}, fmt.Errorf("decode fault profile: %w", err)
	}
	if dec.More() {
		return Profile{}, errors.New("decode fault profile: unexpected data after the JSON object")
	}
	// encoding/json matches field names case-insensitively; a profile is
	// strict, so that "errorrate" is reported instead of half-applied.
	var raw any
	if err := json.Unmarshal(data, &raw); err != nil {
		return Profile{}, fmt.Errorf("decode fault profile: %w", err)
	}
	if err := checkFieldNames(raw, reflect.TypeFor[Profile](), ""); err != nil {
		return Profile{}, fmt.Errorf("decode fault profile: %w", err)
	}
	if err := p.normalize(); err != nil {
		return Profile{}, err
	}
	return p, nil
}

// checkFieldNames reports the first key of v that is not exactly a JSON field
// name of t, descending into nested objects and arrays of objects.
func checkFieldNames(v any, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			return nil
		}
		for i, el := range arr {
			if err := checkFieldNames(el, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok || t == reflect.TypeFor[time.Time]() {
			return nil
		}
		fields := map[string]reflect.Type{}
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			fields[name] = f.Type
		}
		for key, val := range obj {
			ft, ok := fields[key]
			if !ok {
				msg := fmt.Sprintf("unknown field %q", strings.TrimPrefix(path+"."+key, "."))
				for name := range fields {
					if strings.EqualFold(name, key) {
						msg += fmt.Sprintf(" (names are case-sensitive: did you mean %q?)", name)
					}
				}
				return errors.New(msg)
			}
			if err := checkFieldNames(val, ft, path+"."+key); err != nil {
				return err
			}
		}
	}
	return nil
}

// Validate reports every problem of the profile, each naming its field.
func (p Profile) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	rate := func(name string, v float64) {
		if v < 0 || v > 1 {
			bad("%s %v: want a number from 0 to 1", name, v)
		}
	}
	status := func(name string, v int, optional bool) {
		if (v == 0 && optional) || (v >= 300 && v <= 599) {
			return
		}
		bad("%s %d: want an HTTP status from 300 to 599 (3xx answers a redirect, 4xx and 5xx an error)", name, v)
	}
	nonNegative := func(name string, d Duration) {
		if d < 0 {
			bad("%s %s: want a duration of zero or more", name, d.Std())
		}
	}

	for _, r := range p.Routes {
		if !slices.Contains(Routes, r) {
			bad("routes: unknown route %q: want one of %s", r, strings.Join(Routes, ", "))
		}
	}
	rate("errorRate", p.ErrorRate)
	rate("timeoutRate", p.TimeoutRate)
	if p.ErrorRate+p.TimeoutRate > 1 {
		bad("errorRate %v + timeoutRate %v: the two shares must add up to 1 or less", p.ErrorRate, p.TimeoutRate)
	}
	status("errorStatus", p.ErrorStatus, true)
	nonNegative("retryAfter", p.RetryAfter)
	nonNegative("latency", p.Latency)
	nonNegative("latencyJitter", p.LatencyJitter)
	if o := p.Outage; o != nil {
		if o.Until != nil && o.For != 0 {
			bad("outage: give either until or for, not both")
		}
		nonNegative("outage.for", o.For)
		if o.Mode != "" && o.Mode != OutageStatus && o.Mode != OutageDrop {
			bad("outage.mode %q: want %q or %q", o.Mode, OutageStatus, OutageDrop)
		}
		status("outage.status", o.Status, true)
	}
	if f := p.FailFirst; f != nil {
		if f.Count < 0 {
			bad("failFirst.count %d: want zero or more", f.Count)
		}
		status("failFirst.status", f.Status, true)
	}
	for i, r := range p.Rules {
		name := fmt.Sprintf("rules[%d]", i)
		if r.OrderID == "" && r.ContainerID == "" {
			bad("%s: give an orderID or containerID pattern", name)
		}
		if _, err := regexp.Compile(r.OrderID); err != nil {
			bad("%s.orderID %q: %v", name, r.OrderID, err)
		}
		if _, err := regexp.Compile(r.ContainerID); err != nil {
			bad("%s.containerID %q: %v", name, r.ContainerID, err)
		}
		status(name+".status", r.Status, true)
		if len(r.Body) > 0 && r.Status == 0 {
			bad("%s.body: a body needs a status", name)
		}
		if r.Latency != nil {
			nonNegative(name+".latency", *r.Latency)
		}
		nonNegative(name+".retryAfter", r.RetryAfter)
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid fault profile: %w", errors.Join(errs...))
	}
	return nil
}

// normalize validates p and fills the defaults in, so that what the admin API
// shows is what applies.
func (p *Profile) normalize() error {
	if err := p.Validate(); err != nil {
		return err
	}
	if p.ErrorRate > 0 && p.ErrorStatus == 0 {
		p.ErrorStatus = DefaultStatus
	}
	if o := p.Outage; o != nil {
		if o.Mode == "" {
			o.Mode = OutageStatus
		}
		if o.Mode == OutageStatus && o.Status == 0 {
			o.Status = DefaultStatus
		}
	}
	if f := p.FailFirst; f != nil && f.Status == 0 {
		f.Status = DefaultStatus
	}
	for i := range p.Rules {
		if p.Rules[i].Name == "" {
			p.Rules[i].Name = fmt.Sprintf("rules[%d]", i)
		}
	}
	return nil
}

// clone returns a deep copy, so that callers never share the engine's state.
func (p Profile) clone() Profile {
	c := p
	if p.Seed != nil {
		s := *p.Seed
		c.Seed = &s
	}
	c.Routes = slices.Clone(p.Routes)
	if p.Outage != nil {
		o := *p.Outage
		if o.Until != nil {
			u := *o.Until
			o.Until = &u
		}
		c.Outage = &o
	}
	if p.FailFirst != nil {
		f := *p.FailFirst
		c.FailFirst = &f
	}
	if p.Rules != nil {
		c.Rules = make([]Rule, len(p.Rules))
		for i, r := range p.Rules {
			r.Body = bytes.Clone(r.Body)
			if r.Latency != nil {
				l := *r.Latency
				r.Latency = &l
			}
			c.Rules[i] = r
		}
	}
	return c
}
