package kafkalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
)

// ErrTopicNotFound is returned (wrapped, with the topic's name) when a topic
// the caller needs does not exist.
var ErrTopicNotFound = errors.New("topic does not exist")

// requestTimeout bounds every request, so that a broker that stops
// answering in the middle of a run fails the run instead of hanging it.
const requestTimeout = 30 * time.Second

// fetchMaxBytes bounds one fetch response. Large enough that a scan is a few
// round trips per partition, small enough to stay cheap in memory.
const fetchMaxBytes = 8 << 20

// Log reads and appends to topics by partition and offset. It is safe for
// concurrent use. Close releases its connections.
type Log struct {
	client   *kafka.Client
	close    func() // releases the client's connections
	brokers  []string
	balancer kafka.Balancer

	mu         sync.Mutex
	partitions map[string]cachedIDs // topic -> partition ids, for Append
}

// cachedIDs are a topic's partition ids as last read.
type cachedIDs struct {
	ids  []int
	read time.Time
}

// partitionTTL bounds how long Append trusts the partition ids it read: a
// topic may gain partitions, and a long watch should notice.
const partitionTTL = time.Minute

// Open returns a Log over the brokers, TLS and SASL settings of cfg.
func Open(cfg kafkaclient.Config) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafka configuration: %w", err)
	}
	client, closeClient, err := cfg.Client(requestTimeout)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return &Log{
		client:  client,
		close:   closeClient,
		brokers: slices.Clone(cfg.Brokers),
		// The balancer kafkaclient's writers use: a record redriven by the
		// CLI lands on the partition a service would have chosen for its key.
		balancer:   &kafka.Hash{},
		partitions: map[string]cachedIDs{},
	}, nil
}

// Close releases the connections and the metadata goroutine of the Log.
func (l *Log) Close() { l.close() }

// Brokers returns the bootstrap brokers, for error messages.
func (l *Log) Brokers() []string { return slices.Clone(l.brokers) }

// Ping asks a broker for the cluster's brokers. ctx bounds it.
func (l *Log) Ping(ctx context.Context) error {
	resp, err := l.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}})
	if err != nil {
		return fmt.Errorf("read cluster metadata: %w", err)
	}
	if len(resp.Brokers) == 0 {
		return errors.New("read cluster metadata: it lists no brokers")
	}
	return nil
}

// Partition is one partition of a topic and the offsets it holds: records
// First up to End-1. End is the offset the next record will get (the high
// watermark), so First == End means the partition is empty.
type Partition struct {
	ID    int
	First int64
	End   int64
}

// Partitions returns every partition of topic with its first and end
// offsets, ordered by partition id. A missing topic gives an error wrapping
// ErrTopicNotFound.
func (l *Log) Partitions(ctx context.Context, topic string) ([]Partition, error) {
	ids, err := l.partitionIDs(ctx, topic)
	if err != nil {
		return nil, err
	}
	reqs := make([]kafka.OffsetRequest, 0, 2*len(ids))
	for _, id := range ids {
		reqs = append(reqs, kafka.FirstOffsetOf(id), kafka.LastOffsetOf(id))
	}
	resp, err := l.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	byID := make(map[int]kafka.PartitionOffsets, len(ids))
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("list offsets of %s partition %d: %w", topic, po.Partition, po.Error)
		}
		byID[po.Partition] = po
	}
	parts := make([]Partition, 0, len(ids))
	for _, id := range ids {
		po, ok := byID[id]
		if !ok {
			return nil, fmt.Errorf("list offsets of %s: no answer for partition %d", topic, id)
		}
		parts = append(parts, Partition{ID: id, First: po.FirstOffset, End: po.LastOffset})
	}
	return parts, nil
}

