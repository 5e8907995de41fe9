package calls

import (
	"maps"
	"strconv"
	"sync"
	"time"
)

// Call is one inventory API call as the mock saw it.
type Call struct {
	// Seq numbers calls from 1 since start or reset; the log's cursor.
	Seq            uint64    `json:"seq"`
	Time           time.Time `json:"time"`
	Method         string    `json:"method"`
	Route          string    `json:"route"` // a faults route name such as "allocate"
	Path           string    `json:"path"`
	ContainerID    string    `json:"containerID,omitempty"`
	OrderID        string    `json:"orderID,omitempty"`
	IdempotencyKey string    `json:"idempotencyKey,omitempty"`
	// Fault is the injected fault ("none" when the real handler answered).
	Fault string `json:"fault"`
	Rule  string `json:"rule,omitempty"`
	// Status is the HTTP status sent; StatusDropped when the connection was
	// closed without an answer, StatusClientGone when the client gave up first.
	Status    int     `json:"status"`
	LatencyMs float64 `json:"latencyMs"`
}

// Pseudo statuses of calls that got no HTTP answer.
const (
	StatusDropped    = 0
	StatusClientGone = 499 // the code nginx logs for "client closed request"
)

// StatusLabel is the status as it appears in Stats.ByStatus and in metrics:
// the number, or "dropped".
func StatusLabel(status int) string {
	switch status {
	case StatusDropped:
		return "dropped"
	case 200:
		return "200"
	default:
		return strconv.Itoa(status)
	}
}

// Stats counts calls since start or reset.
type Stats struct {
	Calls    int64            `json:"calls"`
	ByRoute  map[string]int64 `json:"byRoute"`
	ByFault  map[string]int64 `json:"byFault"`
	ByStatus map[string]int64 `json:"byStatus"`
}

// Query selects calls from the log; zero fields select everything.
type Query struct {
	After       uint64 // only calls with Seq > After
	Route       string
	OrderID     string
	ContainerID string
	Fault       string
	Limit       int // at most this many, the newest; 0 means no limit
}

func (q Query) matches(c *Call) bool {
	return c.Seq > q.After &&
		(q.Route == "" || c.Route == q.Route) &&
		(q.OrderID == "" || c.OrderID == q.OrderID) &&
		(q.ContainerID == "" || c.ContainerID == q.ContainerID) &&
		(q.Fault == "" || c.Fault == q.Fault)
}

// Log keeps the newest calls in a ring and counts all of them. It is safe for
// concurrent use.
type Log struct {
	mu    sync.Mutex
	ring  []Call
	next  int // ring index of the next write
	full  bool
	seq   uint64
	stats Stats
}

// NewLog returns a log that keeps the newest size calls (at least 1).
func NewLog(size int) *Log {
	l := &Log{ring: make([]Call, max(size, 1))}
	l.resetLocked()
	return l
}

// Add records c, numbering it; it returns the number.
func (l *Log) Add(c Call) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	c.Seq = l.seq
	l.ring[l.next] = c
	l.next++
	if l.next == len(l.ring) {
		l.next, l.full = 0, true
	}
	l.stats.Calls++
	l.stats.ByRoute[c.Route]++
	l.stats.ByFault[c.Fault]++
	l.stats.ByStatus[StatusLabel(c.Status)]++
	return c.Seq
}

// Calls returns the logged calls that match q, oldest first.
func (l *Log) Calls(q Query) []Call {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []Call{}
	start, n := 0, l.next
	if l.full {
		start, n = l.next, len(l.ring)
	}
	for i := range n {
		c := &l.ring[(start+i)%len(l.ring)]
		if q.matches(c) {
			out = append(out, *c)
		}
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[len(out)-q.Limit:]
	}
	return out
}

// Stats returns a copy of the counters.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{
		Calls:    l.stats.Calls,
		ByRoute:  maps.Clone(l.stats.ByRoute),
		ByFault:  maps.Clone(l.stats.ByFault),
		ByStatus: maps.Clone(l.stats.ByStatus),
	}
}

// Reset empties the log and the counters and restarts numbering at 1.
func (l *Log) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.resetLocked()
}

func (l *Log) resetLocked() {
	clear(l.ring)
	l.next, l.full, l.seq = 0, false, 0
	l.stats = Stats{ByRoute: map[string]int64{}, ByFault: map[string]int64{}, ByStatus: map[string]int64{}}
}
