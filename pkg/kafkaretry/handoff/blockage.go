package handoff

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
)

// Blockage keeps the topics a Router cannot write to for a reason
// retrying alone cannot fix: the broker does not authorise the write, the
// topic does not exist, or even a dead letter is refused. Records whose
// hand-off fails are not committed and are tried again (package
// consumer), so such a topic stops its partitions for as long as it
// lasts. That must not happen in silence: a Blockage logs an ERROR naming
// the topic and the error when a topic becomes blocked, makes [Check]
// (a readiness check) fail while any topic is, and calls OnChange (for a
// gauge). A successful write to the topic clears it. Transient errors (a
// broker restarting, a leader moving) neither block nor clear a topic.
//
// Create it with a struct literal; the zero value works and logs nothing.
// It is safe for concurrent use.
type Blockage struct {
	// Log receives the ERROR line when a topic becomes blocked (or its
	// error changes) and an INFO line when it is written to again.
	Log *slog.Logger
	// OnChange, when set, is called with blocked true when topic becomes
	// blocked and false when it clears.
	OnChange func(topic string, blocked bool)

	mu     sync.Mutex
	topics map[string]string // blocked topic -> the error, as text
}

// observe records the outcome of one WriteMessages call of msgs.
func (b *Blockage) observe(msgs []kafka.Message, err error) {
	perMessage, _ := errors.AsType[kafka.WriteErrors](err)
	seen := make(map[string]bool, 2)
	for i, m := range msgs {
		if seen[m.Topic] {
			continue
		}
		seen[m.Topic] = true
		topicErr := err
		if len(perMessage) == len(msgs) {
			topicErr = perMessage[i]
		}
		switch class := failure.ClassOf(failure.FromProducer(topicErr)); {
		case topicErr == nil:
			b.clear(m.Topic)
		case class == failure.Permanent || class == failure.Config:
			b.block(m.Topic, topicErr)
		}
	}
}

func (b *Blockage) block(topic string, err error) {
	b.mu.Lock()
	if b.topics == nil {
		b.topics = make(map[string]string)
	}
	prev, was := b.topics[topic]
	b.topics[topic] = err.Error()
	b.mu.Unlock()
	if was && prev == err.Error() {
		return
	}
	if b.Log != nil {
		b.Log.Error("hand-off blocked: records cannot be written to this topic and retrying alone will not fix it; their partitions stop until it is fixed",
			"topic", topic, "error", err, "class", failure.ClassOf(failure.FromProducer(err)), "reason", failure.ReasonOf(failure.FromProducer(err)))
	}
	if !was && b.OnChange != nil {
		b.OnChange(topic, true)
	}
}

func (b *Blockage) clear(topic string) {
	b.mu.Lock()
	_, was := b.topics[topic]
	delete(b.topics, topic)
	b.mu.Unlock()
	if !was {
		return
	}
	if b.Log != nil {
		b.Log.Info("hand-off unblocked: the topic takes records again", "topic", topic)
	}
	if b.OnChange != nil {
		b.OnChange(topic, false)
	}
}

// Blocked returns the blocked topics, sorted.
func (b *Blockage) Blocked() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	topics := make([]string, 0, len(b.topics))
	for t := range b.topics {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	return topics
}

// Check fails while a topic is blocked, naming each with its error; it
// fits opsserver.Check, so readiness turns false.
func (b *Blockage) Check(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.topics) == 0 {
		return nil
	}
	parts := make([]string, 0, len(b.topics))
	for t, e := range b.topics {
		parts = append(parts, fmt.Sprintf("topic %s: %s", t, e))
	}
	slices.Sort(parts)
	return fmt.Errorf("hand-off blocked: %s", strings.Join(parts, "; "))
}
