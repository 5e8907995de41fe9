package demo

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/store"

	"github.com/reeferdlq/reefer-dlq/deployments/local/ordergen"
	"github.com/reeferdlq/reefer-dlq/deployments/local/timeline"
	"github.com/reeferdlq/reefer-dlq/deployments/local/tracker"
	"github.com/reeferdlq/reefer-dlq/deployments/local/waterfall"
)

// conclude prints the summary, checks the invariant and draws the chart.
func (d *demo) conclude(ctx context.Context) (Result, error) {
	rep := d.tr.Report()
	d.ordersMu.RLock()
	ids := slices.Clone(d.order)
	orders := d.orders
	d.ordersMu.RUnlock()

	res := Result{Sent: len(ids), Expected: map[ordergen.Outcome]int{}}
	var firstTry, afterFailures, afterRedrive int
	for _, id := range ids {
		res.Expected[orders[id].Expect]++
		o, ok := rep.Orders[id]
		switch {
		case !ok || !settled(o):
			res.Lost++
		case o.Stage == tracker.Allocated:
			res.Allocated++
			switch {
			case o.Redrives > 0:
				afterRedrive++
			case o.MaxAttempt > 0:
				afterFailures++
			default:
				firstTry++
			}
		case o.Stage == tracker.Rejected:
			res.Rejected++
		default:
			res.DeadLettered++
		}
		if ok && o.Redrives > 0 {
			res.Redriven++
		}
	}

	d.heading("Summary")
	rows := [][]string{
		{"outcome", "orders", "expected"},
		{"allocated", itoa(res.Allocated), itoa(res.Expected[ordergen.Allocated])},
		{"  at the first attempt", itoa(firstTry), ""},
		{fmt.Sprintf("  after 1 to %d failed attempts", d.tm.maxAttempts-1), itoa(afterFailures), ""},
		{"  after a redrive from the dead-letter topic", itoa(afterRedrive), ""},
		{"rejected: no reefer big enough", itoa(res.Rejected), itoa(res.Expected[ordergen.Rejected])},
		{"dead-lettered, waiting for a person", itoa(res.DeadLettered), itoa(res.Expected[ordergen.DeadLettered])},
		{"lost: in none of the above", itoa(res.Lost), "0"},
		{"sent", itoa(res.Sent), ""},
	}
	d.scr.Printf("%s", table(rows))
	if rep.Duplicates > 0 && !d.cfg.Quiet {
		d.scr.Printf("(%d events were read twice, with the same event id: a redelivery, harmless by design)", rep.Duplicates)
	}

	res.Checks = d.verify(ctx, rep, ids, orders)
	d.scr.Printf("\nInvariant")
	for _, c := range res.Checks {
		mark := "✔"
		if !c.OK {
			mark = "✘"
		}
		d.scr.Printf("  %s %s%s", mark, c.Name, parenthesize(c.Detail))
	}

	d.endPhases()
	path := d.chartPath()
	title := fmt.Sprintf("reefer-dlq demo: %d orders (seed %d)", res.Sent, d.cfg.Seed)
	if err := timeline.Write(path, title, rep.Samples, d.phases); err != nil {
		d.scr.Printf("\nNo timeline chart: %v", err)
	} else {
		res.ChartPath = path
	}

	if res.OK() {
		d.scr.Printf("\nThe invariant holds: every order is in exactly one terminal state, none lost, none allocated twice.")
	} else {
		d.scr.Printf("\nThe invariant does NOT hold: see the ✘ lines above. Service logs: %s", d.st.logPath)
	}
	if res.ChartPath != "" {
		d.scr.Printf("Timeline chart: %s", res.ChartPath)
	}
	d.waterfall(rep, ids)
	return res, nil
}

// waterfall prints the trace of one order (Config.Trace, or one that
// went the whole way: retried, dead-lettered, redriven) from the spans
// every service recorded in memory.
func (d *demo) waterfall(rep tracker.Report, ids []string) {
	id := d.cfg.Trace
	if id == "none" {
		return
	}
	if id == "" {
		id = mostTravelled(rep, ids)
	}
	if id == "" {
		return
	}
	spans := waterfall.Of(waterfall.FromSDK(d.st.spans.Ended()), id)
	d.heading("The trace of order %s", id)
	if !d.cfg.Quiet {
		d.scr.Printf("Every hop, from the spans each service recorded (OpenTelemetry; with OTEL_EXPORTER_OTLP_ENDPOINT\n" +
			"set, the services send the same spans to Jaeger or any OTLP backend). --trace ORDER_ID picks another order.\n")
	}
	var b strings.Builder
	waterfall.Print(&b, id, spans)
	d.scr.Printf("%s", strings.TrimRight(b.String(), "\n"))
}

