package failure_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
)

// The errors a kafka-go Writer returns, as WriteMessages wraps them: a
// kafka.Error inside WriteErrors for a synchronous write, the client's own
// MessageTooLargeError, or a plain transport error.
func TestFromProducerClassifiesWriterErrors(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantClass  failure.Class
		wantReason string
	}{
		{"client-side too large", kafka.MessageTooLargeError{}, failure.Permanent, "record-too-large"},
		{"broker MESSAGE_TOO_LARGE in WriteErrors", kafka.WriteErrors{kafka.MessageSizeTooLarge}, failure.Permanent, "record-too-large"},
		{"broker RECORD_LIST_TOO_LARGE", kafka.WriteErrors{nil, kafka.RecordListTooLarge}, failure.Permanent, "record-too-large"},
		{"broker error with a message", fmt.Errorf("%w: %s", kafka.MessageSizeTooLarge, "The message is too large."), failure.Permanent, "record-too-large"},
		{"invalid record", kafka.WriteErrors{kafka.InvalidRecord}, failure.Permanent, "record-invalid"},
		{"corrupt message", kafka.InvalidMessage, failure.Permanent, "record-invalid"},
		{"topic not authorised", kafka.WriteErrors{kafka.TopicAuthorizationFailed}, failure.Config, "kafka-unauthorized"},
		{"cluster not authorised", kafka.ClusterAuthorizationFailed, failure.Config, "kafka-unauthorized"},
		{"SASL refused", kafka.SASLAuthenticationFailed, failure.Config, "kafka-unauthorized"},
		{"unknown topic", kafka.UnknownTopicOrPartition, failure.Config, "kafka-unknown-topic"},
		{"not enough replicas", kafka.WriteErrors{kafka.NotEnoughReplicas}, failure.Transient, "kafka-error"},
		{"leader moved", kafka.NotLeaderForPartition, failure.Transient, "kafka-error"},
		{"broker gone", kafka.WriteErrors{io.EOF}, failure.Transient, "eof"},
		{"deadline", context.DeadlineExceeded, failure.Transient, "timeout"},
		{"unknown", errors.New("something odd"), failure.Transient, "transport"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := failure.FromProducer(fmt.Errorf("write: %w", tt.err))
			if got := failure.ClassOf(err); got != tt.wantClass {
				t.Errorf("class = %q, want %q (%v)", got, tt.wantClass, err)
			}
			if got := failure.ReasonOf(err); got != tt.wantReason {
				t.Errorf("reason = %q, want %q", got, tt.wantReason)
			}
			if !errors.Is(err, tt.err) && !errors.As(err, new(kafka.WriteErrors)) && !errors.As(err, new(kafka.MessageTooLargeError)) {
				t.Errorf("the cause is lost: %v", err)
			}
		})
	}
	if err := failure.FromProducer(nil); err != nil {
		t.Errorf("FromProducer(nil) = %v", err)
	}
	if err := failure.FromProducer(context.Canceled); err != context.Canceled {
		t.Errorf("FromProducer(Canceled) = %v, want it unchanged", err)
	}
	done := failure.NewPermanent("decode", nil)
	if err := failure.FromProducer(done); err != done {
		t.Errorf("an error already classified must be returned as is, got %v", err)
	}
}

func TestClassOfKnowsConfig(t *testing.T) {
	err := fmt.Errorf("allocate: %w", failure.NewConfig("http-401", errors.New("unauthorized")))
	if got := failure.ClassOf(err); got != failure.Config {
		t.Errorf("ClassOf = %q, want config", got)
	}
	if !failure.IsConfig(err) || failure.IsPermanent(err) {
		t.Error("a config failure is config and not permanent")
	}
	if got := failure.New(failure.Config, "x", nil).Class; got != failure.Config {
		t.Errorf("New(Config).Class = %q", got)
	}
}
