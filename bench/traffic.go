package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
)

// orderSource is the CloudEvents source of the orders the bench produces.
const orderSource = "/reefer-dlq/bench"

// orderRecord is an OrderCreated event for id, keyed by it, as the order
// service would write it. Every reefer of the seeded fleet can take it.
func orderRecord(id string, now time.Time) (kafka.Message, error) {
	env, err := events.New(orderSource, events.TypeOrderCreated, id, events.OrderCreated{
		OrderID:              id,
		ProductID:            "P-" + id[len(id)-2:],
		CustomerID:           "C-bench",
		Quantity:             10,
		PickupCity:           "Oakland",
		DestinationCity:      "Shanghai",
		ExpectedDeliveryDate: now.Add(30 * 24 * time.Hour).Format("2006-01-02"),
	}, now)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("order %s: %w", id, err)
	}
	value, err := events.Encode(env)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("order %s: %w", id, err)
	}
	return kafka.Message{Key: []byte(id), Value: value}, nil
}

// orderRecords builds n orders named prefix-0000000...
func orderRecords(prefix string, n int) ([]kafka.Message, error) {
	now := time.Now()
	out := make([]kafka.Message, n)
	for i := range out {
		m, err := orderRecord(fmt.Sprintf("%s-%07d", prefix, i), now)
		if err != nil {
			return nil, err
		}
		out[i] = m
	}
	return out, nil
}

// produceChunk is how many records one WriteMessages call carries.
const produceChunk = 1000

// producer returns a writer for topic tuned for bulk input: large batches,
// the contract's acknowledgements.
func (e *env) producer(topic string) (*kafka.Writer, error) {
	w, err := e.kafka.NewWriter(topic)
	if err != nil {
		return nil, err
	}
	w.BatchSize = produceChunk
	w.BatchBytes = 16 << 20
	return w, nil
}

// produce writes msgs to topic in chunks, two chunks at a time, and returns
// when the broker acknowledged all of them.
func (e *env) produce(ctx context.Context, topic string, msgs []kafka.Message) error {
	w, err := e.producer(topic)
	if err != nil {
		return err
	}
	defer w.Close()
	chunks := slices.Collect(slices.Chunk(msgs, produceChunk))
	errs := make(chan error, len(chunks))
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for _, c := range chunks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs <- w.WriteMessages(ctx, c...)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return fmt.Errorf("produce to %s: %w", topic, err)
		}
	}
	return nil
}

// client returns a kafka-go admin client and its closer.
func (e *env) client() (*kafka.Client, func(), error) {
	t, err := e.kafka.Transport()
	if err != nil {
		return nil, nil, err
	}
	return &kafka.Client{Addr: kafka.TCP(e.kafka.Brokers...), Transport: t, Timeout: 10 * time.Second}, t.CloseIdleConnections, nil
}

// ends returns, per partition, the offset the next record of topic gets.
func ends(ctx context.Context, c *kafka.Client, topic string) (map[int]int64, error) {
	reqs := make([]kafka.OffsetRequest, partitions(topic))
	for p := range reqs {
		reqs[p] = kafka.LastOffsetOf(p)
	}
	resp, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	out := make(map[int]int64, len(reqs))
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("end offset of %s/%d: %w", topic, p.Partition, p.Error)
		}
		out[p.Partition] = p.LastOffset
	}
	return out, nil
}

// committed returns the group's committed offsets of topic per partition
// (-1 where nothing was committed).
func committed(ctx context.Context, c *kafka.Client, group, topic string) (map[int]int64, error) {
	ps := make([]int, partitions(topic))
	for p := range ps {
		ps[p] = p
	}
	resp, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	if err != nil {
		return nil, fmt.Errorf("committed offsets of group %s on %s: %w", group, topic, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("committed offsets of group %s on %s: %w", group, topic, resp.Error)
	}
	out := make(map[int]int64, len(ps))
	for _, p := range resp.Topics[topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out, nil
}

// count returns the number of records in topic (every topic of the run
// starts empty, at offset 0).
func (e *env) count(ctx context.Context, topic string) (int64, error) {
	c, closeClient, err := e.client()
	if err != nil {
		return 0, err
	}
	defer closeClient()
	end, err := ends(ctx, c, topic)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, off := range end {
		n += off
	}
	return n, nil
}

// pollEvery is how often the bench looks at offsets while it waits; it
// bounds the error of a measured duration.
const pollEvery = 20 * time.Millisecond

// waitCommitted waits until group has committed every record of topic,
// including records written to it meanwhile (reefer-manager appends its
// events to the orders topic). With commits after the hand-off, that is
// the moment every record is concluded.
func (e *env) waitCommitted(ctx context.Context, group, topic string, timeout time.Duration) error {
	c, closeClient, err := e.client()
	if err != nil {
		return err
	}
	defer closeClient()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var lastEnds, lastCommitted map[int]int64
	for {
		end, err := ends(ctx, c, topic)
		if err == nil {
			var com map[int]int64
			com, err = committed(ctx, c, group, topic)
			if err == nil {
				lastEnds, lastCommitted = end, com
				if allCommitted(end, com) {
					return nil
				}
			}
		}
		if err != nil && ctx.Err() == nil {
			e.log.Debug("poll offsets", "error", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("group %s had not committed all of %s after %s: committed %v, ends %v",
				group, topic, timeout, lastCommitted, lastEnds)
		case <-time.After(pollEvery):
		}
	}
}

func allCommitted(end, com map[int]int64) bool {
	for p, off := range end {
		if off > 0 && com[p] != off {
			return false
		}
	}
	return true
}

// warmUp produces one order and waits until the group has committed it:
// the group has joined and the consumer runs. Group joins take seconds and
// are no part of any measured rate. msg overrides the warm-up record.
func (e *env) warmUp(ctx context.Context, topic, group string, msg *kafka.Message) error {
	m, err := orderRecord("warmup-"+group+"-00", time.Now())
	if err != nil {
		return err
	}
	if msg != nil {
		m = *msg
	}
	if err := e.produce(ctx, topic, []kafka.Message{m}); err != nil {
		return err
	}
	if err := e.waitCommitted(ctx, group, topic, 2*time.Minute); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	return nil
}

// waitUntil polls cond until it holds.
func waitUntil(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("waiting for %s: %s passed (last error: %w)", what, timeout, lastErr)
			}
			return fmt.Errorf("waiting for %s: %s passed", what, timeout)
		case <-time.After(pollEvery):
		}
	}
}
