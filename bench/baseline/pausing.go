package baseline

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"
)

// PauseUntilDue wraps a record handler for use with [PartitionListeners]:
// when the partition's head record is not due yet, the partition is paused
// (its listener reads nothing more) until it is, then the record is handed
// to next and the partition resumes. A record is never run early, but it
// may run late: it waits for every record ahead of it in its partition,
// however much later they are due.
func PauseUntilDue(dueAt func(kafka.Message) time.Time, next func(ctx context.Context, msg kafka.Message) error) func(ctx context.Context, msg kafka.Message) error {
	return func(ctx context.Context, msg kafka.Message) error {
		if wait := time.Until(dueAt(msg)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
		return next(ctx, msg)
	}
}
