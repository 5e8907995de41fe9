package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/tests/integration/outcomes"
)

// The checks, in the order they run and print.
const (
	CheckOneTerminalState     = "one-terminal-state"
	CheckNoDoubleAllocation   = "no-double-allocation"
	CheckAllocationMatched    = "allocation-matched"
	CheckNoOrphanHold         = "no-reefer-held-by-unallocated"
	CheckDeadLetterReason     = "dead-letter-reason"
	CheckForeignDeadLettered  = "poison-and-oversize-dead-lettered"
	CheckRedriveCarried       = "redrive-count-carried"
	CheckNoStall              = "no-stall"
	maxViolationsPerCheckLine = 20
)

// Checks describes each check, for the summary and the docs.
var Checks = map[string]string{
	CheckOneTerminalState:    "every order ends in exactly one terminal state: allocated, rejected, or one dead letter awaiting a person (not redriven)",
	CheckNoDoubleAllocation:  "no order gets two reefers, no reefer goes to two orders (events and inventory)",
	CheckAllocationMatched:   "every ContainerAllocated is matched by ContainerAssignedToOrder, the database (allocation row and reefer) and the inventory",
	CheckNoOrphanHold:        "no reefer is held, in the database or the inventory, by an order that is not allocated to it",
	CheckDeadLetterReason:    "every dead letter has readable headers and a reason",
	CheckForeignDeadLettered: "every poison and oversize record is dead-lettered under its own key, with a reason",
	CheckRedriveCarried:      "after a redrive, the order's later dead letters carry the redrive count (the loop guard survives every hop)",
	CheckNoStall:             "everything concludes, and every group commits its input, within the settle time after the faults stop",
}

// Result is the outcome of one check.
type Result struct {
	Check      string
	Checked    int      // records or orders looked at
	Violations []string // one line each, naming the order and what was seen
}

// Resolution is what dlq recorded for one dead letter.
type Resolution struct {
	DeadLetter struct {
		Topic     string `json:"topic"`
		Partition int    `json:"partition"`
		Offset    int64  `json:"offset"`
	} `json:"deadLetter"`
	Action string    `json:"action"`
	At     time.Time `json:"at"`
	Target struct {
		Topic     string `json:"topic"`
		Partition int    `json:"partition"`
		Offset    int64  `json:"offset"`
	} `json:"target"`
	RedriveCount int `json:"redriveCount"`
}

// Hold is a reefer the database says an order holds.
type Hold struct{ ContainerID, OrderID string }

// Evidence is everything the checker reads, once the system is quiet.
type Evidence struct {
	Report *outcomes.Report
	// Resolutions by dead-letter position "partition:offset".
	Resolutions map[string]Resolution
	// Holds are the reefers of the database with an order.
	Holds []Hold
	// Rechecks counts the releases still waiting to be done once more
	// (allocation.Releaser.Recheck), Refused those the inventory refused
	// and the sweep asks for again.
	Rechecks, Refused int
}

