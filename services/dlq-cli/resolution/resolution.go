package resolution

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/kafkalog"
)

// DefaultGroup is the consumer group whose offsets mark the low watermark
// of resolved dead letters.
const DefaultGroup = "dlq-redrive"

// Suffix names the resolution log after the dead-letter topic it belongs to.
const Suffix = ".resolutions"

// TopicFor returns the resolution log of a dead-letter topic:
// order-dead-letter -> order-dead-letter.resolutions.
func TopicFor(deadLetterTopic string) string { return deadLetterTopic + Suffix }

// Action says how a dead letter was dealt with.
type Action string

// The actions of the log, plus BelowGroupOffset for letters that are
// resolved because the group's offset passed them.
const (
	// Redriven: a copy was published to the retry topic or the original
	// topic (Entry.Target says where).
	Redriven Action = "redriven"
	// Edited: a corrected copy was published (Entry.Target); the original
	// stays in the topic, resolved.
	Edited Action = "edited"
	// Resolved: a person marked it handled without redriving (Entry.Note
	// says why).
	Resolved Action = "resolved"
	// BelowGroupOffset is not written to the log: Lookup reports it for a
	// letter without an entry whose offset is below the group's offset,
	// e.g. after an operator moved the group with Kafka's own tools.
	BelowGroupOffset Action = "below-group-offset"
)

// Entry is the value of one record of the resolution log, JSON encoded. The
// record's key is the dead letter's "partition:offset".
type Entry struct {
	// DeadLetter is the record that was dealt with.
	DeadLetter kafkalog.Coord `json:"deadLetter"`
	// Action is redriven, edited or resolved.
	Action Action `json:"action"`
	// Note is the person's explanation (resolve --note).
	Note string `json:"note,omitempty"`
	// At is when it happened.
	At time.Time `json:"at"`
	// By is who did it: user@host, or "dlq watch" for the automatic mode.
	By string `json:"by"`
	// Target is where the redriven or edited copy landed.
	Target *kafkalog.Coord `json:"target,omitempty"`
	// RedriveCount is the x-dlq-redrive-count the copy carries.
	RedriveCount int `json:"redriveCount,omitempty"`
	// Identity is the dead letter's deadletter.Letter.Identity: other
	// copies of it are resolved by this entry too (LookupLetter).
	Identity string `json:"identity,omitempty"`
}

// Position returns the dead letter's partition and offset.
func (e Entry) Position() deadletter.Position {
	return deadletter.Position{Partition: e.DeadLetter.Partition, Offset: e.DeadLetter.Offset}
}

// Store reads and writes the resolution log and the group offsets of one
// dead-letter topic.
type Store struct {
	Log *kafkalog.Log
	// Topic is the dead-letter topic.
	Topic string
	// ResolutionsTopic is the resolution log; TopicFor(Topic) by default.
	ResolutionsTopic string
	// Group is the consumer group of the low watermark; DefaultGroup by
	// default.
	Group string
}

// State is what a run knows about resolutions: the log's entries and the
// group's offsets. It is not safe for concurrent use.
type State struct {
	entries map[deadletter.Position]Entry
	// byTarget indexes redriven and edited entries by where the copy
	// landed: a dead letter whose original coordinates are such a target
	// is that copy failing again (Lineage).
	byTarget map[kafkalog.Coord]Entry
	// byIdentity indexes entries by the identity of their dead letter:
	// another copy of it is resolved too.
	byIdentity map[string]Entry
	group      map[int]int64
	// read is the next offset to read per partition of the log; nil while
	// the log topic does not exist.
	read map[int]int64
	// Skipped counts log records that could not be decoded (ignored).
	Skipped int
}

// NewState returns an empty State: nothing resolved.
func NewState() *State {
	return &State{entries: map[deadletter.Position]Entry{}, byTarget: map[kafkalog.Coord]Entry{},
		byIdentity: map[string]Entry{}, group: map[int]int64{}}
}

// Load reads the whole resolution log and the group's offsets on the
// dead-letter partitions. A log topic that does not exist yet means nothing
// was resolved.
func (s Store) Load(ctx context.Context, partitions []int) (*State, error) {
	st := NewState()
	offsets, err := s.Log.GroupOffsets(ctx, s.Group, s.Topic, partitions)
	if err != nil {
		return nil, err
	}
	st.group = offsets
	if err := s.Refresh(ctx, st); err != nil {
		return nil, err
	}
	return st, nil
}

// Refresh reads the entries appended to the log since the last Load or
// Refresh, e.g. by another person's `dlq resolve` while `dlq watch` runs.
func (s Store) Refresh(ctx context.Context, st *State) error {
	parts, err := s.Log.Partitions(ctx, s.ResolutionsTopic)
	if errors.Is(err, kafkalog.ErrTopicNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read resolution log: %w", err)
	}
	if st.read == nil {
		st.read = map[int]int64{}
	}
	for _, p := range parts {
		from := max(st.read[p.ID], p.First)
		err := s.Log.Scan(ctx, s.ResolutionsTopic, p.ID, from, p.End, func(m kafka.Message) error {
			st.apply(m)
			return nil
		})
		if err != nil {
			return fmt.Errorf("read resolution log: %w", err)
		}
		st.read[p.ID] = p.End
	}
	return nil
}

