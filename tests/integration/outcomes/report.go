package outcomes

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/admin"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/store"
)

// Topics names the four topics of the contract.
type Topics struct {
	Orders, Containers, Retry, DeadLetter string
}

// Sources is where Collect looks.
type Sources struct {
	// Kafka reaches the broker from the test process.
	Kafka  kafkaclient.Config
	Topics Topics
	// DatabaseURL is the reefer database as the test process reaches it;
	// empty skips the database.
	DatabaseURL string
	// Inventory is the admin client of the inventory mock; nil skips the
	// inventory.
	Inventory *admin.Client
}

// State is where an order ended.
type State string

// The states. Allocated, Rejected and DeadLettered are terminal.
const (
	Pending      State = "pending" // no outcome anywhere: lost, or still in flight
	Allocated    State = "allocated"
	Rejected     State = "rejected"
	DeadLettered State = "dead-lettered"
)

// Hop is one record of an order on the retry or dead-letter topic.
type Hop struct {
	Partition int
	Offset    int64
	// Meta is the parsed retry metadata; HeaderErr says why it could not
	// be parsed (garbage headers written on purpose, for example).
	Meta      retrymeta.Meta
	HeaderErr error
	Value     []byte
}

// Order is everything the sources say about one order.
type Order struct {
	ID string
	// Created counts the OrderCreated records on the orders topic.
	Created int
	// Containers are the distinct reefers named by ContainerAllocated
	// records, in the order first seen. More than one is a double
	// allocation: event ids cannot show it, they depend on the order only.
	Containers []string
	// Assigned are the distinct reefers of ContainerAssignedToOrder records.
	Assigned []string
	// Rejections counts the distinct OrderRejected events; Reason is the
	// first one's.
	Rejections int
	Reason     string
	Retries    []Hop
	// DeadLetters are the order's records on the dead-letter topic.
	DeadLetters []Hop
	// DBContainer is the reefer of the order's allocation row ("" none).
	DBContainer string
	// InventoryContainers are the containers the inventory holds for the
	// order (nil when the inventory was not read).
	InventoryContainers []string
}

// State is the order's terminal state. An allocation wins over a dead
// letter: a dead letter redriven later can end allocated (Problems tells
// such an order from one that really ended twice).
func (o *Order) State() State {
	switch {
	case len(o.Containers) > 0:
		return Allocated
	case o.Rejections > 0:
		return Rejected
	case len(o.DeadLetters) > 0:
		return DeadLettered
	}
	return Pending
}

// Reason is the dead-letter reason of the order's latest dead letter ("").
func (o *Order) DeadLetterReason() retrymeta.Reason {
	if len(o.DeadLetters) == 0 {
		return ""
	}
	return o.DeadLetters[len(o.DeadLetters)-1].Meta.DLQReason
}

// Redriven reports whether a dead letter of the order was redriven by dlq.
func (o *Order) Redriven() bool {
	for _, h := range o.Retries {
		if h.Meta.RedriveCount > 0 {
			return true
		}
	}
	return false
}

// Report is the outcome of every order the sources mention.
type Report struct {
	Orders map[string]*Order
	// Duplicates counts, by event type, records dropped because an event
	// with the same id had been read already (at-least-once delivery).
	Duplicates map[string]int
	// Foreign counts records on the orders and containers topics that are
	// not events of the contract (the poison the tests write), by key.
	Foreign map[string]int
	// inventoryRead and databaseRead say whether those sources were read.
	inventoryRead, databaseRead bool
}

// Collect reads all four topics to their current end, the allocations of
// the database and the containers of the inventory, and joins them by
// order id.
func Collect(ctx context.Context, src Sources) (*Report, error) {
	r := &Report{Orders: map[string]*Order{}, Duplicates: map[string]int{}, Foreign: map[string]int{}}
	seen := map[string]bool{}

	for _, topic := range []string{src.Topics.Orders, src.Topics.Containers} {
		msgs, err := ReadTopic(ctx, src.Kafka, topic)
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			r.addEvent(m, seen)
		}
	}
	for _, t := range []struct {
		topic string
		add   func(*Order, Hop)
	}{
		{src.Topics.Retry, func(o *Order, h Hop) { o.Retries = append(o.Retries, h) }},
		{src.Topics.DeadLetter, func(o *Order, h Hop) { o.DeadLetters = append(o.DeadLetters, h) }},
	} {
		msgs, err := ReadTopic(ctx, src.Kafka, t.topic)
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			meta, herr := retrymeta.Parse(m.Headers)
			t.add(r.order(string(m.Key)), Hop{Partition: m.Partition, Offset: m.Offset, Meta: meta, HeaderErr: herr, Value: m.Value})
		}
	}
	if src.DatabaseURL != "" {
		if err := r.addDatabase(ctx, src.DatabaseURL); err != nil {
			return nil, err
		}
	}
	if src.Inventory != nil {
		containers, err := src.Inventory.Containers(ctx, store.Allocated)
		if err != nil {
			return nil, fmt.Errorf("inventory containers: %w", err)
		}
		r.inventoryRead = true
		for _, c := range containers {
			o := r.order(c.OrderID)
			o.InventoryContainers = append(o.InventoryContainers, c.ContainerID)
		}
	}
	return r, nil
}