// partitionIDs returns the sorted partition ids of topic.
func (l *Log) partitionIDs(ctx context.Context, topic string) ([]int, error) {
	resp, err := l.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("read metadata of %s from %v: %w", topic, l.brokers, err)
	}
	for _, t := range resp.Topics {
		if t.Name != topic {
			continue
		}
		if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
			return nil, fmt.Errorf("%s: %w", topic, ErrTopicNotFound)
		}
		if t.Error != nil {
			return nil, fmt.Errorf("read metadata of %s: %w", topic, t.Error)
		}
		ids := make([]int, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			ids = append(ids, p.ID)
		}
		if len(ids) == 0 {
			return nil, fmt.Errorf("%s: %w", topic, ErrTopicNotFound)
		}
		slices.Sort(ids)
		return ids, nil
	}
	return nil, fmt.Errorf("%s: %w", topic, ErrTopicNotFound)
}

// cachedPartitionIDs is partitionIDs remembered for partitionTTL, so that
// Append does not cost a metadata round trip per batch.
func (l *Log) cachedPartitionIDs(ctx context.Context, topic string) ([]int, error) {
	l.mu.Lock()
	c, ok := l.partitions[topic]
	l.mu.Unlock()
	if ok && time.Since(c.read) < partitionTTL {
		return c.ids, nil
	}
	ids, err := l.partitionIDs(ctx, topic)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.partitions[topic] = cachedIDs{ids: ids, read: time.Now()}
	l.mu.Unlock()
	return ids, nil
}

// Scan calls fn for every record of topic's partition with from <= offset <
// to, in offset order. The Message passed to fn owns its byte slices. Scan
// stops at the first error fn returns and returns it unwrapped, so a caller
// can stop a scan early with a sentinel error of its own.
func (l *Log) Scan(ctx context.Context, topic string, partition int, from, to int64, fn func(kafka.Message) error) error {
	offset := from
	for offset < to {
		resp, err := l.client.Fetch(ctx, &kafka.FetchRequest{
			Topic:     topic,
			Partition: partition,
			Offset:    offset,
			MinBytes:  1,
			MaxBytes:  fetchMaxBytes,
			MaxWait:   250 * time.Millisecond,
		})
		if err != nil {
			return fmt.Errorf("fetch %s partition %d at offset %d: %w", topic, partition, offset, err)
		}
		if resp.Error != nil {
			return fmt.Errorf("fetch %s partition %d at offset %d: %w", topic, partition, offset, resp.Error)
		}
		next, err := readRecords(resp.Records, topic, partition, offset, to, fn)
		if err != nil {
			return err
		}
		if next == offset {
			// Nothing at or after offset below the end we were given: the
			// records were deleted (retention) or the end moved back.
			if resp.HighWatermark <= offset {
				return nil
			}
			if resp.LogStartOffset > offset {
				next = resp.LogStartOffset
			} else {
				return fmt.Errorf("fetch %s partition %d at offset %d: no record returned below the high watermark %d", topic, partition, offset, resp.HighWatermark)
			}
		}
		offset = next
	}
	return nil
}

// readRecords hands the records of one fetch response in [offset, to) to fn
// and returns the offset to fetch next.
func readRecords(rr kafka.RecordReader, topic string, partition int, offset, to int64, fn func(kafka.Message) error) (int64, error) {
	next := offset
	for {
		rec, err := rr.ReadRecord()
		if errors.Is(err, io.EOF) {
			return next, nil
		}
		if err != nil {
			return next, fmt.Errorf("decode records of %s partition %d near offset %d: %w", topic, partition, next, err)
		}
		// A fetch may start at the beginning of a batch before offset.
		if rec.Offset < offset {
			continue
		}
		if rec.Offset >= to {
			return to, nil
		}
		msg, err := toMessage(topic, partition, rec)
		if err != nil {
			return next, err
		}
		next = rec.Offset + 1
		if err := fn(msg); err != nil {
			return next, err
		}
	}
}

// toMessage copies a fetched record out of the response's buffers.
func toMessage(topic string, partition int, rec *kafka.Record) (kafka.Message, error) {
	msg := kafka.Message{Topic: topic, Partition: partition, Offset: rec.Offset, Time: rec.Time}
	var err error
	if rec.Key != nil {
		if msg.Key, err = kafka.ReadAll(rec.Key); err != nil {
			return msg, fmt.Errorf("read key of %s %d:%d: %w", topic, partition, rec.Offset, err)
		}
	}
	if rec.Value != nil {
		if msg.Value, err = kafka.ReadAll(rec.Value); err != nil {
			return msg, fmt.Errorf("read value of %s %d:%d: %w", topic, partition, rec.Offset, err)
		}
	}
	if len(rec.Headers) > 0 {
		msg.Headers = make([]kafka.Header, len(rec.Headers))
		for i, h := range rec.Headers {
			msg.Headers[i] = kafka.Header{Key: h.Key, Value: slices.Clone(h.Value)}
		}
	}
	return msg, nil
}