// apply folds one log record into the state: the latest entry for a key
// wins, a tombstone removes it.
func (st *State) apply(m kafka.Message) {
	pos, err := deadletter.ParsePosition(string(m.Key))
	if err != nil {
		st.Skipped++
		return
	}
	if m.Value == nil {
		if old, ok := st.entries[pos]; ok {
			if old.Target != nil {
				delete(st.byTarget, *old.Target)
			}
			if old.Identity != "" && st.byIdentity[old.Identity].DeadLetter == old.DeadLetter {
				delete(st.byIdentity, old.Identity)
			}
		}
		delete(st.entries, pos)
		return
	}
	var e Entry
	if err := json.Unmarshal(m.Value, &e); err != nil || e.Action == "" {
		st.Skipped++
		return
	}
	st.put(pos, e)
}

func (st *State) put(pos deadletter.Position, e Entry) {
	st.entries[pos] = e
	if e.Target != nil {
		st.byTarget[*e.Target] = e
	}
	if e.Identity != "" {
		st.byIdentity[e.Identity] = e
	}
}

// Lineage returns the entry of the redrive whose copy landed at origin: a
// dead letter that names origin as its original coordinates is that copy,
// failing again. It is how the loop guard counts redrives of records whose
// writer drops the consumed record's headers (Kafka Streams, share
// groups), and it names a letter's history in the console.
func (st *State) Lineage(origin kafkalog.Coord) (Entry, bool) {
	if origin.Topic == "" {
		return Entry{}, false
	}
	e, ok := st.byTarget[origin]
	return e, ok
}

// Lookup returns how the dead letter at pos was resolved; false when it is
// pending.
func (st *State) Lookup(pos deadletter.Position) (Entry, bool) {
	if e, ok := st.entries[pos]; ok {
		return e, true
	}
	if g, ok := st.group[pos.Partition]; ok && pos.Offset < g {
		return Entry{Action: BelowGroupOffset}, true
	}
	return Entry{}, false
}

// LookupLetter is Lookup for a letter, which also finds the entry of
// another copy of the same dead letter (same deadletter.Letter.Identity):
// its Entry.DeadLetter then names that copy.
func (st *State) LookupLetter(l deadletter.Letter) (Entry, bool) {
	if e, ok := st.Lookup(l.Position()); ok {
		return e, true
	}
	return st.lookupIdentity(l.Identity())
}

func (st *State) lookupIdentity(id string) (Entry, bool) {
	if id == "" {
		return Entry{}, false
	}
	e, ok := st.byIdentity[id]
	return e, ok
}

// ResolvedAt is ResolvedLetter for a letter known by its position and
// identity only.
func (st *State) ResolvedAt(pos deadletter.Position, identity string) bool {
	if st.Resolved(pos) {
		return true
	}
	_, ok := st.lookupIdentity(identity)
	return ok
}

// ResolvedLetter reports whether the letter, or another copy of its dead
// letter, was dealt with.
func (st *State) ResolvedLetter(l deadletter.Letter) bool {
	_, ok := st.LookupLetter(l)
	return ok
}

// Resolved reports whether the dead letter at pos was dealt with.
func (st *State) Resolved(pos deadletter.Position) bool {
	_, ok := st.Lookup(pos)
	return ok
}

// GroupOffset returns the group's committed offset on partition, if any.
func (st *State) GroupOffset(partition int) (int64, bool) {
	g, ok := st.group[partition]
	return g, ok
}

// Len is the number of entries in the log (not counting letters resolved
// only by the group offset).
func (st *State) Len() int { return len(st.entries) }

// logPartitions is the partition count of a new resolution log. One is
// plenty: it holds one small record per resolved dead letter.
const logPartitions = 1

// Ensure creates the resolution log as a compacted topic unless it exists.
// Writers call it before their first Record.
func (s Store) Ensure(ctx context.Context) error {
	err := s.Log.EnsureTopic(ctx, s.ResolutionsTopic, logPartitions, map[string]string{
		"cleanup.policy": "compact",
	})
	if err != nil {
		return fmt.Errorf("create resolution log: %w", err)
	}
	return nil
}

// Record appends entries to the log, waits for the acknowledgement and adds
// them to st. On error st keeps only the entries that were written.
func (s Store) Record(ctx context.Context, st *State, entries []Entry) error {
	msgs := make([]kafka.Message, len(entries))
	for i, e := range entries {
		value, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode resolution of %s: %w", e.DeadLetter, err)
		}
		msgs[i] = kafka.Message{Key: []byte(e.Position().String()), Value: value, Time: e.At}
	}
	coords, err := s.Log.Append(ctx, s.ResolutionsTopic, msgs)
	for i, c := range coords {
		if c.Offset >= 0 {
			st.put(entries[i].Position(), entries[i])
		}
	}
	if err != nil {
		return fmt.Errorf("record resolutions: %w", err)
	}
	return nil
}

// Commit moves the group's offsets forward to offsets; a partition whose
// offset would not move forward is left alone, so concurrent runs never
// move the watermark back.
func (s Store) Commit(ctx context.Context, st *State, offsets map[int]int64) error {
	forward := make(map[int]int64, len(offsets))
	for p, o := range offsets {
		if g, ok := st.group[p]; !ok || o > g {
			forward[p] = o
		}
	}
	if err := s.Log.CommitGroup(ctx, s.Group, s.Topic, forward); err != nil {
		return err
	}
	for p, o := range forward {
		st.group[p] = o
	}
	return nil
}
