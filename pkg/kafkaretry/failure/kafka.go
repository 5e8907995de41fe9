package failure

import (
	"context"
	"errors"

	"github.com/segmentio/kafka-go"
)

// ReasonTooLarge is the reason of a record refused for its size, by the
// writer, the broker or a check before writing.
const ReasonTooLarge = "record-too-large"

// FromProducer classifies an error returned by a kafka-go Writer's
// WriteMessages, so that a hand-off that cannot succeed by retrying is
// told apart from a broker that is briefly away:
//
//   - permanent "record-too-large": the record (or the request it went
//     in) is above the writer's BatchBytes or the topic's
//     max.message.bytes (MessageSizeTooLarge, RecordListTooLarge,
//     kafka.MessageTooLargeError). Writing it again fails again.
//   - permanent "record-invalid": the broker refuses the record itself
//     (InvalidRecord, InvalidMessage (CORRUPT_MESSAGE), InvalidTimestamp,
//     UnsupportedForMessageFormat).
//   - config "kafka-unauthorized": the broker does not authorise the
//     write (TopicAuthorizationFailed, ClusterAuthorizationFailed,
//     TransactionalIDAuthorizationFailed, SASLAuthenticationFailed).
//   - config "kafka-unknown-topic": the topic does not exist or its name
//     is invalid (UnknownTopicOrPartition, InvalidTopic). Kafka calls
//     the first retriable, and it is for a second while a topic is being
//     created; when it lasts, the deployment is wrong.
//   - every other error: as [FromTransport] (transient; kafka-go has
//     already retried what it deems temporary).
//
// A kafka.WriteErrors (one entry per message of the call) is classified
// by its first non-nil entry; classify a multi-message write's entries
// one by one with FromProducer when they may differ. nil stays nil, an
// error already classified is returned as is, and context.Canceled is
// returned unchanged.
func FromProducer(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*Error](err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	cause := err
	if we, ok := errors.AsType[kafka.WriteErrors](err); ok {
		for _, e := range we {
			if e != nil {
				cause = e
				break
			}
		}
	}
	if _, ok := errors.AsType[kafka.MessageTooLargeError](cause); ok {
		return newError(Permanent, ReasonTooLarge, err, 3)
	}
	code, ok := errors.AsType[kafka.Error](cause)
	if !ok {
		return newError(Transient, transportReason(cause), err, 3)
	}
	switch code {
	case kafka.MessageSizeTooLarge, kafka.RecordListTooLarge:
		return newError(Permanent, ReasonTooLarge, err, 3)
	case kafka.InvalidRecord, kafka.InvalidMessage, kafka.InvalidMessageSize, kafka.InvalidTimestamp, kafka.UnsupportedForMessageFormat:
		return newError(Permanent, "record-invalid", err, 3)
	case kafka.TopicAuthorizationFailed, kafka.ClusterAuthorizationFailed,
		kafka.TransactionalIDAuthorizationFailed, kafka.SASLAuthenticationFailed:
		return newError(Config, "kafka-unauthorized", err, 3)
	case kafka.UnknownTopicOrPartition, kafka.InvalidTopic:
		return newError(Config, "kafka-unknown-topic", err, 3)
	}
	return newError(Transient, "kafka-error", err, 3)
}