// Coord names one record: topic, partition and offset.
type Coord struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
}

// String formats the coordinates as topic/partition:offset.
func (c Coord) String() string { return fmt.Sprintf("%s/%d:%d", c.Topic, c.Partition, c.Offset) }

// Append writes msgs to topic and waits until every in-sync replica has
// them. Each message goes to the partition its key hashes to (the services'
// writers do the same) and keeps its own Time (zero means now). It returns
// where each message landed, in the order of msgs.
//
// A partial failure is possible: some partitions may have taken their
// records while another refused. The returned coordinates then have
// Offset -1 for each record that was not written, and the error says why.
func (l *Log) Append(ctx context.Context, topic string, msgs []kafka.Message) ([]Coord, error) {
	coords := make([]Coord, len(msgs))
	for i := range coords {
		coords[i] = Coord{Topic: topic, Partition: -1, Offset: -1}
	}
	if len(msgs) == 0 {
		return coords, nil
	}
	ids, err := l.cachedPartitionIDs(ctx, topic)
	if err != nil {
		return coords, err
	}
	byPartition := make(map[int][]int) // partition -> indexes into msgs
	for i, m := range msgs {
		p := l.balancer.Balance(m, ids...)
		byPartition[p] = append(byPartition[p], i)
		coords[i].Partition = p
	}

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	now := time.Now()
	for p, idx := range byPartition {
		wg.Go(func() {
			offsets, err := l.produce(ctx, topic, p, msgs, idx, now)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			for n, i := range idx {
				coords[i].Offset = offsets[n]
			}
		})
	}
	wg.Wait()
	return coords, errors.Join(errs...)
}

// AppendTo writes msgs to one partition of topic, waits until every
// in-sync replica has them, and returns the offset of the first; the others
// follow it.
func (l *Log) AppendTo(ctx context.Context, topic string, partition int, msgs []kafka.Message) (int64, error) {
	idx := make([]int, len(msgs))
	for i := range idx {
		idx[i] = i
	}
	offsets, err := l.produce(ctx, topic, partition, msgs, idx, time.Now())
	if err != nil {
		return 0, err
	}
	if len(offsets) == 0 {
		return 0, nil
	}
	return offsets[0], nil
}

// maxRequestBytes bounds the records of one produce request, below the
// broker's default message.max.bytes (1 MiB), which limits a record batch.
const maxRequestBytes = 900 << 10

// produce writes the messages msgs[idx...] to one partition, in requests of
// at most maxRequestBytes, one after the other so that their order holds.
// It returns the offset of each (-1 for those not written: a failed request
// stops the rest).
func (l *Log) produce(ctx context.Context, topic string, partition int, msgs []kafka.Message, idx []int, now time.Time) ([]int64, error) {
	offsets := make([]int64, len(idx))
	for i := range offsets {
		offsets[i] = -1
	}
	for start := 0; start < len(idx); {
		end, size := start, 0
		for end < len(idx) && (end == start || size+recordSize(msgs[idx[end]]) <= maxRequestBytes) {
			size += recordSize(msgs[idx[end]])
			end++
		}
		records := make([]kafka.Record, 0, end-start)
		for _, i := range idx[start:end] {
			m := msgs[i]
			t := m.Time
			if t.IsZero() {
				t = now
			}
			records = append(records, kafka.Record{Time: t, Key: kafka.NewBytes(m.Key), Value: kafka.NewBytes(m.Value), Headers: m.Headers})
		}
		resp, err := l.client.Produce(ctx, &kafka.ProduceRequest{
			Topic:        topic,
			Partition:    partition,
			RequiredAcks: kafka.RequireAll,
			Records:      kafka.NewRecordReader(records...),
		})
		if err == nil {
			err = resp.Error
		}
		if err == nil && len(resp.RecordErrors) > 0 {
			err = fmt.Errorf("%d records refused: %v", len(resp.RecordErrors), resp.RecordErrors)
		}
		if err != nil {
			return offsets, fmt.Errorf("produce %d records to %s partition %d: %w", end-start, topic, partition, err)
		}
		for n := start; n < end; n++ {
			offsets[n] = resp.BaseOffset + int64(n-start)
		}
		start = end
	}
	return offsets, nil
}

