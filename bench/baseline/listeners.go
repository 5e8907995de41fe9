package baseline

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
)

// PartitionListeners reads every partition of Topic with its own reader and
// goroutine, from the first offset, and gives each record to Handle; the
// next record of a partition is read only after Handle returned. It joins
// no consumer group and commits nothing: the benchmark counts what Handle
// concluded, and a commit would only add the same small cost to every
// baseline.
type PartitionListeners struct {
	Kafka      kafkaclient.Config
	Topic      string
	Partitions int
	// Handle processes one record. An error stops every listener and is
	// returned by Run.
	Handle func(ctx context.Context, msg kafka.Message) error
}

// Run listens until ctx ends (then it returns nil) or a handler fails.
func (l PartitionListeners) Run(ctx context.Context) error {
	if l.Handle == nil || l.Partitions < 1 {
		return errors.New("partition listeners: Handle is nil or Partitions < 1")
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for p := range l.Partitions {
		r, err := l.Kafka.NewReader(kafka.ReaderConfig{Topic: l.Topic, Partition: p})
		if err != nil {
			cancel(err)
			break
		}
		wg.Go(func() {
			defer r.Close()
			for {
				msg, err := r.FetchMessage(ctx)
				if err != nil {
					if ctx.Err() == nil {
						cancel(fmt.Errorf("read %s/%d: %w", l.Topic, p, err))
					}
					return
				}
				if err := l.Handle(ctx, msg); err != nil {
					if ctx.Err() == nil {
						cancel(fmt.Errorf("handle %s/%d@%d: %w", l.Topic, p, msg.Offset, err))
					}
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
