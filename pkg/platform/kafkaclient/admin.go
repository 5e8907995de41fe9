package kafkaclient

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// EnsureTopics creates the topics of the map that do not exist yet, each with
// its partition count, and leaves existing topics alone (whatever their
// partition count). It is meant for the demo, tests and compose set-ups;
// production topics are managed with the cluster's own tooling.
//
// Replication is the broker's default.replication.factor.
func (c Config) EnsureTopics(ctx context.Context, topics map[string]int) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("ensure topics: %w", err)
	}
	names := make([]string, 0, len(topics))
	for name := range topics {
		names = append(names, name)
	}
	slices.Sort(names)
	configs := make([]kafka.TopicConfig, 0, len(names))
	var errs []error
	for _, name := range names {
		if err := CheckTopicName(name); err != nil {
			errs = append(errs, fmt.Errorf("ensure topics: %w", err))
			continue
		}
		if topics[name] < 1 {
			errs = append(errs, fmt.Errorf("ensure topics: topic %s: %d partitions: want at least 1", name, topics[name]))
			continue
		}
		configs = append(configs, kafka.TopicConfig{
			Topic:             name,
			NumPartitions:     topics[name],
			ReplicationFactor: -1, // the broker's default
		})
	}
	if len(errs) > 0 || len(configs) == 0 {
		return errors.Join(errs...)
	}

	client, closeClient, err := c.Client(0)
	if err != nil {
		return fmt.Errorf("ensure topics: %w", err)
	}
	defer closeClient()
	if err := CreateTopics(ctx, client, configs...); err != nil {
		return fmt.Errorf("ensure topics: %w", err)
	}
	return nil
}

// CreateTopics creates the topics on client's cluster, leaving alone
// those that exist already (whatever their settings). It is the one
// CreateTopics call of the suite: EnsureTopics' and the dlq CLI's (its
// compacted resolution log).
func CreateTopics(ctx context.Context, client *kafka.Client, topics ...kafka.TopicConfig) error {
	if len(topics) == 0 {
		return nil
	}
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("create topics %s: %w", topicNames(topics), err)
	}
	var errs []error
	for _, t := range topics {
		err := resp.Errors[t.Topic]
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create %s with %d partitions: %w", t.Topic, t.NumPartitions, err))
		}
	}
	return errors.Join(errs...)
}

func topicNames(topics []kafka.TopicConfig) string {
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Topic
	}
	return strings.Join(names, ", ")
}

// Ping reaches a broker and reads the cluster's metadata: the readiness
// check of a service that produces or consumes. ctx bounds it; give it a
// short deadline.
func (c Config) Ping(ctx context.Context) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("kafka ping: %w", err)
	}
	client, closeClient, err := c.Client(0)
	if err != nil {
		return fmt.Errorf("kafka ping: %w", err)
	}
	defer closeClient()
	// No topics asked for: the answer lists the brokers, which is enough.
	resp, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}})
	if err != nil {
		return fmt.Errorf("kafka ping %v: %w", c.Brokers, err)
	}
	if len(resp.Brokers) == 0 {
		return fmt.Errorf("kafka ping %v: metadata lists no brokers", c.Brokers)
	}
	return nil
}

// Client returns a kafka.Client on a fresh Transport with the
// configuration's settings, each request bounded by timeout (0: by its
// context only), and the function that releases the Transport's
// connections and goroutines. The admin calls here and the dlq CLI's
// topic scans and appends share it.
func (c Config) Client(timeout time.Duration) (*kafka.Client, func(), error) {
	t, err := c.Transport()
	if err != nil {
		return nil, nil, err
	}
	return &kafka.Client{Addr: kafka.TCP(c.Brokers...), Transport: t, Timeout: timeout}, t.CloseIdleConnections, nil
}

// maxTopicNameLen is Kafka's limit on a topic name.
const maxTopicNameLen = 249

// CheckTopicName applies Kafka's rule for topic names: 1 to 249 characters from
// [a-zA-Z0-9._-], and neither "." nor "..". Brokers enforce it (the embedded
// devbroker does not), so EnsureTopics checks it first.
func CheckTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("empty topic name")
	case name == "." || name == "..":
		return fmt.Errorf("topic name %q is not allowed", name)
	case len(name) > maxTopicNameLen:
		return fmt.Errorf("topic name is %d characters long: the limit is %d", len(name), maxTopicNameLen)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("topic name %q has %q: only letters, digits, '.', '_' and '-' are allowed", name, r)
		}
	}
	return nil
}
