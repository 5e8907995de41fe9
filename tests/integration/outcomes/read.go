package outcomes

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
)

// fetchMaxBytes bounds one fetch while reading a topic; a record larger
// than this still comes through (the broker always returns at least one).
const fetchMaxBytes = 8 << 20

// ReadTopic returns every record of topic, partition by partition in
// offset order, from the oldest to the end the topic had when ReadTopic
// started. It reads by partition and offset and joins no consumer group,
// so it never disturbs the services' groups.
func ReadTopic(ctx context.Context, cfg kafkaclient.Config, topic string) ([]kafka.Message, error) {
	ends, err := endOffsets(ctx, cfg, topic)
	if err != nil {
		return nil, err
	}
	var (
		mu   sync.Mutex
		all  = map[int][]kafka.Message{}
		errs []error
		wg   sync.WaitGroup
	)
	for p, end := range ends {
		if end.last <= end.first {
			continue
		}
		wg.Go(func() {
			msgs, err := readPartition(ctx, cfg, topic, p, end)
			mu.Lock()
			defer mu.Unlock()
			all[p] = msgs
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out []kafka.Message
	for _, p := range slices.Sorted(maps.Keys(all)) {
		out = append(out, all[p]...)
	}
	return out, nil
}

type offsetRange struct{ first, last int64 } // last is the next offset to be written

func readPartition(ctx context.Context, cfg kafkaclient.Config, topic string, partition int, r offsetRange) ([]kafka.Message, error) {
	reader, err := cfg.NewReader(kafka.ReaderConfig{Topic: topic, Partition: partition, MaxBytes: fetchMaxBytes})
	if err != nil {
		return nil, err
	}
	defer reader.Close()
	if err := reader.SetOffset(r.first); err != nil {
		return nil, fmt.Errorf("read %s/%d: %w", topic, partition, err)
	}
	msgs := make([]kafka.Message, 0, r.last-r.first)
	for {
		m, err := reader.ReadMessage(ctx)
		if err != nil {
			return msgs, fmt.Errorf("read %s/%d at offset %d of %d: %w", topic, partition, len(msgs), r.last, err)
		}
		msgs = append(msgs, m)
		if m.Offset >= r.last-1 {
			return msgs, nil
		}
	}
}

// endOffsets returns the offset range of every partition of topic.
func endOffsets(ctx context.Context, cfg kafkaclient.Config, topic string) (map[int]offsetRange, error) {
	client, done, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	defer done()
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		return nil, fmt.Errorf("metadata of %s: %v", topic, md.Topics)
	}
	var reqs []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
	}
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("offsets of %s: %w", topic, err)
	}
	out := map[int]offsetRange{}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("offsets of %s/%d: %w", topic, po.Partition, po.Error)
		}
		out[po.Partition] = offsetRange{first: po.FirstOffset, last: po.LastOffset}
	}
	return out, nil
}

// Lag returns how many records of topic the consumer group has not
// committed yet, over all partitions. A partition the group never
// committed counts from its first offset.
func Lag(ctx context.Context, cfg kafkaclient.Config, group, topic string) (int64, error) {
	ends, err := endOffsets(ctx, cfg, topic)
	if err != nil {
		return 0, err
	}
	client, done, err := newClient(cfg)
	if err != nil {
		return 0, err
	}
	defer done()
	parts := slices.Sorted(maps.Keys(ends))
	resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return 0, fmt.Errorf("committed offsets of group %s on %s: %w", group, topic, err)
	}
	switch {
	case errors.Is(resp.Error, kafka.GroupIdNotFound):
		// A group that never committed: everything is still to do.
	case resp.Error != nil:
		return 0, fmt.Errorf("committed offsets of group %s on %s: %w", group, topic, resp.Error)
	}
	committed := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return 0, fmt.Errorf("committed offset of group %s on %s/%d: %w", group, topic, p.Partition, p.Error)
		}
		committed[p.Partition] = p.CommittedOffset
	}
	var lag int64
	for p, r := range ends {
		c, ok := committed[p]
		if !ok || c < r.first {
			c = r.first
		}
		lag += max(r.last-c, 0)
	}
	return lag, nil
}

func newClient(cfg kafkaclient.Config) (*kafka.Client, func(), error) {
	t, err := cfg.Transport()
	if err != nil {
		return nil, nil, err
	}
	return &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: t}, t.CloseIdleConnections, nil
}

// Member is one member of a consumer group.
type Member struct {
	MemberID, ClientID string
	// Partitions of the topic asked about, sorted.
	Partitions []int
}

// Assignment returns the partitions of topic each member of the consumer
// group holds right now, by client id. A group in the middle of a
// rebalance may list members without partitions.
func Assignment(ctx context.Context, cfg kafkaclient.Config, group, topic string) (map[string][]int, error) {
	_, members, err := GroupState(ctx, cfg, group, topic)
	if err != nil {
		return nil, err
	}
	out := map[string][]int{}
	for _, m := range members {
		out[m.ClientID] = append(out[m.ClientID], m.Partitions...)
	}
	return out, nil
}

// GroupState returns the consumer group's state (Stable, PreparingRebalance,
// CompletingRebalance, Empty, Dead) and its members with the partitions of
// topic each holds.
func GroupState(ctx context.Context, cfg kafkaclient.Config, group, topic string) (string, []Member, error) {
	client, done, err := newClient(cfg)
	if err != nil {
		return "", nil, err
	}
	defer done()
	resp, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		return "", nil, fmt.Errorf("describe group %s: %w", group, err)
	}
	if len(resp.Groups) != 1 || resp.Groups[0].Error != nil {
		return "", nil, fmt.Errorf("describe group %s: %v", group, resp.Groups)
	}
	var members []Member
	for _, m := range resp.Groups[0].Members {
		mem := Member{MemberID: m.MemberID, ClientID: m.ClientID}
		for _, t := range m.MemberAssignments.Topics {
			if t.Topic == topic {
				mem.Partitions = append(mem.Partitions, t.Partitions...)
			}
		}
		slices.Sort(mem.Partitions)
		members = append(members, mem)
	}
	return resp.Groups[0].GroupState, members, nil
}
