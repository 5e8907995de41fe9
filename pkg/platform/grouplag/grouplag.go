package grouplag

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
)

// Labels are the variable labels of the gauge's Desc, in this order.
var Labels = []string{"topic", "partition"}

// DefaultTimeout bounds the broker requests of one scrape.
const DefaultTimeout = 2 * time.Second

// Config says whose lag to export and under which name.
type Config struct {
	// Kafka is how to reach the brokers (TLS and SASL included).
	Kafka kafkaclient.Config
	// Group and Topic: the consumer group and the topic it consumes.
	Group, Topic string
	// Desc names the gauge; its variable labels must be Labels. It is
	// built by the service so that the name is the service's:
	// prometheus.NewDesc("reefer_manager_consumer_lag", help, grouplag.Labels, nil).
	Desc *prometheus.Desc
	// Timeout bounds one scrape's broker requests. Default DefaultTimeout.
	Timeout time.Duration
	// Log receives the reason a scrape exported nothing. Default: discard.
	Log *slog.Logger
}

// Collector is a prometheus.Collector of one group's lag per partition.
type Collector struct {
	cfg       Config
	client    *kafka.Client
	transport *kafka.Transport
}

// New returns the collector; Close releases its connections.
func New(cfg Config) (*Collector, error) {
	if cfg.Group == "" || cfg.Topic == "" || cfg.Desc == nil {
		return nil, errors.New("grouplag: Group, Topic and Desc are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	t, err := cfg.Kafka.Transport()
	if err != nil {
		return nil, fmt.Errorf("grouplag: %w", err)
	}
	return &Collector{
		cfg:       cfg,
		client:    &kafka.Client{Addr: kafka.TCP(cfg.Kafka.Brokers...), Transport: t, Timeout: cfg.Timeout},
		transport: t,
	}, nil
}

// Close releases the collector's idle connections.
func (c *Collector) Close() { c.transport.CloseIdleConnections() }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.cfg.Desc }

// Collect implements prometheus.Collector: one gauge per partition.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	lags, err := c.Lag(ctx)
	if err != nil {
		c.cfg.Log.Warn("consumer lag not exported this scrape", "group", c.cfg.Group, "topic", c.cfg.Topic, "err", err)
		return
	}
	for p, lag := range lags {
		ch <- prometheus.MustNewConstMetric(c.cfg.Desc, prometheus.GaugeValue, float64(lag), c.cfg.Topic, strconv.Itoa(p))
	}
}

// Lag returns the group's lag per partition of the topic.
func (c *Collector) Lag(ctx context.Context) (map[int]int64, error) {
	meta, err := c.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{c.cfg.Topic}})
	if err != nil {
		return nil, fmt.Errorf("read metadata of %s: %w", c.cfg.Topic, err)
	}
	var ids []int
	for _, t := range meta.Topics {
		if t.Name != c.cfg.Topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("read metadata of %s: %w", c.cfg.Topic, t.Error)
		}
		for _, p := range t.Partitions {
			ids = append(ids, p.ID)
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("topic %s has no partitions", c.cfg.Topic)
	}
	reqs := make([]kafka.OffsetRequest, 0, 2*len(ids))
	for _, id := range ids {
		reqs = append(reqs, kafka.FirstOffsetOf(id), kafka.LastOffsetOf(id))
	}
	offs, err := c.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{c.cfg.Topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s: %w", c.cfg.Topic, err)
	}
	committed, err := c.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: c.cfg.Group, Topics: map[string][]int{c.cfg.Topic: ids}})
	if err != nil {
		return nil, fmt.Errorf("read offsets of group %s: %w", c.cfg.Group, err)
	}
	// A group that never committed: some brokers answer so, Kafka answers
	// offset -1 per partition. Both mean nothing committed.
	if committed.Error != nil && !errors.Is(committed.Error, kafka.GroupIdNotFound) {
		return nil, fmt.Errorf("read offsets of group %s: %w", c.cfg.Group, committed.Error)
	}
	done := map[int]int64{}
	for _, p := range committed.Topics[c.cfg.Topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("read offset of group %s on partition %d: %w", c.cfg.Group, p.Partition, p.Error)
		}
		if p.CommittedOffset >= 0 {
			done[p.Partition] = p.CommittedOffset
		}
	}
	lags := make(map[int]int64, len(ids))
	for _, po := range offs.Topics[c.cfg.Topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("list offsets of %s partition %d: %w", c.cfg.Topic, po.Partition, po.Error)
		}
		// Records below the first retained offset are gone: they are no
		// longer the group's to read.
		from := po.FirstOffset
		if off, ok := done[po.Partition]; ok && off > from {
			from = off
		}
		lags[po.Partition] = max(po.LastOffset-from, 0)
	}
	if len(lags) != len(ids) {
		return nil, fmt.Errorf("list offsets of %s: %d answers for %d partitions", c.cfg.Topic, len(lags), len(ids))
	}
	return lags, nil
}
