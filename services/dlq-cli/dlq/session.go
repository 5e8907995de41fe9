package dlq

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/filter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/kafkalog"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/render"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/resolution"
)

// session is an open connection to the cluster with what every command
// needs first: the dead-letter topic's partitions and the resolution state.
type session struct {
	log   *kafkalog.Log
	store resolution.Store
	parts []kafkalog.Partition
	state *resolution.State
	// dialect is --dialect: auto, or the dialect every record is read as.
	dialect deadletter.Dialect
}

// decode reads a record of the dead-letter topic as a Letter. The loop
// guard's count is the larger of what the record says
// (x-dlq-redrive-count) and what the resolution log knows: a copy that
// dlq redrove and that came back dead-lettered by a writer that drops the
// consumed record's headers still counts its redrives.
func (s *session) decode(m kafka.Message) deadletter.Letter {
	l := deadletter.Decode(m, s.dialect)
	if e, ok := s.state.Lineage(l.Origin()); ok {
		l.Meta.RedriveCount = max(l.Meta.RedriveCount, e.RedriveCount)
	}
	return l
}

// open connects and reads the partitions and the resolution state, all
// within --timeout, so that an unreachable broker is reported in bounded
// time with a message that says what to check.
func (a *app) open(ctx context.Context) (*session, error) {
	log, err := kafkalog.Open(a.kafkaConfig())
	if err != nil {
		return nil, usageError{err}
	}
	s := &session{log: log, dialect: a.g.dialect, store: resolution.Store{
		Log:              log,
		Topic:            a.g.topic,
		ResolutionsTopic: a.g.resolutionsTopic,
		Group:            a.g.group,
	}}
	cctx, cancel := context.WithTimeout(ctx, a.g.timeout)
	defer cancel()
	if err := log.Ping(cctx); err != nil {
		log.Close()
		within := ""
		if cctx.Err() != nil && ctx.Err() == nil {
			within = fmt.Sprintf(" within %s (--timeout)", a.g.timeout)
		}
		return nil, fmt.Errorf("cannot reach Kafka at %s%s: %w; check --brokers or KAFKA_BROKERS and that the brokers are up",
			strings.Join(a.g.brokers, ","), within, err)
	}
	if err := s.start(cctx); err != nil {
		log.Close()
		return nil, err
	}
	return s, nil
}

func (s *session) start(ctx context.Context) error {
	parts, err := s.log.Partitions(ctx, s.store.Topic)
	if errors.Is(err, kafkalog.ErrTopicNotFound) {
		return fmt.Errorf("dead-letter topic %q does not exist on %s: check --topic or DLQ_TOPIC (the services create it at start)",
			s.store.Topic, strings.Join(s.log.Brokers(), ","))
	}
	if err != nil {
		return err
	}
	s.parts = parts
	ids := make([]int, len(parts))
	for i, p := range parts {
		ids[i] = p.ID
	}
	s.state, err = s.store.Load(ctx, ids)
	return err
}

func (s *session) close() { s.log.Close() }

// item pairs a letter with its resolution in the session's state.
func (s *session) item(l deadletter.Letter) render.Item {
	it := render.Item{Letter: l}
	if e, ok := s.state.LookupLetter(l); ok {
		it.Resolution = &e
	}
	return it
}

// errLimit stops a scan once --limit letters matched.
var errLimit = errors.New("limit reached")

// partScan is what reading one partition found.
type partScan struct {
	items   []render.Item
	pending []int64 // offsets of every pending record seen, for the cursor
	end     int64   // read up to here (exclusive)
}

// selectItems reads the letters that f matches, in partition then offset
// order. Partitions are read concurrently: a large queue is mostly waiting
// for fetch responses.
//
// With a cursor (commands that resolve letters), every partition is read
// from the group's offset on and every record is shown to the cursor, so
// that the watermark it computes never passes a record the run did not
// see. Without one (commands that only read), reading starts where f can
// first match: --from-offset, and for --status pending the group's offset.
func (s *session) selectItems(ctx context.Context, f filter.Filter, cursor *resolution.Cursor) ([]render.Item, error) {
	if f.Partition >= 0 && !s.hasPartition(f.Partition) {
		return nil, usagef("--partition %d: topic %s has partitions %s", f.Partition, s.store.Topic, s.partitionList())
	}
	var parts []kafkalog.Partition
	for _, p := range s.parts {
		if f.WantsPartition(p.ID) {
			parts = append(parts, p)
		}
	}
	scans := make([]partScan, len(parts))
	g, gctx := errgroup.WithContext(ctx)
	for i, p := range parts {
		g.Go(func() error {
			var err error
			scans[i], err = s.scanPartition(gctx, p, f, cursor != nil)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var items []render.Item
	for i, sc := range scans {
		if cursor != nil {
			for _, o := range sc.pending {
				cursor.Observe(deadletter.Position{Partition: parts[i].ID, Offset: o}, false)
			}
			cursor.ScannedTo(parts[i].ID, sc.end)
		}
		items = append(items, sc.items...)
	}
	// Each partition stopped at the limit on its own; the limit counts in
	// partition order. Letters read beyond it stay pending, which the
	// cursor knows: the watermark cannot pass them.
	if f.Limit > 0 && len(items) > f.Limit {
		items = items[:f.Limit]
	}
	return items, nil
}

// scanPartition reads one partition for selectItems. It only reads the
// session's state, so partitions can be scanned concurrently.
func (s *session) scanPartition(ctx context.Context, p kafkalog.Partition, f filter.Filter, forCursor bool) (partScan, error) {
	group, hasGroup := s.state.GroupOffset(p.ID)
	start := p.First
	switch {
	case forCursor:
		if hasGroup {
			start = max(start, group)
		}
	default:
		start = max(start, f.FromOffset)
		if f.Status == filter.Pending && hasGroup {
			start = max(start, group)
		}
	}
	sc := partScan{end: p.End}
	err := s.log.Scan(ctx, s.store.Topic, p.ID, start, p.End, func(m kafka.Message) error {
		l := s.decode(m)
		it := s.item(l)
		if forCursor && it.Resolution == nil {
			sc.pending = append(sc.pending, l.Coord.Offset)
		}
		if f.Match(l, it.Resolution != nil) {
			sc.items = append(sc.items, it)
			if f.Limit > 0 && len(sc.items) >= f.Limit {
				sc.end = l.Coord.Offset + 1
				return errLimit
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errLimit) {
		return sc, err
	}
	return sc, nil
}

func (s *session) hasPartition(id int) bool {
	for _, p := range s.parts {
		if p.ID == id {
			return true
		}
	}
	return false
}

func (s *session) partitionList() string {
	ids := make([]string, len(s.parts))
	for i, p := range s.parts {
		ids[i] = fmt.Sprint(p.ID)
	}
	return strings.Join(ids, ", ")
}

// letters returns the letters of items.
func letters(items []render.Item) []deadletter.Letter {
	out := make([]deadletter.Letter, len(items))
	for i, it := range items {
		out[i] = it.Letter
	}
	return out
}
