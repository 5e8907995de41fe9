package chaos

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// SettleTime is how long, after the last fault has ended, everything must
// take to conclude: every order in a terminal state and every group's input
// committed. It covers a killed replica's session timeout (6 s) twice, the
// retry budget (0.1+0.2+0.4+0.8 s, jittered), Postgres coming back from a
// restart and the backlog the faults built up, with room for a loaded
// 2-core machine; what is not done by then has stalled.
const SettleTime = 60 * time.Second

// FleetFor is the reefer fleet of a campaign: every order can get a reefer
// even when some leak (which a check reports) or are taken in the
// inventory by someone else.
func FleetFor(orders int) int { return orders + orders/3 + 100 }

// Campaign is one seeded run.
type Campaign struct {
	Schedule Schedule
	Nemesis  *Nemesis
	Stack    *Stack
	Results  []Result
	Evidence *Evidence
	IDs      []string
	// Settled is how long everything took to conclude after the faults.
	Settled time.Duration
	Took    time.Duration
}

// Run runs one campaign of orders with the schedule of seed and checks it.
// An error means the campaign could not run (a missing binary, Docker);
// what the checks found is in Results.
func Run(t testing.TB, seed uint64, orders int) (*Campaign, error) {
	start := time.Now()
	c := &Campaign{Schedule: NewSchedule(seed, orders)}
	stack, err := StartStack(t, StackConfig{Fleet: FleetFor(orders), SessionTimeout: 6 * time.Second})
	if err != nil {
		return nil, err
	}
	c.Stack = stack
	c.Nemesis = NewNemesis(stack, c.Schedule)
	all := Orders(orders)
	for _, o := range all {
		c.IDs = append(c.IDs, o.OrderID)
	}

	ctx, cancel := context.WithTimeout(t.Context(), c.Schedule.Window+SettleTime+5*time.Minute)
	defer cancel()
	loaded := make(chan error, 1)
	go func() { loaded <- Load(ctx, stack, all, c.Schedule.Window*4/5) }()
	c.Nemesis.Run(ctx)
	if err := <-loaded; err != nil {
		return c, fmt.Errorf("produce the orders: %w", err)
	}
	faultsOver := time.Now()

	stall := Result{Check: CheckNoStall, Checked: len(c.IDs) + len(c.Nemesis.Foreign)}
	deadline := time.Now().Add(SettleTime)
	for {
		ev, lags, err := c.observe(ctx)
		if err != nil {
			return c, err
		}
		c.Evidence = ev
		open := ev.Unconcluded(c.IDs, c.Nemesis.Foreign)
		lagging := lags[ManagerGroup]+lags[RetryGroup] > 0
		// A dead-lettered order's reefer is given back once the inventory
		// released it: at once, or by the next sweep (RELEASE_INTERVAL),
		// which waits for the inventory's breaker. Concluded is not
		// settled until those releases are done, and done once more
		// (RELEASE_RECHECK_AFTER later) for the allocation calls that
		// landed after them, and the releases the inventory refused
		// during a 422 fault are done by a later sweep; past SettleTime
		// the orphan check reports the reefers still held.
		releasing := len(ev.checkOrphans(c.IDs).Violations) > 0 || ev.Rechecks > 0 || ev.Refused > 0
		if len(open) == 0 && !lagging && !releasing {
			c.Settled = time.Since(faultsOver)
			break
		}
		if time.Now().After(deadline) {
			c.Settled = time.Since(faultsOver)
			for _, g := range slices.Sorted(maps.Keys(lags)) {
				if lags[g] > 0 {
					stall.Violations = append(stall.Violations, fmt.Sprintf("group %s: %d records of its input still uncommitted %s after the faults stopped", g, lags[g], SettleTime))
				}
			}
			if len(stall.Violations) > 0 {
				// Before the stack goes: what every service waits for.
				for _, name := range slices.Sorted(maps.Keys(c.Stack.Services)) {
					c.Stack.Services[name].Dump()
				}
			}
			for _, id := range open[:min(len(open), maxViolationsPerCheckLine)] {
				stall.Violations = append(stall.Violations, fmt.Sprintf("order %s: not concluded %s after the faults stopped", id, SettleTime))
			}
			if len(open) > maxViolationsPerCheckLine {
				stall.Violations = append(stall.Violations, fmt.Sprintf("... and %d more orders not concluded", len(open)-maxViolationsPerCheckLine))
			}
			break
		}
		time.Sleep(time.Second)
	}
	c.Results = append(c.Evidence.Check(c.IDs, c.Nemesis.Foreign), stall)
	c.Took = time.Since(start)
	return c, nil
}