func (r *Report) addEvent(m kafka.Message, seen map[string]bool) {
	env, err := events.Decode(m.Value)
	if err != nil {
		r.Foreign[string(m.Key)]++
		return
	}
	if seen[env.ID] {
		r.Duplicates[env.Type]++
		// Not skipped for the container: the id depends on the order and
		// the type only, so a second allocation to another reefer has the
		// same id and would go unseen.
		if env.Type == events.TypeContainerAllocated || env.Type == events.TypeContainerAssignedToOrder {
			r.addAllocation(env)
		}
		return
	}
	seen[env.ID] = true
	switch env.Type {
	case events.TypeOrderCreated:
		r.order(env.Subject).Created++
	case events.TypeOrderRejected:
		o := r.order(env.Subject)
		if d, err := events.DecodeData[events.OrderRejected](env); err == nil && o.Rejections == 0 {
			o.Reason = d.Reason
		}
		o.Rejections++
	default:
		r.addAllocation(env)
	}
}

func (r *Report) addAllocation(env events.Envelope) {
	o := r.order(env.Subject)
	switch env.Type {
	case events.TypeContainerAllocated:
		if d, err := events.DecodeData[events.ContainerAllocated](env); err == nil && !slices.Contains(o.Containers, d.ContainerID) {
			o.Containers = append(o.Containers, d.ContainerID)
		}
	case events.TypeContainerAssignedToOrder:
		if d, err := events.DecodeData[events.ContainerAssignedToOrder](env); err == nil && !slices.Contains(o.Assigned, d.ContainerID) {
			o.Assigned = append(o.Assigned, d.ContainerID)
		}
	}
}

