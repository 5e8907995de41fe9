package baseline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
)

// Dispositions of a share-group dead letter: why the consumer gave up.
const (
	// DispositionMaxDeliveries: the record failed transiently on its last
	// permitted delivery (group.share.delivery.count.limit).
	DispositionMaxDeliveries = "MAX_DELIVERY_ATTEMPTS_REACHED"
	// DispositionRejected: the record failed permanently and was rejected.
	DispositionRejected = "CLIENT_REJECTED"
)

// The headers ShareGroupConsumer puts on a dead letter. The first four are
// named as draft KIP-1317 names the headers a broker-side share-group DLQ
// (KIP-1191, Kafka 4.4) would write; the last two are this bench's. They
// carry only what a share consumer knows at the last delivery: there is no
// history of earlier attempts, because the broker keeps none but the count.
const (
	HeaderShareDisposition    = "_dlq.errors.disposition"
	HeaderShareTopic          = "_dlq.errors.original.topic"
	HeaderSharePartition      = "_dlq.errors.original.partition"
	HeaderShareOffset         = "_dlq.errors.original.offset"
	HeaderShareDeliveryCount  = "_dlq.errors.delivery.count"
	HeaderShareErrorMessage   = "_dlq.errors.message"
	shareDeadLetterErrMaxSize = 1024
)

// ShareGroupConsumer is a share-group (KIP-932, "queues for Kafka")
// consumer written the way franz-go and Kafka document one: poll a batch,
// process each record, acknowledge each one, poll again.
//
//   - success: ACCEPT;
//   - a transient failure: RELEASE, so the broker delivers the record again
//     (to this member or another) with its delivery count raised. There is
//     no back-off: the record is available again at once;
//   - a permanent failure: REJECT, the broker archives it;
//   - the delivery limit (group.share.delivery.count.limit, default 5) is
//     the attempt budget: a transient failure on the last permitted
//     delivery is final.
//
// A broker with share-group dead-letter queues (KIP-1191) would copy a
// rejected or exhausted record to a DLQ topic by itself. kfake has none, so
// the consumer writes the dead letter itself (DeadLetter) before it
// rejects the record; when that write fails the record is released
// instead, so that it is not lost.
//
// The records of one poll are processed concurrently, up to Concurrency
// at a time, and all of them are acknowledged before the next poll (franz-go
// accepts every record left unacknowledged when it polls again). Share
// groups promise no order, and this consumer keeps none.
type ShareGroupConsumer struct {
	// Client consumes with kgo.ShareGroup and kgo.ConsumeTopics.
	Client *kgo.Client
	// Handle does the work of one record; its error carries a failure class
	// (package failure).
	Handle func(ctx context.Context, r *kgo.Record) error
	// DeadLetter writes r, with headers, to the dead-letter topic.
	DeadLetter func(ctx context.Context, r *kgo.Record, headers []kgo.RecordHeader) error
	// MaxDeliveries is the group's delivery count limit.
	MaxDeliveries int32
	// Concurrency bounds the records of one poll processed at once.
	Concurrency int
	// Observe, when set, is told the outcome of every delivery (for the
	// bench's measurements; not part of the design).
	Observe func(r *kgo.Record, err error, ack kgo.AckStatus, at time.Time)
}

// Run polls and processes until ctx ends.
func (s ShareGroupConsumer) Run(ctx context.Context) error {
	if s.Client == nil || s.Handle == nil || s.DeadLetter == nil || s.MaxDeliveries < 1 {
		return errors.New("share-group consumer: Client, Handle, DeadLetter and MaxDeliveries are required")
	}
	sem := make(chan struct{}, max(1, s.Concurrency))
	for {
		fetches := s.Client.PollFetches(ctx)
		if ctx.Err() != nil {
			// Records of this poll are released when the client closes.
			return nil
		}
		for _, fe := range fetches.Errors() {
			if errors.Is(fe.Err, context.Canceled) || errors.Is(fe.Err, kgo.ErrClientClosed) {
				return nil
			}
			return fmt.Errorf("share-group consumer: fetch %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
		}
		var wg sync.WaitGroup
		fetches.EachRecord(func(r *kgo.Record) {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				s.process(ctx, r)
			})
		})
		wg.Wait()
	}
}

// process handles one delivery and acknowledges it.
func (s ShareGroupConsumer) process(ctx context.Context, r *kgo.Record) {
	err := s.Handle(ctx, r)
	ack := kgo.AckAccept
	switch {
	case err == nil:
	case ctx.Err() != nil:
		ack = kgo.AckRelease // shutting down: someone else takes it
	case failure.IsPermanent(err):
		ack = s.deadLetter(ctx, r, DispositionRejected, err)
	case r.DeliveryCount() >= s.MaxDeliveries:
		ack = s.deadLetter(ctx, r, DispositionMaxDeliveries, err)
	default:
		ack = kgo.AckRelease
	}
	r.Ack(ack)
	if s.Observe != nil {
		s.Observe(r, err, ack, time.Now())
	}
}

// deadLetter writes the dead letter and returns REJECT, or RELEASE when it
// could not be written.
func (s ShareGroupConsumer) deadLetter(ctx context.Context, r *kgo.Record, disposition string, cause error) kgo.AckStatus {
	msg := cause.Error()
	if len(msg) > shareDeadLetterErrMaxSize {
		msg = msg[:shareDeadLetterErrMaxSize]
	}
	headers := append(append([]kgo.RecordHeader(nil), r.Headers...),
		kgo.RecordHeader{Key: HeaderShareDisposition, Value: []byte(disposition)},
		kgo.RecordHeader{Key: HeaderShareTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: HeaderSharePartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
		kgo.RecordHeader{Key: HeaderShareOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
		kgo.RecordHeader{Key: HeaderShareDeliveryCount, Value: []byte(strconv.Itoa(int(r.DeliveryCount())))},
		kgo.RecordHeader{Key: HeaderShareErrorMessage, Value: []byte(msg)},
	)
	if err := s.DeadLetter(ctx, r, headers); err != nil {
		return kgo.AckRelease
	}
	return kgo.AckReject
}
