package harness

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/tests/integration/contract"
	"github.com/reeferdlq/reefer-dlq/tests/integration/outcomes"
)

// contractDoc is the published contract, relative to the repository root.
const contractDoc = "docs/asyncapi.yaml"

// fingerprint identifies a record the test itself wrote (Produce), so that
// the contract check leaves the test's own input, poison included, alone.
func fingerprint(topic string, m kafka.Message) [sha256.Size]byte {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(topic), m.Key, m.Value} {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	for _, hd := range m.Headers {
		fmt.Fprintf(h, "%d:%s%d:", len(hd.Key), hd.Key, len(hd.Value))
		h.Write(hd.Value)
	}
	var out [sha256.Size]byte
	copy(out[:], h.Sum(nil))
	return out
}

// checkContract validates every record the services wrote to the four
// topics of the stack against docs/asyncapi.yaml (package contract): the
// events on orders and containers, and the value and headers on
// order-retries and order-dead-letter. Start registers it to run when the
// test ends, before the containers are removed, so every scenario checks
// what it made the services emit.
func (s *Stack) checkContract(ctx context.Context) error {
	path, err := findUp(contractDoc)
	if err != nil {
		return err
	}
	c, err := contract.Load(path)
	if err != nil {
		return err
	}
	var errs []error
	checked := 0
	for _, tp := range []struct{ channel, topic string }{
		{contract.Orders, s.Topics.Orders},
		{contract.Containers, s.Topics.Containers},
		{contract.OrderRetries, s.Topics.Retry},
		{contract.OrderDeadLetter, s.Topics.DeadLetter},
	} {
		msgs, err := outcomes.ReadTopic(ctx, s.Broker.Kafka, tp.topic)
		if err != nil {
			return fmt.Errorf("contract check: %w", err)
		}
		for _, m := range msgs {
			if s.producedByTest(tp.topic, m) {
				continue
			}
			checked++
			if err := c.Check(tp.channel, m); err != nil {
				errs = append(errs, fmt.Errorf("%s/%d:%d (key %q): %w", tp.topic, m.Partition, m.Offset, m.Key, err))
			}
		}
	}
	if len(errs) > 10 {
		errs = append(errs[:10], fmt.Errorf("... and %d more", len(errs)-10))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("records the services wrote do not match %s:\n%w", contractDoc, err)
	}
	s.t.Logf("integration: %d records the services wrote match %s", checked, contractDoc)
	return nil
}

func (s *Stack) producedByTest(topic string, m kafka.Message) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.produced[fingerprint(topic, m)]
}

func (s *Stack) recordProduced(msgs []kafka.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.produced == nil {
		s.produced = map[[sha256.Size]byte]bool{}
	}
	for _, m := range msgs {
		s.produced[fingerprint(m.Topic, m)] = true
	}
}

// registerContractCheck runs checkContract when the test ends (t.Cleanup
// runs last-in first-out: before the containers registered earlier go).
func (s *Stack) registerContractCheck() {
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := s.checkContract(ctx); err != nil {
			s.t.Error(err)
		}
	})
}

// findUp returns the path of rel in the working directory or the nearest
// parent that has it (go test runs in the package's directory).
func findUp(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no %s in the working directory or above", rel)
		}
		dir = parent
	}
}