// addDatabase reads the allocations table of pkg/reefer/reeferstore: one row per
// order, the order id its primary key.
func (r *Report) addDatabase(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect to the reefer database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT order_id, container_id FROM allocations`)
	if err != nil {
		return fmt.Errorf("read allocations: %w", err)
	}
	var orderID, containerID string
	_, err = pgx.ForEachRow(rows, []any{&orderID, &containerID}, func() error {
		r.order(orderID).DBContainer = containerID
		return nil
	})
	if err != nil {
		return fmt.Errorf("read allocations: %w", err)
	}
	r.databaseRead = true
	return nil
}

func (r *Report) order(id string) *Order {
	o, ok := r.Orders[id]
	if !ok {
		o = &Order{ID: id}
		r.Orders[id] = o
	}
	return o
}

// Order returns what the report knows of order id; an order no source
// mentions is Pending.
func (r *Report) Order(id string) *Order {
	if o, ok := r.Orders[id]; ok {
		return o
	}
	return &Order{ID: id}
}

// States groups the orders ids by state.
func (r *Report) States(ids []string) map[State][]string {
	out := map[State][]string{}
	for _, id := range ids {
		s := r.Order(id).State()
		out[s] = append(out[s], id)
	}
	return out
}

// DeadLetterReasons groups the dead-lettered orders of ids by the reason of
// their latest dead letter.
func (r *Report) DeadLetterReasons(ids []string) map[retrymeta.Reason][]string {
	out := map[retrymeta.Reason][]string{}
	for _, id := range ids {
		if o := r.Order(id); o.State() == DeadLettered {
			out[o.DeadLetterReason()] = append(out[o.DeadLetterReason()], id)
		}
	}
	return out
}

// Problems lists every inconsistency among the orders ids, whatever the
// scenario: an order allocated to two reefers, events that disagree, an
// allocation the database or the inventory does not hold, an order in two
// terminal states (a dead letter that was not redriven next to an
// allocation or a rejection), and a reefer allocated to two orders.
func (r *Report) Problems(ids []string) []Problem {
	var out []Problem
	add := func(id, format string, args ...any) {
		out = append(out, Problem{OrderID: id, Text: fmt.Sprintf(format, args...)})
	}
	owners := map[string][]string{}
	for _, id := range ids {
		o := r.Order(id)
		if len(o.Containers) > 1 {
			add(id, "allocated to %d reefers %v", len(o.Containers), o.Containers)
		}
		for _, c := range o.Containers {
			owners[c] = append(owners[c], id)
		}
		switch o.State() {
		case Allocated:
			if !slices.Equal(o.Assigned, o.Containers) {
				add(id, "ContainerAllocated names %v but ContainerAssignedToOrder %v", o.Containers, o.Assigned)
			}
			if r.databaseRead && o.DBContainer != o.Containers[0] {
				add(id, "allocated to %s, but the database's allocation row says %q", o.Containers[0], o.DBContainer)
			}
			if r.inventoryRead && !slices.Equal(o.InventoryContainers, o.Containers) {
				add(id, "allocated to %s, but the inventory holds %v for it", o.Containers[0], o.InventoryContainers)
			}
			if o.Rejections > 0 {
				add(id, "both allocated (%s) and rejected (%s)", o.Containers[0], o.Reason)
			}
			if len(o.DeadLetters) > 0 && !o.Redriven() {
				add(id, "both allocated (%s) and dead-lettered (%s), and the dead letter was never redriven", o.Containers[0], o.DeadLetterReason())
			}
		case Rejected:
			if len(o.DeadLetters) > 0 && !o.Redriven() {
				add(id, "both rejected and dead-lettered (%s)", o.DeadLetterReason())
			}
		}
		if len(o.InventoryContainers) > 1 {
			add(id, "the inventory holds %d containers for it: %v", len(o.InventoryContainers), o.InventoryContainers)
		}
	}
	for _, c := range slices.Sorted(maps.Keys(owners)) {
		if len(owners[c]) > 1 {
			out = append(out, Problem{OrderID: owners[c][0], Text: fmt.Sprintf("reefer %s is allocated to %d orders %v", c, len(owners[c]), owners[c])})
		}
	}
	return out
}

// Problem is one inconsistency Problems found.
type Problem struct {
	OrderID string
	Text    string
}

func (p Problem) String() string { return "order " + p.OrderID + ": " + p.Text }

// History describes the order's records on the retry and dead-letter
// topics, one line each, for a failure message.
func (o *Order) History() string {
	var b strings.Builder
	line := func(kind string, h Hop) {
		m := h.Meta
		fmt.Fprintf(&b, "\n  %s %d@%d attempt %d, first failure %s, last %s, due %s, from %s/%d@%d",
			kind, h.Partition, h.Offset, m.Attempt, m.FirstFailureAt.Format(time.StampMilli),
			m.LastFailureAt.Format(time.StampMilli), m.DueAt.Format(time.StampMilli),
			m.OriginalTopic, m.OriginalPartition, m.OriginalOffset)
		if m.RedriveCount > 0 {
			fmt.Fprintf(&b, ", redriven %d", m.RedriveCount)
		}
		if m.DLQReason != "" {
			fmt.Fprintf(&b, ", %s", m.DLQReason)
		}
		if h.HeaderErr != nil {
			fmt.Fprintf(&b, ", headers unreadable: %v", h.HeaderErr)
		}
		fmt.Fprintf(&b, ": %.120s", m.ErrorMessage)
	}
	fmt.Fprintf(&b, "order %s: %s; containers %v, database %q, inventory %v", o.ID, o.State(), o.Containers, o.DBContainer, o.InventoryContainers)
	for _, h := range o.Retries {
		line("retry", h)
	}
	for _, h := range o.DeadLetters {
		line("dead letter", h)
	}
	return b.String()
}

// Summary is one paragraph about the orders ids: how many ended in each
// state, the dead letters by reason and the duplicates dropped.
func (r *Report) Summary(ids []string) string {
	states := r.States(ids)
	reasons := r.DeadLetterReasons(ids)
	var b strings.Builder
	fmt.Fprintf(&b, "%d orders: %d allocated, %d rejected, %d dead-lettered", len(ids),
		len(states[Allocated]), len(states[Rejected]), len(states[DeadLettered]))
	if len(reasons) > 0 {
		parts := make([]string, 0, len(reasons))
		for _, reason := range slices.SortedFunc(maps.Keys(reasons), func(a, b retrymeta.Reason) int { return cmp.Compare(a, b) }) {
			parts = append(parts, fmt.Sprintf("%s %d", reason, len(reasons[reason])))
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	fmt.Fprintf(&b, ", %d pending", len(states[Pending]))
	var retries, letters int
	for _, id := range ids {
		o := r.Order(id)
		retries += len(o.Retries)
		letters += len(o.DeadLetters)
	}
	fmt.Fprintf(&b, "; %d retry records, %d dead letters", retries, letters)
	if len(r.Duplicates) > 0 {
		parts := make([]string, 0, len(r.Duplicates))
		for _, t := range slices.Sorted(maps.Keys(r.Duplicates)) {
			parts = append(parts, fmt.Sprintf("%s %d", t, r.Duplicates[t]))
		}
		fmt.Fprintf(&b, "; duplicates dropped by event id: %s", strings.Join(parts, ", "))
	}
	return b.String()
}