// observe gathers the evidence and the groups' lags once.
func (c *Campaign) observe(ctx context.Context) (*Evidence, map[string]int64, error) {
	octx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	withResolutions := c.Stack.Broker.Cluster().TopicInfo(ResolutionsTopic) != nil
	ev, err := Gather(octx, c.Stack.Sources(), withResolutions)
	if err != nil {
		return nil, nil, fmt.Errorf("check: %w", err)
	}
	lags, err := c.Stack.Lags(octx)
	if err != nil {
		return nil, nil, fmt.Errorf("check: %w", err)
	}
	return ev, lags, nil
}

// Failed reports whether any check found a violation.
func (c *Campaign) Failed() bool {
	for _, r := range c.Results {
		if len(r.Violations) > 0 {
			return true
		}
	}
	return false
}

// Summary is what the campaign prints at the end: the orders and where
// they ended, the faults injected by kind, the checks run and the time.
func (c *Campaign) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chaos seed %d: %d orders in %s (faults for %s, concluded %s after them)\n",
		c.Schedule.Seed, len(c.IDs), c.Took.Round(time.Second), c.Schedule.Window, c.Settled.Round(100*time.Millisecond))
	if c.Evidence != nil {
		fmt.Fprintf(&b, "  outcome: %s\n", c.Evidence.Report.Summary(c.IDs))
	}
	injected := c.Nemesis.Injected()
	planned := c.Schedule.Count()
	var parts []string
	for _, k := range Kinds {
		if planned[k] == 0 && injected[k] == 0 {
			continue
		}
		p := fmt.Sprintf("%s %d", k, injected[k])
		if injected[k] != planned[k] {
			p += fmt.Sprintf(" (of %d planned)", planned[k])
		}
		parts = append(parts, p)
	}
	fmt.Fprintf(&b, "  faults injected: %s\n", strings.Join(parts, ", "))
	var crashes []string
	for _, name := range Replicas {
		if n := c.Stack.Services[name].Crashes(); n > 0 {
			crashes = append(crashes, fmt.Sprintf("%s %d", name, n))
		}
	}
	if len(crashes) > 0 {
		fmt.Fprintf(&b, "  exits nobody asked for (restarted after %s, as a restart policy would): %s\n", SupervisorDelay, strings.Join(crashes, ", "))
	}
	fmt.Fprintf(&b, "  checks:\n")
	for _, r := range c.Results {
		verdict := "ok"
		if len(r.Violations) > 0 {
			verdict = fmt.Sprintf("FAILED (%d violations)", len(r.Violations))
		}
		fmt.Fprintf(&b, "    %-34s %-22s over %d\n", r.Check, verdict, r.Checked)
	}
	return b.String()
}

// Report is the failure report: the summary, each violation (at most
// maxViolationsPerCheckLine per check), the history of the first orders
// involved, the schedule and what the nemesis did, and where the logs are.
func (c *Campaign) Report() string {
	var b strings.Builder
	b.WriteString(c.Summary())
	var involved []string
	for _, r := range c.Results {
		for i, v := range r.Violations {
			if i == maxViolationsPerCheckLine {
				fmt.Fprintf(&b, "  [%s] ... and %d more\n", r.Check, len(r.Violations)-i)
				break
			}
			fmt.Fprintf(&b, "  [%s] %s\n", r.Check, v)
			if id, ok := strings.CutPrefix(v, "order "); ok && len(involved) < 5 {
				id, _, _ = strings.Cut(id, ":")
				if !slices.Contains(involved, id) {
					involved = append(involved, id)
				}
			}
		}
	}
	if c.Evidence != nil {
		for _, id := range involved {
			fmt.Fprintf(&b, "  history: %s\n", strings.ReplaceAll(c.Evidence.Report.Order(id).History(), "\n", "\n    "))
		}
	}
	b.WriteString(c.Schedule.String())
	b.WriteString("nemesis log:\n")
	for _, e := range c.Nemesis.Log() {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	fmt.Fprintf(&b, "service logs: %s (set CHAOS_LOG_DIR to keep them)\n", c.Stack.Dir)
	return b.String()
}
