package redrive

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
)

// Target is where redriven records go.
type Target string

// The targets of --to.
const (
	// ToRetry publishes to the retry topic with x-retry-attempt 0 and due
	// now: the retry service runs the record at once, with a full attempt
	// budget.
	ToRetry Target = "retry"
	// ToOriginal publishes to x-original-topic, as a fresh record.
	ToOriginal Target = "original"
)

// ParseTarget accepts retry or original.
func ParseTarget(s string) (Target, error) {
	switch t := Target(s); t {
	case ToRetry, ToOriginal:
		return t, nil
	}
	return "", fmt.Errorf("target %q: want retry or original", s)
}

// DefaultMaxRedrives is the loop guard's default limit.
const DefaultMaxRedrives = 3

// ErrLoopGuard is wrapped by Check's error for a record redriven too often.
var ErrLoopGuard = errors.New("loop guard")

// Check returns why the letter must not be redriven to target, or nil.
// maxRedrives <= 0 disables the loop guard.
func Check(l deadletter.Letter, to Target, maxRedrives int) error {
	if l.Malformed != "" {
		return fmt.Errorf("malformed headers (%s): inspect with dlq show, fix with dlq edit or close with dlq resolve", l.Malformed)
	}
	if maxRedrives > 0 && l.Meta.RedriveCount >= maxRedrives {
		return fmt.Errorf("%w: redriven %d times already, limit --max-redrives %d: it keeps failing the same way; fix it with dlq edit or close it with dlq resolve", ErrLoopGuard, l.Meta.RedriveCount, maxRedrives)
	}
	if to == ToOriginal && l.Meta.OriginalTopic == "" {
		if l.Dialect != deadletter.Reefer {
			return fmt.Errorf("the %s headers name no original topic: it is unknown where to send it back", l.Dialect)
		}
		return fmt.Errorf("no %s header: the original topic is unknown; use --to retry", retrymeta.HeaderOriginalTopic)
	}
	if to == ToRetry && l.Dialect != deadletter.Reefer {
		return fmt.Errorf("written by %s, not this suite: --to retry feeds this suite's retry service; send it back with --to original", l.Dialect)
	}
	return nil
}

// Copy returns the record to publish for the letter: same key and value,
// headers rewritten for the target, Topic set. retryTopic is the retry
// topic's name; editedFrom, if not empty, names the dead letter an edited
// value comes from (x-dlq-edited-from). The caller has called Check.
//
// retrymeta.Apply replaces every contract header, so the copy carries
// exactly the history written here:
//   - to the retry topic: the dead letter's history with x-retry-attempt 0
//     and x-retry-due-at now, without the dead-letter-only headers (stack,
//     reason, dead-lettered-at);
//   - to the original topic: only x-original-*, so the consumer sees a fresh
//     record whose provenance is still known.
//
// Both get x-dlq-redrive-count + 1; other headers (traceparent, the
// producer's own) are kept.
func Copy(l deadletter.Letter, to Target, retryTopic string, now time.Time, editedFrom string) kafka.Message {
	topic := retryTopic
	var m retrymeta.Meta
	switch to {
	case ToRetry:
		m = l.Meta
		m.Attempt = 0
		m.DueAt = now
		m.ErrorStack = ""
		m.DLQReason = ""
		m.DeadLetteredAt = time.Time{}
	case ToOriginal:
		topic = l.Meta.OriginalTopic
		m = retrymeta.Meta{
			OriginalTopic:     l.Meta.OriginalTopic,
			OriginalPartition: l.Meta.OriginalPartition,
			OriginalOffset:    l.Meta.OriginalOffset,
			OriginalTimestamp: l.Meta.OriginalTimestamp,
		}
	}
	m.RedriveCount = l.Meta.RedriveCount + 1
	m.EditedFrom = cmp.Or(editedFrom, l.Meta.EditedFrom)
	headers := l.Headers
	if to == ToOriginal {
		// The foreign dialect's dead-letter headers describe the failure;
		// the consumer of the original topic gets a fresh record (its
		// framework would otherwise read them as the record's history).
		headers = slices.DeleteFunc(slices.Clone(headers), func(h kafka.Header) bool { return deadletter.IsDialectHeader(h.Key) })
	}
	return kafka.Message{Topic: topic, Key: l.Key, Value: l.Value, Headers: retrymeta.Apply(headers, m), Time: now}
}

// EditedFrom formats the coordinates of an edited dead letter for the
// x-dlq-edited-from header: topic/partition/offset, as package retrymeta
// documents it.
func EditedFrom(l deadletter.Letter) string {
	return fmt.Sprintf("%s/%d/%d", l.Coord.Topic, l.Coord.Partition, l.Coord.Offset)
}
