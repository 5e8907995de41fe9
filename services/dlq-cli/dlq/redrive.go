package dlq

import (
	"context"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/filter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/healthgate"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/redrive"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/render"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/resolution"
)

// redriveFlags are the flags of redrive and watch.
type redriveFlags struct {
	to          string
	maxRedrives int
	rate        float64
}

func addRedriveFlags(cmd *cobra.Command) *redriveFlags {
	rf := &redriveFlags{}
	fs := cmd.Flags()
	fs.StringVar(&rf.to, "to", string(redrive.ToRetry), "retry: the retry topic, attempts reset and due now; original: the topic in x-original-topic")
	fs.IntVar(&rf.maxRedrives, "max-redrives", redrive.DefaultMaxRedrives, "loop guard: refuse letters already redriven this many times")
	fs.Float64Var(&rf.rate, "rate", 0, "at most this many records per second (0: as fast as the broker takes them)")
	_ = cmd.RegisterFlagCompletionFunc("to", fixedCompletions("retry", "original"))
	return rf
}

// engine builds a redrive engine for the session from the flags.
func (a *app) engine(s *session, cursor *resolution.Cursor, rf *redriveFlags, by string) (*redrive.Engine, error) {
	to, err := redrive.ParseTarget(rf.to)
	if err != nil {
		return nil, usagef("--to: %v", err)
	}
	if rf.maxRedrives < 1 {
		return nil, usagef("--max-redrives %d: want 1 or more", rf.maxRedrives)
	}
	if rf.rate < 0 {
		return nil, usagef("--rate %g: want 0 (no limit) or more", rf.rate)
	}
	e := &redrive.Engine{
		Store:       s.store,
		Log:         s.log,
		State:       s.state,
		Cursor:      cursor,
		To:          to,
		RetryTopic:  a.g.retryTopic,
		MaxRedrives: rf.maxRedrives,
		Now:         a.env.Now,
		By:          by,
		Tracing:     a.env.Tracing,
	}
	if rf.rate > 0 {
		e.Limiter = redrive.NewLimiter(rf.rate)
	}
	return e, nil
}

// targetName names where --to sends records, for messages.
func (a *app) targetName(to redrive.Target) string {
	if to == redrive.ToOriginal {
		return "their original topics"
	}
	return a.g.retryTopic
}

func (a *app) redriveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "redrive [filters]",
		Short: "Republish pending dead letters to the retry topic (or their original topic), resumably",
		Long: `redrive republishes the selected pending dead letters, key and value byte for
byte, with x-dlq-redrive-count + 1:
  --to retry     to the retry topic with x-retry-attempt 0 and due now (default)
  --to original  to the topic in x-original-topic, as a fresh record

A letter already redriven --max-redrives times is refused and reported (loop
guard). Each batch is recorded in the resolution log and the consumer group
(--group) only after the broker acknowledged the copies, so an interrupted
run continues where it stopped when run again, and a finished one redrives
nothing twice.

It asks for confirmation on a terminal; otherwise pass --yes. --dry-run
prints what would move and changes nothing.`,
		Example: `  dlq redrive --reason max-attempts --dry-run
  dlq redrive --reason max-attempts --since 2h --rate 200 --yes
  dlq redrive --order-id O-1001 --to original
  dlq redrive --error-class transient --when-healthy http://inventory:8081/readyz --yes`,
		Args: noArgs,
	}
	ff := addFilterFlags(cmd, filter.Pending)
	rf := addRedriveFlags(cmd)
	hf := addHealthFlags(cmd)
	dryRun := cmd.Flags().Bool("dry-run", false, "print what would be redriven; change nothing")
	yes := cmd.Flags().Bool("yes", false, "do not ask for confirmation (required when stdin is not a terminal)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		f, err := a.filter(ff)
		if err != nil {
			return err
		}
		if f.Status != filter.Pending {
			return usagef("--status %s: redrive moves pending dead letters only; a resolved one stays resolved (use dlq edit to send a corrected copy)", f.Status)
		}
		gate, err := a.gate(hf, a.reportHealth)
		if err != nil {
			return err
		}
		s, err := a.open(ctx)
		if err != nil {
			return err
		}
		defer s.close()
		cursor := resolution.NewCursor()
		e, err := a.engine(s, cursor, rf, who(a.env))
		if err != nil {
			return err
		}
		items, err := s.selectItems(ctx, f, cursor)
		if err != nil {
			return err
		}
		items = firstCopies(items)
		if len(items) == 0 {
			return errNoMatch
		}
		out := render.Outcome{Command: "redrive", Selected: len(items), Target: a.targetName(e.To)}
		plan := a.plan(items, e)
		for _, r := range plan {
			if r.Action == "refuse" {
				out.Refused++
			}
		}
		out.Redriven = len(items) - out.Refused
		if *dryRun {
			out.DryRun = true
			if err := a.printer().Plan(plan); err != nil {
				return err
			}
			return a.printer().Outcome(out)
		}
		if out.Redriven > 0 {
			q := fmt.Sprintf("Redrive %d dead letters from %s to %s?", out.Redriven, a.g.topic, out.Target)
			if err := a.confirm(q, *yes); err != nil {
				return err
			}
		}
		return a.runRedrive(ctx, s, e, gate, letters(items), out)
	}
	return cmd
}