// mostTravelled is the first order sent that was retried, dead-lettered
// and redriven, and then allocated; failing that, the one with the most
// failed attempts.
func mostTravelled(rep tracker.Report, ids []string) string {
	best, most := "", -1
	for _, id := range ids {
		o, ok := rep.Orders[id]
		if !ok {
			continue
		}
		if o.Redrives > 0 && o.MaxAttempt > 0 && o.Stage == tracker.Allocated {
			return id
		}
		if o.MaxAttempt > most {
			best, most = id, o.MaxAttempt
		}
	}
	return best
}

// verify checks the invariant against the topics (the tracker's report),
// the reefer database and the inventory.
func (d *demo) verify(ctx context.Context, rep tracker.Report, ids []string, orders map[string]ordergen.Order) []Check {
	checks, allocated := topicChecks(rep, ids, orders)
	decoded := checks[len(checks)-1]
	checks = append(checks[:len(checks)-1], d.checkDatabase(ctx, ids, rep, allocated), d.checkInventory(ctx, ids, allocated), decoded)
	return checks
}

// topicChecks checks what the topics say: every order sent came back, is
// in exactly one terminal state, the one it deserved, and has at most one
// container. It returns the checks and the container of each allocated
// order.
func topicChecks(rep tracker.Report, ids []string, orders map[string]ordergen.Order) ([]Check, map[string]string) {
	var checks []Check
	add := func(name string, problems []string, detail string) {
		c := Check{Name: name, OK: len(problems) == 0, Detail: detail}
		if !c.OK {
			c.Detail = summarize(problems)
		}
		checks = append(checks, c)
	}

	// None lost: every order sent came back on the orders topic.
	var unseen []string
	for _, id := range ids {
		if o, ok := rep.Orders[id]; !ok || !o.Created {
			unseen = append(unseen, id+" never read from "+topicOrders)
		}
	}
	add(fmt.Sprintf("every order sent was read back from `%s`", topicOrders), unseen,
		fmt.Sprintf("%d of %d", len(ids)-len(unseen), len(ids)))

	// Exactly one terminal state each.
	var notTerminal []string
	for _, id := range ids {
		o, ok := rep.Orders[id]
		switch {
		case !ok:
			notTerminal = append(notTerminal, id+" unknown")
		case !settled(o):
			notTerminal = append(notTerminal, fmt.Sprintf("%s still %s", id, o.Stage))
		case o.Outcomes > 1:
			notTerminal = append(notTerminal, id+" both allocated and rejected")
		case o.Stage.Terminal() && o.DeadLetters > o.Redrives:
			notTerminal = append(notTerminal, fmt.Sprintf("%s %s but %d dead letters and only %d redrives", id, o.Stage, o.DeadLetters, o.Redrives))
		}
	}
	add("every order is in exactly one terminal state: allocated, rejected, or dead-lettered for a person", notTerminal, "")

	// The outcome each deserved.
	var wrong []string
	for _, id := range ids {
		o, ok := rep.Orders[id]
		if !ok {
			wrong = append(wrong, id+" never seen")
			continue
		}
		want := orders[id].Expect
		got := ordergen.Outcome("")
		switch {
		case o.Stage == tracker.Allocated:
			got = ordergen.Allocated
		case o.Stage == tracker.Rejected:
			got = ordergen.Rejected
		case o.Stage == tracker.DeadLettered && o.ErrorClass == "permanent":
			got = ordergen.DeadLettered
		}
		if got != want {
			wrong = append(wrong, fmt.Sprintf("%s %s, expected %s", id, o.Stage, want))
		}
	}
	add("every order got the outcome it deserved", wrong, "")

	// None allocated twice, on the topics.
	var twice []string
	allocated := map[string]string{} // order -> container
	for _, id := range ids {
		o := rep.Orders[id]
		if o.Stage != tracker.Allocated {
			if len(o.Containers)+len(o.Assigned) > 0 {
				twice = append(twice, fmt.Sprintf("%s is %s but has container events", id, o.Stage))
			}
			continue
		}
		switch {
		case len(o.Containers) != 1:
			twice = append(twice, fmt.Sprintf("%s ContainerAllocated with %d containers %v", id, len(o.Containers), o.Containers))
		case len(o.Assigned) != 1 || o.Assigned[0] != o.Containers[0]:
			twice = append(twice, fmt.Sprintf("%s ContainerAllocated %v but ContainerAssignedToOrder %v", id, o.Containers, o.Assigned))
		default:
			allocated[id] = o.Containers[0]
		}
	}
	for c, holders := range rep.Containers {
		if len(holders) > 1 {
			twice = append(twice, fmt.Sprintf("container %s assigned to %s", c, strings.Join(holders, " and ")))
		}
	}
	add("no order allocated twice on the topics: one container per order, one order per container", twice, "")
	add("every record on the four topics decoded", rep.Unreadable, "")
	return checks, allocated
}

