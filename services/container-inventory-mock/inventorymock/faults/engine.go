package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"sync"
	"time"
)

// Kind names the fault a decision injects; it appears in the call log, the
// stats and the metrics.
type Kind string

// The kinds of decision, in the order the engine considers them.
const (
	None          Kind = "none" // the request reaches the real handler
	KindOutage    Kind = "outage"
	KindRule      Kind = "rule"
	KindFailFirst Kind = "failFirst"
	KindTimeout   Kind = "timeout"
	KindError     Kind = "errorRate"
)

// Request is what the engine knows about a call.
type Request struct {
	Route       string // one of Routes
	OrderID     string // empty when the call carries none
	ContainerID string // empty when the call carries none
}

// Decision is what happens to one call. The caller first waits Latency, then:
// Hang: hold the call until the client gives up; Drop: close the connection;
// Fault != None: answer Status (with Body if set, and Retry-After if
// RetryAfter > 0 and Status is 429 or 503); otherwise run the real handler.
type Decision struct {
	Fault      Kind
	Rule       string // the matching rule's name, also for exempting rules
	Status     int
	Body       json.RawMessage
	Drop       bool
	Hang       bool
	Latency    time.Duration
	RetryAfter time.Duration
}

// Engine holds the current profile and decides calls. It is safe for
// concurrent use.
type Engine struct {
	now func() time.Time

	mu        sync.Mutex
	profile   Profile
	rules     []compiledRule
	rng       *rand.Rand
	failFirst map[string]int // calls seen per order id
}

type compiledRule struct {
	orderID, containerID *regexp.Regexp // nil when the rule has no such pattern
}

// New returns an engine applying p. now is the clock (time.Now in production);
// it decides when an outage ends.
func New(p Profile, now func() time.Time) (*Engine, error) {
	e := &Engine{now: now}
	if err := e.Set(p); err != nil {
		return nil, err
	}
	return e, nil
}

// Set replaces the profile. Per-order failFirst counts start over and the
// generator is re-seeded (with a fresh seed when p has none).
func (e *Engine) Set(p Profile) error {
	p = p.clone()
	if err := p.normalize(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.apply(p, true)
	return nil
}

// Patch merges a JSON merge patch (RFC 7386) into the current profile: fields
// in the patch replace the current ones, null removes one, arrays (rules,
// routes) are replaced whole. failFirst counts and the random sequence carry
// on, unless the patch changes the seed.
func (e *Engine) Patch(patch []byte) (Profile, error) {
	var pv any
	if err := decodeNumbers(patch, &pv); err != nil {
		return Profile{}, fmt.Errorf("decode merge patch: %w", err)
	}
	pm, ok := pv.(map[string]any)
	if !ok {
		return Profile{}, fmt.Errorf("decode merge patch: want a JSON object, got %s", bytes.TrimSpace(patch))
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	e.expireOutage()
	cur, err := json.Marshal(e.profile)
	if err != nil {
		return Profile{}, fmt.Errorf("encode current profile: %w", err)
	}
	var cm map[string]any
	if err := decodeNumbers(cur, &cm); err != nil {
		return Profile{}, fmt.Errorf("decode current profile: %w", err)
	}
	// An outage's end is given by until or for; a patch naming one replaces
	// the other rather than conflicting with it.
	if po, ok := pm["outage"].(map[string]any); ok {
		if co, ok := cm["outage"].(map[string]any); ok {
			if _, ok := po["for"]; ok {
				delete(co, "until")
			}
			if _, ok := po["until"]; ok {
				delete(co, "for")
			}
		}
	}
	merged, err := json.Marshal(mergePatch(cm, pm))
	if err != nil {
		return Profile{}, fmt.Errorf("encode merged profile: %w", err)
	}
	p, err := Decode(merged)
	if err != nil {
		return Profile{}, err
	}
	reseed := p.Seed == nil || e.profile.Seed == nil || *p.Seed != *e.profile.Seed
	e.apply(p, reseed)
	return e.profile.clone(), nil
}

// Heal replaces the profile with a healthy one that keeps the current seed.
func (e *Engine) Heal() Profile {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.apply(Profile{Seed: e.profile.Seed}, true)
	return e.profile.clone()
}

// StartOutage starts an outage now, leaving the rest of the profile as it is.
func (e *Engine) StartOutage(o Outage) (Profile, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.profile.clone()
	p.Outage = &o
	if err := p.normalize(); err != nil {
		return Profile{}, err
	}
	e.apply(p, false)
	return e.profile.clone(), nil
}

// Reset forgets the per-order failFirst counts and restarts the random
// sequence from the profile's seed: the next calls replay the same decisions.
func (e *Engine) Reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failFirst = map[string]int{}
	e.rng = newRand(*e.profile.Seed)
}

// Profile returns the profile in force, with its effective seed and an active
// outage's end as an absolute time (an ended outage is gone).
func (e *Engine) Profile() Profile {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.expireOutage()
	return e.profile.clone()
}

// apply installs a normalized profile; the caller holds e.mu.
func (e *Engine) apply(p Profile, reseed bool) {
	if p.Seed == nil {
		// Seeds stay below 2^31 so that they survive tools that read JSON
		// numbers as doubles (jq, JavaScript) in a GET-edit-PUT round trip.
		s := rand.Int64N(1 << 31)
		p.Seed = &s
	}
	if o := p.Outage; o != nil && o.For > 0 {
		until := e.now().Add(o.For.Std())
		o.Until, o.For = &until, 0
	}
	e.rules = make([]compiledRule, len(p.Rules))
	for i, r := range p.Rules {
		// Patterns were validated by normalize.
		if r.OrderID != "" {
			e.rules[i].orderID = regexp.MustCompile(r.OrderID)
		}
		if r.ContainerID != "" {
			e.rules[i].containerID = regexp.MustCompile(r.ContainerID)
		}
	}
	e.profile = p
	if reseed || e.rng == nil {
		e.rng = newRand(*p.Seed)
		e.failFirst = map[string]int{}
	}
}

func newRand(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x5eed))
}

