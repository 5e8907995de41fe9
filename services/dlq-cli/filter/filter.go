package filter

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
)

// Status selects dead letters by whether they were dealt with.
type Status string

// The statuses a filter accepts.
const (
	// Pending letters were neither redriven nor resolved.
	Pending Status = "pending"
	// Resolved letters were redriven, edited or marked resolved.
	Resolved Status = "resolved"
	// All selects both.
	All Status = "all"
)

// ParseStatus accepts pending, resolved or all.
func ParseStatus(s string) (Status, error) {
	switch Status(s) {
	case Pending, Resolved, All:
		return Status(s), nil
	}
	return "", fmt.Errorf("status %q: want pending, resolved or all", s)
}

// Filter holds the conditions a dead letter must meet; the zero value of a
// field means "any". Use New for a Filter with no partition or offset bound.
type Filter struct {
	// OrderID matches the letter's order id exactly.
	OrderID string
	// Reason matches x-dlq-reason: max-attempts, permanent-error, poison.
	Reason retrymeta.Reason
	// ErrorClass matches x-error-class: transient, permanent or config.
	ErrorClass failure.Class
	// ErrorType matches a foreign dialect's exception class, fully
	// qualified or by its simple name (NullPointerException).
	ErrorType string
	// Dialect matches the dialect the letter was written in.
	Dialect deadletter.Dialect
	// OriginalTopic matches the topic the letter's headers name as its
	// origin.
	OriginalTopic string
	// Contains matches, ignoring case, text in the error message or the value.
	Contains string
	// Since and Until bound when the letter was dead-lettered: Since <= t < Until.
	Since, Until time.Time
	// Partition selects one partition; -1 means every partition.
	Partition int
	// FromOffset skips offsets below it (in every selected partition).
	FromOffset int64
	// Limit stops after so many matches; 0 means no limit.
	Limit int
	// Status selects pending, resolved or all letters; empty means all.
	Status Status
}

// New returns a Filter that matches every dead letter.
func New() Filter { return Filter{Partition: -1, Status: All} }

// ParseReason accepts the contract's reasons.
func ParseReason(s string) (retrymeta.Reason, error) {
	if r := retrymeta.Reason(s); slices.Contains(retrymeta.Reasons, r) {
		return r, nil
	}
	return "", fmt.Errorf("reason %q: want one of %v", s, retrymeta.Reasons)
}

// ParseErrorClass accepts transient, permanent or config.
func ParseErrorClass(s string) (failure.Class, error) {
	if c := failure.Class(s); slices.Contains(failure.Classes, c) {
		return c, nil
	}
	return "", fmt.Errorf("error class %q: want one of %v", s, failure.Classes)
}

// SetErrorClass sets the error-class condition: transient and permanent
// are this suite's classes; any other text is an exception class of a
// foreign dialect (java.io.IOException, or IOException).
func (f *Filter) SetErrorClass(s string) {
	if c, err := ParseErrorClass(s); err == nil {
		f.ErrorClass = c
		return
	}
	f.ErrorType = s
}

// ParseTime reads an instant as RFC 3339 ("2026-03-01T22:00:00Z") or as a
// duration before now ("90m", "2h", "3d"): what a person types at night.
func ParseTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := parseAgo(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2026-03-01T22:00:00Z) or a duration ago (90m, 2h, 3d)", s)
	}
	return now.Add(-d), nil
}

// parseAgo is time.ParseDuration plus whole days ("3d"), never negative.
func parseAgo(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, errors.New("bad day count")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, errors.New("negative duration")
	}
	return d, nil
}

// Validate reports contradictions between the fields.
func (f Filter) Validate() error {
	var errs []error
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		errs = append(errs, fmt.Errorf("--since %s is not before --until %s", f.Since.Format(time.RFC3339), f.Until.Format(time.RFC3339)))
	}
	if f.Limit < 0 {
		errs = append(errs, fmt.Errorf("--limit %d: want 0 (no limit) or more", f.Limit))
	}
	if f.FromOffset < 0 {
		errs = append(errs, fmt.Errorf("--from-offset %d: want 0 or more", f.FromOffset))
	}
	if f.Partition < -1 {
		errs = append(errs, fmt.Errorf("--partition %d: want 0 or more", f.Partition))
	}
	return errors.Join(errs...)
}

// WantsPartition reports whether partition p can hold a match.
func (f Filter) WantsPartition(p int) bool { return f.Partition < 0 || f.Partition == p }

// Match reports whether the letter meets every condition but Limit.
// resolved says whether the letter was dealt with.
func (f Filter) Match(l deadletter.Letter, resolved bool) bool {
	switch f.Status {
	case Pending:
		if resolved {
			return false
		}
	case Resolved:
		if !resolved {
			return false
		}
	}
	if !f.WantsPartition(l.Coord.Partition) || l.Coord.Offset < f.FromOffset {
		return false
	}
	if f.OrderID != "" && l.OrderID != f.OrderID && string(l.Key) != f.OrderID {
		return false
	}
	if f.Reason != "" && l.Meta.DLQReason != f.Reason {
		return false
	}
	if f.ErrorClass != "" && l.Meta.ErrorClass != f.ErrorClass {
		return false
	}
	if f.ErrorType != "" && l.ErrorType != f.ErrorType && !strings.HasSuffix(l.ErrorType, "."+f.ErrorType) {
		return false
	}
	if f.Dialect != "" && f.Dialect != deadletter.Auto && l.Dialect != f.Dialect {
		return false
	}
	if f.OriginalTopic != "" && l.Meta.OriginalTopic != f.OriginalTopic {
		return false
	}
	if f.Contains != "" && !containsFold(l, f.Contains) {
		return false
	}
	at := l.DeadLetteredAt()
	if !f.Since.IsZero() && at.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !at.Before(f.Until) {
		return false
	}
	return true
}

// containsFold looks for text, ignoring case, in the error message and the
// value.
func containsFold(l deadletter.Letter, text string) bool {
	needle := strings.ToLower(text)
	if strings.Contains(strings.ToLower(l.Meta.ErrorMessage), needle) {
		return true
	}
	return bytes.Contains(bytes.ToLower(l.Value), []byte(needle))
}