// firstCopies keeps the first copy of each dead letter (by
// deadletter.Letter.Identity): the redrive's resolution entry resolves the
// other copies too.
func firstCopies(items []render.Item) []render.Item {
	seen := make(map[string]bool, len(items))
	return slices.DeleteFunc(items, func(it render.Item) bool {
		id := it.Letter.Identity()
		if id == "" {
			return false
		}
		dup := seen[id]
		seen[id] = true
		return dup
	})
}

// plan says what the engine would do with each item.
func (a *app) plan(items []render.Item, e *redrive.Engine) []render.PlanRow {
	rows := make([]render.PlanRow, len(items))
	for i, it := range items {
		l := it.Letter
		r := render.PlanRow{
			Partition: l.Coord.Partition,
			Offset:    l.Coord.Offset,
			OrderID:   l.OrderID,
			Reason:    string(l.Meta.DLQReason),
			Action:    "redrive",
		}
		if why := redrive.Check(l, e.To, e.MaxRedrives); why != nil {
			r.Action, r.Why = "refuse", why.Error()
		} else {
			r.Target = redrive.Copy(l, e.To, e.RetryTopic, a.env.now(), "").Topic
			r.RedriveCount = l.Meta.RedriveCount + 1
		}
		rows[i] = r
	}
	return rows
}

// runRedrive waits for the health gate if there is one, then redrives.
func (a *app) runRedrive(ctx context.Context, s *session, e *redrive.Engine, gate *healthgate.Gate, ls []deadletter.Letter, out render.Outcome) error {
	if gate != nil {
		stop := runGate(ctx, gate)
		defer stop()
		fmt.Fprintf(a.env.Stderr, "waiting for %s to answer 2xx on %d consecutive probes...\n", gate.URL(), gate.HealthyAfter())
		if err := gate.WaitHealthy(ctx); err != nil {
			return fmt.Errorf("%w: nothing was redriven", err)
		}
		// While we waited, someone may have resolved some of them.
		if err := s.store.Refresh(ctx, s.state); err != nil {
			return err
		}
		ls = slices.DeleteFunc(ls, func(l deadletter.Letter) bool { return s.state.ResolvedLetter(l) })
		e.Continue = func() error {
			if !gate.Healthy() {
				return fmt.Errorf("%s turned unhealthy (%v)", gate.URL(), gate.LastError())
			}
			return nil
		}
	}
	if err := s.store.Ensure(ctx); err != nil {
		return err
	}
	bar := a.newProgress(len(ls), "redrive")
	e.OnResult = func(r redrive.Result) {
		bar.Add(1)
		if r.Outcome == redrive.Refused {
			fmt.Fprintf(a.env.Stderr, "refused %s (order %s): %s\n", r.Letter.Position(), render.CleanLine(r.Letter.OrderID), render.CleanLine(r.Why.Error()))
		}
	}
	rep, err := e.Run(ctx, ls)
	bar.Finish()
	out.Redriven, out.Refused = rep.Redriven, rep.Refused
	if err != nil {
		out.Stopped = err.Error()
		if perr := a.printer().Outcome(out); perr != nil {
			return perr
		}
		// Whatever stopped it, everything acknowledged is recorded.
		return fmt.Errorf("redrive stopped after %d records: %w; run the same command again to continue", rep.Redriven, err)
	}
	return a.printer().Outcome(out)
}

// reportHealth prints the gate's transitions.
func (a *app) reportHealth(healthy bool, err error) {
	if healthy {
		fmt.Fprintln(a.env.Stderr, "backend healthy")
		return
	}
	fmt.Fprintf(a.env.Stderr, "backend unhealthy: %v\n", err)
}