// Gather reads the topics, the database and the inventory
// (outcomes.Collect), the dlq resolution log when it exists, and the
// reefers the database holds.
func Gather(ctx context.Context, src outcomes.Sources, withResolutions bool) (*Evidence, error) {
	r, err := outcomes.Collect(ctx, src)
	if err != nil {
		return nil, err
	}
	ev := &Evidence{Report: r, Resolutions: map[string]Resolution{}}
	if withResolutions {
		msgs, err := outcomes.ReadTopic(ctx, src.Kafka, ResolutionsTopic)
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			if m.Value == nil { // a tombstone reopens the dead letter
				delete(ev.Resolutions, string(m.Key))
				continue
			}
			var res Resolution
			if err := json.Unmarshal(m.Value, &res); err != nil {
				return nil, fmt.Errorf("resolution %s at %d: %w", m.Key, m.Offset, err)
			}
			ev.Resolutions[string(m.Key)] = res
		}
	}
	conn, err := pgx.Connect(ctx, src.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("connect to the reefer database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT container_id, order_id FROM reefers WHERE order_id IS NOT NULL ORDER BY container_id`)
	if err != nil {
		return nil, fmt.Errorf("read reefers: %w", err)
	}
	var h Hold
	if _, err := pgx.ForEachRow(rows, []any{&h.ContainerID, &h.OrderID}, func() error {
		ev.Holds = append(ev.Holds, h)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read reefers: %w", err)
	}
	if err := conn.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM release_rechecks), (SELECT COUNT(*) FROM refused_releases)`).Scan(&ev.Rechecks, &ev.Refused); err != nil {
		return nil, fmt.Errorf("count release rechecks and refusals: %w", err)
	}
	return ev, nil
}

func position(h outcomes.Hop) string { return fmt.Sprintf("%d:%d", h.Partition, h.Offset) }

// pending returns the order's dead letters that no one has dealt with
// yet. Copies of one dead letter (sameDeadLetter) count once: dealing
// with one deals with all, as dlq does, and the first pending copy stands
// for them.
func (ev *Evidence) pending(o *outcomes.Order) []outcomes.Hop {
	var out []outcomes.Hop
	for i, h := range o.DeadLetters {
		done := false
		for j, c := range o.DeadLetters {
			if _, resolved := ev.Resolutions[position(c)]; (j == i || sameDeadLetter(h, c)) && resolved {
				done = true
			}
			if j < i && sameDeadLetter(h, c) {
				done = true // counted with its first copy
			}
		}
		if !done {
			out = append(out, h)
		}
	}
	return out
}

// sameDeadLetter reports whether two dead letters of one order are copies
// of one: the same original record and redrive count, readable headers.
// The pipeline writes a dead letter again when the process that wrote it
// died before recording so (docs/contract.md); dlq resolves every copy
// with one (deadletter.Letter.Identity).
func sameDeadLetter(a, b outcomes.Hop) bool {
	return a.HeaderErr == nil && b.HeaderErr == nil && a.Meta.OriginalTopic != "" &&
		a.Meta.OriginalTopic == b.Meta.OriginalTopic && a.Meta.OriginalPartition == b.Meta.OriginalPartition &&
		a.Meta.OriginalOffset == b.Meta.OriginalOffset && a.Meta.RedriveCount == b.Meta.RedriveCount
}

// Terminal lists the terminal states the order is in: "allocated C-1",
// "rejected", "dead letter 1:7 (max-attempts)".
func (ev *Evidence) Terminal(id string) []string {
	o := ev.Report.Order(id)
	var out []string
	if len(o.Containers) > 0 {
		out = append(out, "allocated "+strings.Join(o.Containers, "+"))
	}
	if o.Rejections > 0 {
		out = append(out, "rejected ("+o.Reason+")")
	}
	for _, h := range ev.pending(o) {
		out = append(out, fmt.Sprintf("dead letter %s (%s) awaiting a person", position(h), reasonOf(h)))
	}
	return out
}

func reasonOf(h outcomes.Hop) string {
	if h.Meta.DLQReason != "" {
		return string(h.Meta.DLQReason)
	}
	if h.HeaderErr != nil {
		return "unreadable headers"
	}
	return "no reason"
}

// Unconcluded returns the orders of ids with no terminal state and the
// foreign keys with no dead letter: what the campaign waits for.
func (ev *Evidence) Unconcluded(ids []string, foreign map[string][]byte) []string {
	var out []string
	for _, id := range ids {
		if len(ev.Terminal(id)) == 0 {
			out = append(out, id)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(foreign)) {
		if len(ev.Report.Order(key).DeadLetters) == 0 {
			out = append(out, key)
		}
	}
	return out
}

// Check runs every check but no-stall (the campaign's own) over the orders
// ids and the foreign records.
func (ev *Evidence) Check(ids []string, foreign map[string][]byte) []Result {
	return []Result{
		ev.checkTerminal(ids),
		ev.checkDouble(ids),
		ev.checkMatched(ids),
		ev.checkOrphans(ids),
		ev.checkReasons(),
		ev.checkForeign(foreign),
		ev.checkRedrive(ids),
	}
}

func (ev *Evidence) checkTerminal(ids []string) Result {
	res := Result{Check: CheckOneTerminalState, Checked: len(ids)}
	for _, id := range ids {
		states := ev.Terminal(id)
		switch {
		case len(states) == 1:
		case len(states) == 0:
			o := ev.Report.Order(id)
			var redriven []string
			for _, h := range o.DeadLetters {
				r := ev.Resolutions[position(h)]
				redriven = append(redriven, fmt.Sprintf("%s (%s) %s to %s %d:%d", position(h), reasonOf(h), r.Action, r.Target.Topic, r.Target.Partition, r.Target.Offset))
			}
			what := "no outcome anywhere (lost, or still in flight)"
			if len(redriven) > 0 {
				what = "its dead letters were all dealt with (" + strings.Join(redriven, "; ") + ") and nothing concluded it since"
			}
			res.Violations = append(res.Violations, fmt.Sprintf("order %s: no terminal state: %s; %d retry records, created %d times",
				id, what, len(o.Retries), o.Created))
		default:
			res.Violations = append(res.Violations, fmt.Sprintf("order %s: %d terminal states: %s", id, len(states), strings.Join(states, " and ")))
		}
	}
	return res
}

func (ev *Evidence) checkDouble(ids []string) Result {
	res := Result{Check: CheckNoDoubleAllocation, Checked: len(ids)}
	owners := map[string][]string{}
	invOwners := map[string][]string{}
	for _, id := range ids {
		o := ev.Report.Order(id)
		if len(o.Containers) > 1 {
			res.Violations = append(res.Violations, fmt.Sprintf("order %s: ContainerAllocated names %d reefers %v", id, len(o.Containers), o.Containers))
		}
		if len(o.InventoryContainers) > 1 {
			res.Violations = append(res.Violations, fmt.Sprintf("order %s: the inventory holds %d containers for it %v", id, len(o.InventoryContainers), o.InventoryContainers))
		}
		for _, c := range o.Containers {
			owners[c] = append(owners[c], id)
		}
		for _, c := range o.InventoryContainers {
			invOwners[c] = append(invOwners[c], id)
		}
	}
	for _, c := range slices.Sorted(maps.Keys(owners)) {
		if len(owners[c]) > 1 {
			res.Violations = append(res.Violations, fmt.Sprintf("order %s: reefer %s is given to %d orders by ContainerAllocated: %v", owners[c][0], c, len(owners[c]), owners[c]))
		}
	}
	return res
}

func (ev *Evidence) checkMatched(ids []string) Result {
	res := Result{Check: CheckAllocationMatched}
	heldBy := map[string]string{}
	for _, h := range ev.Holds {
		heldBy[h.ContainerID] = h.OrderID
	}
	for _, id := range ids {
		o := ev.Report.Order(id)
		if len(o.Containers) == 0 {
			continue
		}
		res.Checked++
		c := o.Containers[0]
		var wrong []string
		if !slices.Equal(o.Assigned, o.Containers) {
			wrong = append(wrong, fmt.Sprintf("ContainerAssignedToOrder names %v", o.Assigned))
		}
		if o.DBContainer != c {
			wrong = append(wrong, fmt.Sprintf("the database's allocation row says %q", o.DBContainer))
		}
		if heldBy[c] != id {
			wrong = append(wrong, fmt.Sprintf("the database's reefer row says it is held by %q", heldBy[c]))
		}
		if !slices.Equal(o.InventoryContainers, o.Containers) {
			wrong = append(wrong, fmt.Sprintf("the inventory holds %v for the order", o.InventoryContainers))
		}
		if len(wrong) > 0 {
			res.Violations = append(res.Violations, fmt.Sprintf("order %s: ContainerAllocated says %s, but %s", id, c, strings.Join(wrong, "; ")))
		}
	}
	return res
}

func (ev *Evidence) checkOrphans(ids []string) Result {
	res := Result{Check: CheckNoOrphanHold}
	ours := map[string]bool{}
	for _, id := range ids {
		ours[id] = true
	}
	state := func(id string) string {
		if s := ev.Terminal(id); len(s) > 0 {
			return strings.Join(s, " and ")
		}
		return "not concluded"
	}
	allocatedTo := func(id, c string) bool {
		return slices.Contains(ev.Report.Order(id).Containers, c)
	}
	for _, h := range ev.Holds {
		if !ours[h.OrderID] {
			continue
		}
		res.Checked++
		if !allocatedTo(h.OrderID, h.ContainerID) {
			res.Violations = append(res.Violations, fmt.Sprintf("order %s: the database's reefer %s is held by it, but the order is %s", h.OrderID, h.ContainerID, state(h.OrderID)))
		}
	}
	for _, id := range ids {
		o := ev.Report.Order(id)
		if o.DBContainer != "" && !allocatedTo(id, o.DBContainer) {
			res.Violations = append(res.Violations, fmt.Sprintf("order %s: the database has an allocation row for reefer %s, but the order is %s", id, o.DBContainer, state(id)))
		}
		for _, c := range o.InventoryContainers {
			res.Checked++
			if !allocatedTo(id, c) {
				res.Violations = append(res.Violations, fmt.Sprintf("order %s: the inventory holds container %s for it, but the order is %s", id, c, state(id)))
			}
		}
	}
	return res
}

func (ev *Evidence) checkReasons() Result {
	res := Result{Check: CheckDeadLetterReason}
	for _, key := range slices.Sorted(maps.Keys(ev.Report.Orders)) {
		for _, h := range ev.Report.Orders[key].DeadLetters {
			res.Checked++
			switch {
			case h.HeaderErr != nil:
				res.Violations = append(res.Violations, fmt.Sprintf("order %s: dead letter %s has unreadable headers: %v", key, position(h), h.HeaderErr))
			case h.Meta.DLQReason == "":
				res.Violations = append(res.Violations, fmt.Sprintf("order %s: dead letter %s carries no %s", key, position(h), retrymeta.HeaderDLQReason))
			}
		}
	}
	return res
}

func (ev *Evidence) checkForeign(foreign map[string][]byte) Result {
	res := Result{Check: CheckForeignDeadLettered, Checked: len(foreign)}
	for _, key := range slices.Sorted(maps.Keys(foreign)) {
		o := ev.Report.Order(key)
		want := foreign[key]
		switch {
		case len(o.DeadLetters) == 0:
			res.Violations = append(res.Violations, fmt.Sprintf("record %s (%d bytes on %s): no dead letter under its key", key, len(want), Topics.Orders))
		case len(o.Containers) > 0 || o.Rejections > 0:
			res.Violations = append(res.Violations, fmt.Sprintf("record %s: treated as an order (%v)", key, ev.Terminal(key)))
		default:
			h := o.DeadLetters[0]
			// A value too large to dead-letter whole keeps as much as fits.
			if !bytes.HasPrefix(want, h.Value) || (len(h.Value) < len(want) && len(want) < maxMessageBytes/2) {
				res.Violations = append(res.Violations, fmt.Sprintf("record %s: dead letter %s holds %d bytes that are not the record's %d (or a prefix of them)", key, position(h), len(h.Value), len(want)))
			}
			// A poison record has no order, hence no state row to make its
			// dead-lettering happen once: a replica killed after writing
			// the dead letter and before committing the offset writes it
			// again (at least once), so copies of one source are tolerated.
			// The nemesis' own producer is at least once too: refused by a
			// produce fault, it writes the record again, and each copy on
			// orders is a source of its own. What must not happen is a
			// dead letter whose source is not on orders.
			for _, d := range o.DeadLetters {
				src := fmt.Sprintf("%s/%d@%d", d.Meta.OriginalTopic, d.Meta.OriginalPartition, d.Meta.OriginalOffset)
				if d.Meta.OriginalTopic != Topics.Orders {
					res.Violations = append(res.Violations, fmt.Sprintf("record %s: dead letter %s names source %s, not a record of %s", key, position(d), src, Topics.Orders))
				}
			}
		}
	}
	return res
}

// checkRedrive: once dlq redrove an order's dead letter with redrive count
// n, every later dead letter of the order (a higher offset of the same
// partition: one key, one partition) carries a count of n or more.
// Otherwise the loop guard (dlq --max-redrives) was reset on the way.
func (ev *Evidence) checkRedrive(ids []string) Result {
	res := Result{Check: CheckRedriveCarried}
	for _, id := range ids {
		o := ev.Report.Order(id)
		for _, h := range o.DeadLetters {
			r, ok := ev.Resolutions[position(h)]
			if !ok || r.Action != "redriven" {
				continue
			}
			res.Checked++
			for _, later := range o.DeadLetters {
				if sameDeadLetter(h, later) {
					continue // a copy of the redriven dead letter, resolved with it
				}
				if later.Partition == h.Partition && later.Offset > h.Offset && later.Meta.RedriveCount < r.RedriveCount {
					res.Violations = append(res.Violations, fmt.Sprintf("order %s: dead letter %s was redriven to %s with redrive count %d, but its later dead letter %s (%s) carries %d",
						id, position(h), r.Target.Topic, r.RedriveCount, position(later), reasonOf(later), later.Meta.RedriveCount))
				}
			}
		}
	}
	return res
}
