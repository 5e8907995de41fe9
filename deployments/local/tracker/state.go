package tracker

import (
	"strings"
	"time"
)

// Stage is where an order is.
type Stage int

// The stages of an order. The last two are terminal; a dead letter is
// terminal only when nobody redrives it.
const (
	// Created: on the orders topic, waiting for its first attempt.
	Created Stage = iota
	// Retrying: on order-retries, waiting for its next attempt.
	Retrying
	// DeadLettered: on order-dead-letter, waiting for a person or a redrive.
	DeadLettered
	// Allocated: ContainerAllocated was emitted.
	Allocated
	// Rejected: OrderRejected was emitted (no reefer big enough).
	Rejected
)

func (s Stage) String() string {
	switch s {
	case Created:
		return "waiting for first attempt"
	case Retrying:
		return "in retry"
	case DeadLettered:
		return "dead-lettered"
	case Allocated:
		return "allocated"
	case Rejected:
		return "rejected"
	}
	return "unknown"
}

// Terminal reports whether nothing more happens to an order at this stage.
func (s Stage) Terminal() bool { return s == Allocated || s == Rejected }

// Order is what the topics say about one order.
type Order struct {
	ID    string
	Stage Stage
	// Created: its OrderCreated was read.
	Created bool
	// Attempt is the failed attempts of its furthest hop; MaxAttempt the
	// most any hop carried (a redrive resets Attempt, not MaxAttempt).
	Attempt, MaxAttempt int
	// Redrives is how often the dlq CLI sent it back.
	Redrives int
	// RetryRecords and DeadLetters count its records on those topics.
	RetryRecords, DeadLetters int
	// Dead-letter details of its latest dead letter.
	DLQReason, ErrorClass, LastError string
	// Containers are the distinct containers of its ContainerAllocated
	// events, Assigned those of its ContainerAssignedToOrder events: more
	// than one is a double allocation.
	Containers, Assigned []string
	RejectReason         string
	// Outcomes counts the terminal events with different outcomes: an
	// order both allocated and rejected has 2.
	Outcomes int

	FirstSeen, Changed, Done time.Time

	hop      hop
	terminal Stage
}

// conclude records a terminal event.
func (o *Order) conclude(s Stage, at time.Time) {
	if o.terminal != s {
		o.Outcomes++
		o.terminal = s
	}
	if !o.Stage.Terminal() {
		o.Stage = s
		o.Done = at
		o.Changed = at
	}
}

// hop says how far an order had come when a record about it was written.
type hop struct {
	redrives, attempt int
	kind              int
}

const (
	kindCreated = iota
	kindRetry
	kindDead
)

func (h hop) after(o hop) bool {
	if h.redrives != o.redrives {
		return h.redrives > o.redrives
	}
	if h.attempt != o.attempt {
		return h.attempt > o.attempt
	}
	return h.kind > o.kind
}

// MaxTrackedAttempt is the last attempt bucket of Counts.Retrying; higher
// attempts are counted in it.
const MaxTrackedAttempt = 9

// Counts is how many orders are at each stage.
type Counts struct {
	In           int // orders seen
	FirstAttempt int // waiting for their first attempt
	// Retrying counts the orders in retry by failed attempts so far; index
	// 0 is redriven orders waiting for their first attempt after the redrive.
	Retrying      [MaxTrackedAttempt + 1]int
	DeadTransient int // pending dead letters of a transient failure
	DeadPermanent int // pending dead letters of a permanent failure
	Allocated     int
	Rejected      int
	Redriven      int // orders redriven at least once
}

func (c *Counts) add(o *Order) {
	c.In++
	if o.Redrives > 0 {
		c.Redriven++
	}
	switch o.Stage {
	case Created:
		c.FirstAttempt++
	case Retrying:
		c.Retrying[min(o.Attempt, MaxTrackedAttempt)]++
	case DeadLettered:
		if o.ErrorClass == "permanent" {
			c.DeadPermanent++
		} else {
			c.DeadTransient++
		}
	case Allocated:
		c.Allocated++
	case Rejected:
		c.Rejected++
	}
}

// InRetry is the number of orders on order-retries, whatever the attempt.
func (c Counts) InRetry() int {
	n := 0
	for _, r := range c.Retrying {
		n += r
	}
	return n
}

// DeadLettered is the number of pending dead letters.
func (c Counts) DeadLettered() int { return c.DeadTransient + c.DeadPermanent }

// Unsettled is the number of orders still moving: waiting for an attempt.
func (c Counts) Unsettled() int { return c.FirstAttempt + c.InRetry() }

// Sample is the counts at one moment, At after the tracker started.
type Sample struct {
	At time.Duration
	Counts
}

// Causes of a failed attempt, as Cause names them.
const (
	// CauseBreaker: the service's circuit breaker was open and failed the
	// call without sending it. Its Retry-After (the time the breaker stays
	// open) raises the delay.
	CauseBreaker = "circuit breaker open"
	// CauseInventory: the inventory answered with an error or not at all.
	CauseInventory = "inventory error"
)

// Cause tells, from a retry record's x-error-message, why the attempt
// failed. It is for narration only: error messages are for people, and
// nothing that must be right depends on this.
func Cause(message string) string {
	if strings.Contains(message, "circuit-open") {
		return CauseBreaker
	}
	return CauseInventory
}

// DelayStats summarizes the delays order-retries records were given after
// their attempt-th failure (x-retry-due-at - x-retry-last-failure-at), by
// the cause of the failure.
type DelayStats struct {
	Attempt       int
	Cause         string
	Count         int
	Min, Max, Sum time.Duration
}

// Mean is the average delay.
func (d DelayStats) Mean() time.Duration {
	if d.Count == 0 {
		return 0
	}
	return d.Sum / time.Duration(d.Count)
}

// Report is a copy of everything the tracker knows.
type Report struct {
	Counts
	Orders map[string]Order
	// Containers maps each container to the orders it was assigned to.
	Containers map[string][]string
	// Duplicates counts events read twice (same event id): redeliveries.
	Duplicates int
	// Unreadable lists records that could not be decoded.
	Unreadable []string
	Delays     []DelayStats
	// Causes counts the failed attempts by cause (see Cause).
	Causes  map[string]int
	Samples []Sample
	// LastFailure is the latest failure time a record carried: after it,
	// no service called the inventory and failed.
	LastFailure time.Time
}