// checkDatabase compares the reefer database with the topics: one
// allocation row per allocated order, with the reefer of its event.
func (d *demo) checkDatabase(ctx context.Context, ids []string, rep tracker.Report, allocated map[string]string) Check {
	name := "reefer database: one allocation row per allocated order, with the same reefer"
	db, err := reeferstore.Open(ctx, d.st.dbURL, d.st.log.With("component", "verify"))
	if err != nil {
		return Check{Name: name, Detail: err.Error()}
	}
	defer db.Close()
	var problems []string
	for _, id := range ids {
		c, ok, err := db.Allocation(ctx, id)
		if err != nil {
			return Check{Name: name, Detail: err.Error()}
		}
		want, isAllocated := allocated[id]
		switch {
		case isAllocated && !ok:
			problems = append(problems, id+" allocated on the topics, no row")
		case isAllocated && c != want:
			problems = append(problems, fmt.Sprintf("%s row says %s, events say %s", id, c, want))
		case !isAllocated && ok && rep.Orders[id].Stage >= tracker.DeadLettered:
			// A dead letter releases the order's reefer in the transaction
			// that claims it: a concluded order that is not allocated holds
			// none (an order still in retry keeps its reservation).
			problems = append(problems, fmt.Sprintf("%s is %s but holds reefer %s", id, rep.Orders[id].Stage, c))
		}
	}
	held, err := db.HeldByUnallocated(ctx)
	if err != nil {
		return Check{Name: name, Detail: err.Error()}
	}
	for _, c := range held {
		problems = append(problems, "reefer "+c+" is held by an order that is neither reserved nor allocated")
	}
	if len(problems) > 0 {
		return Check{Name: name, Detail: summarize(problems)}
	}
	detail := fmt.Sprintf("%d rows; no reefer held by a dead-lettered order", len(allocated))
	quarantined, err := db.Quarantined(ctx)
	if err != nil {
		return Check{Name: name, Detail: err.Error()}
	}
	if len(quarantined) > 0 {
		detail += fmt.Sprintf("; %d reefers quarantined after an inventory 409", len(quarantined))
	}
	if !d.shared {
		// Alone on the database, the row count must match too.
		n, err := db.CountAllocations(ctx)
		if err != nil {
			return Check{Name: name, Detail: err.Error()}
		}
		if n != int64(len(allocated)) {
			return Check{Name: name, Detail: fmt.Sprintf("%d rows in the table, %d expected", n, len(allocated))}
		}
	}
	return Check{Name: name, OK: true, Detail: detail}
}

// checkInventory compares the inventory's containers with the topics.
func (d *demo) checkInventory(ctx context.Context, ids []string, allocated map[string]string) Check {
	name := "inventory: one container per allocated order, the same one"
	list, err := d.st.admin.Containers(ctx, store.Allocated)
	if err != nil {
		return Check{Name: name, Detail: err.Error()}
	}
	byOrder := map[string][]string{}
	for _, c := range list {
		byOrder[c.OrderID] = append(byOrder[c.OrderID], c.ContainerID)
	}
	var problems []string
	for _, id := range ids {
		got, want := byOrder[id], allocated[id]
		switch {
		case want == "" && len(got) > 0:
			problems = append(problems, fmt.Sprintf("%s not allocated but holds %v", id, got))
		case want != "" && (len(got) != 1 || got[0] != want):
			problems = append(problems, fmt.Sprintf("%s holds %v, events say %s", id, got, want))
		}
	}
	if len(problems) > 0 {
		return Check{Name: name, Detail: summarize(problems)}
	}
	return Check{Name: name, OK: true, Detail: fmt.Sprintf("%d containers", len(allocated))}
}

func summarize(problems []string) string {
	if len(problems) <= 3 {
		return strings.Join(problems, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(problems[:3], "; "), len(problems)-3)
}

func parenthesize(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func itoa(n int) string { return fmt.Sprint(n) }

// table aligns rows: the first column left, the others right.
func table(rows [][]string) string {
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	for ri, r := range rows {
		b.WriteString("  ")
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-len([]rune(c)))
			if i == 0 {
				b.WriteString(c + pad)
			} else {
				b.WriteString("   " + pad + c)
			}
		}
		if ri < len(rows)-1 {
			b.WriteString("\n")
		}
	}
	return trimLines(b.String())
}

// trimLines removes the spaces that empty last columns leave at line ends.
func trimLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}