// recordSize estimates the bytes a message takes in a record batch.
func recordSize(m kafka.Message) int {
	n := len(m.Key) + len(m.Value) + 24 // varint lengths, timestamp and offset deltas
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value) + 4
	}
	return n
}

// GroupOffsets returns the offsets group has committed for the partitions
// of topic; a partition without a committed offset is absent from the map.
// It reads them without joining the group.
func (l *Log) GroupOffsets(ctx context.Context, group, topic string, partitions []int) (map[int]int64, error) {
	resp, err := l.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: partitions}})
	if err != nil {
		return nil, fmt.Errorf("read offsets of group %s on %s: %w", group, topic, err)
	}
	out := make(map[int]int64, len(partitions))
	if errors.Is(resp.Error, kafka.GroupIdNotFound) {
		// Some brokers answer so for a group that never committed; Kafka
		// itself answers offset -1. Both mean: nothing committed.
		return out, nil
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("read offsets of group %s on %s: %w", group, topic, resp.Error)
	}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("read offset of group %s on %s partition %d: %w", group, topic, p.Partition, p.Error)
		}
		if p.CommittedOffset >= 0 {
			out[p.Partition] = p.CommittedOffset
		}
	}
	return out, nil
}

// CommitGroup commits offsets (partition -> next offset to process) for
// group on topic as a standalone commit: generation -1 and no member id,
// which Kafka accepts for a group with no active members. The CLI never
// joins the group, so it never takes partitions from anyone.
func (l *Log) CommitGroup(ctx context.Context, group, topic string, offsets map[int]int64) error {
	if len(offsets) == 0 {
		return nil
	}
	commits := make([]kafka.OffsetCommit, 0, len(offsets))
	for p, o := range offsets {
		commits = append(commits, kafka.OffsetCommit{Partition: p, Offset: o})
	}
	slices.SortFunc(commits, func(a, b kafka.OffsetCommit) int { return a.Partition - b.Partition })
	resp, err := l.client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{
		GroupID:      group,
		GenerationID: -1,
		Topics:       map[string][]kafka.OffsetCommit{topic: commits},
	})
	if err != nil {
		return fmt.Errorf("commit offsets of group %s on %s: %w", group, topic, err)
	}
	var errs []error
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			errs = append(errs, fmt.Errorf("commit offset of group %s on %s partition %d: %w", group, topic, p.Partition, p.Error))
		}
	}
	return errors.Join(errs...)
}

// EnsureTopic creates topic with the partition count and configs (e.g.
// cleanup.policy=compact) unless it exists; an existing topic is left as it
// is. It returns once the new topic is visible in the cluster's metadata.
func (l *Log) EnsureTopic(ctx context.Context, topic string, partitions int, configs map[string]string) error {
	if _, err := l.partitionIDs(ctx, topic); err == nil {
		return nil
	} else if !errors.Is(err, ErrTopicNotFound) {
		return err
	}
	entries := make([]kafka.ConfigEntry, 0, len(configs))
	for k, v := range configs {
		entries = append(entries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
	}
	if err := kafkaclient.CreateTopics(ctx, l.client, kafka.TopicConfig{
		Topic:             topic,
		NumPartitions:     partitions,
		ReplicationFactor: -1, // the broker's default
		ConfigEntries:     entries,
	}); err != nil {
		return err
	}
	// Metadata is eventually consistent: wait until the topic shows up so
	// that the first append does not fail with "unknown topic".
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := l.partitionIDs(ctx, topic)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrTopicNotFound) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for new topic %s: %w", topic, ctx.Err())
		case <-tick.C:
		}
	}
}