// expireOutage drops an outage whose end has passed; the caller holds e.mu.
func (e *Engine) expireOutage() {
	if o := e.profile.Outage; o != nil && o.Until != nil && !e.now().Before(*o.Until) {
		e.profile.Outage = nil
	}
}

// Decide returns what happens to one call. See the package documentation for
// the order of the steps.
func (e *Engine) Decide(r Request) Decision {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := &e.profile
	if len(p.Routes) > 0 && !slices.Contains(p.Routes, r.Route) {
		return Decision{Fault: None}
	}
	// Always two draws, whatever the outcome: the n-th call's decision depends
	// only on the seed and n.
	roll, jitterRoll := e.rng.Float64(), e.rng.Float64()
	latency := p.Latency.Std()
	if j := p.LatencyJitter.Std(); j > 0 {
		latency += time.Duration((2*jitterRoll - 1) * float64(j))
		latency = max(latency, 0)
	}

	e.expireOutage()
	if o := p.Outage; o != nil {
		d := Decision{Fault: KindOutage, Latency: latency}
		if o.Mode == OutageDrop {
			d.Drop = true
		} else {
			d.Status, d.RetryAfter = o.Status, p.RetryAfter.Std()
		}
		return d
	}

	for i, rule := range p.Rules {
		if !e.rules[i].matches(r) {
			continue
		}
		d := Decision{Fault: KindRule, Rule: rule.Name, Latency: latency, Status: rule.Status, Body: rule.Body, RetryAfter: p.RetryAfter.Std()}
		if rule.Latency != nil {
			d.Latency = rule.Latency.Std()
		}
		if rule.RetryAfter > 0 {
			d.RetryAfter = rule.RetryAfter.Std()
		}
		if rule.Status == 0 {
			d.Fault = None // an exempting rule
		}
		return d
	}

	if f := p.FailFirst; f != nil && f.Count > 0 && r.OrderID != "" {
		seen := e.failFirst[r.OrderID]
		if seen < f.Count {
			e.failFirst[r.OrderID] = seen + 1
			return Decision{Fault: KindFailFirst, Status: f.Status, Latency: latency, RetryAfter: p.RetryAfter.Std()}
		}
	}

	switch {
	case roll < p.TimeoutRate:
		return Decision{Fault: KindTimeout, Hang: true}
	case roll < p.TimeoutRate+p.ErrorRate:
		return Decision{Fault: KindError, Status: p.ErrorStatus, Latency: latency, RetryAfter: p.RetryAfter.Std()}
	}
	return Decision{Fault: None, Latency: latency}
}

func (c compiledRule) matches(r Request) bool {
	if c.orderID != nil && (r.OrderID == "" || !c.orderID.MatchString(r.OrderID)) {
		return false
	}
	if c.containerID != nil && (r.ContainerID == "" || !c.containerID.MatchString(r.ContainerID)) {
		return false
	}
	return true
}

// decodeNumbers decodes JSON keeping numbers exact (a seed may exceed 2^53).
func decodeNumbers(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("unexpected data after the JSON value")
	}
	return nil
}

// mergePatch applies an RFC 7386 JSON merge patch to target.
func mergePatch(target, patch map[string]any) map[string]any {
	if target == nil {
		target = map[string]any{}
	}
	for k, pv := range patch {
		if pv == nil {
			delete(target, k)
			continue
		}
		if pm, ok := pv.(map[string]any); ok {
			tm, _ := target[k].(map[string]any)
			target[k] = mergePatch(tm, pm)
			continue
		}
		target[k] = pv
	}
	return target
}
