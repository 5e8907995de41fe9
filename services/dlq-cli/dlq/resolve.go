package dlq

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/filter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/render"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/resolution"
)

// resolveBatch is how many entries one write to the resolution log carries.
const resolveBatch = 500

func (a *app) resolveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "resolve [filters] --note TEXT",
		Short: "Mark pending dead letters as handled without redriving them",
		Long: `resolve records the selected pending dead letters as handled in the resolution
log, with your note, without publishing anything: for the permanent ones a
person fixed by hand, or decided to drop. The records stay in the topic;
list --status resolved shows them with the note.

It asks for confirmation on a terminal; otherwise pass --yes.`,
		Example: `  dlq resolve 0:15 --note "order cancelled by the customer"
  dlq resolve --reason poison --since 24h --note "malformed test events, INC-4711" --yes`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("resolve takes at most one partition:offset; select more with filters")
			}
			return nil
		},
	}
	ff := addFilterFlags(cmd, filter.Pending)
	note := cmd.Flags().String("note", "", "why these are resolved (required; kept in the resolution log)")
	dryRun := cmd.Flags().Bool("dry-run", false, "print what would be resolved; change nothing")
	yes := cmd.Flags().Bool("yes", false, "do not ask for confirmation (required when stdin is not a terminal)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if strings.TrimSpace(*note) == "" {
			return usagef("--note is required: say why, for whoever reads the resolution log next")
		}
		f, err := a.filter(ff)
		if err != nil {
			return err
		}
		if len(args) == 1 {
			pos, err := parsePositionArg(args[0])
			if err != nil {
				return err
			}
			f.Partition, f.FromOffset, f.Limit = pos.Partition, pos.Offset, 1
		}
		if f.Status != filter.Pending {
			return usagef("--status %s: resolve marks pending dead letters only", f.Status)
		}
		s, err := a.open(ctx)
		if err != nil {
			return err
		}
		defer s.close()
		cursor := resolution.NewCursor()
		items, err := s.selectItems(ctx, f, cursor)
		if err != nil {
			return err
		}
		if len(args) == 1 && len(items) == 1 && items[0].Letter.Position().String() != args[0] {
			items = nil
		}
		if len(items) == 0 {
			return errNoMatch
		}
		out := render.Outcome{Command: "resolve", Selected: len(items), Resolved: len(items)}
		if *dryRun {
			out.DryRun = true
			rows := make([]render.PlanRow, len(items))
			for i, it := range items {
				l := it.Letter
				rows[i] = render.PlanRow{Partition: l.Coord.Partition, Offset: l.Coord.Offset, OrderID: l.OrderID, Reason: string(l.Meta.DLQReason), Action: "resolve"}
			}
			if err := a.printer().Plan(rows); err != nil {
				return err
			}
			return a.printer().Outcome(out)
		}
		if err := a.confirm(fmt.Sprintf("Mark %d dead letters of %s resolved without redriving them?", len(items), a.g.topic), *yes); err != nil {
			return err
		}
		n, err := a.markResolved(ctx, s, cursor, items, *note)
		out.Resolved = n
		if err != nil {
			out.Stopped = err.Error()
			_ = a.printer().Outcome(out)
			return fmt.Errorf("resolve stopped after %d: %w; run the same command again to continue", n, err)
		}
		return a.printer().Outcome(out)
	}
	return cmd
}

// markResolved writes a resolved entry per item, batch by batch, and moves
// the group's watermark. Like a redrive, a batch that started is finished
// even when ctx ends.
func (a *app) markResolved(ctx context.Context, s *session, cursor *resolution.Cursor, items []render.Item, note string) (int, error) {
	return a.markResolvedBy(ctx, s, cursor, items, note, who(a.env))
}

// markResolvedBy is markResolved with the name written into the entries.
func (a *app) markResolvedBy(ctx context.Context, s *session, cursor *resolution.Cursor, items []render.Item, note, by string) (int, error) {
	if err := s.store.Ensure(ctx); err != nil {
		return 0, err
	}
	done := 0
	for start := 0; start < len(items); start += resolveBatch {
		if err := ctx.Err(); err != nil {
			return done, fmt.Errorf("interrupted: %w", err)
		}
		batch := items[start:min(start+resolveBatch, len(items))]
		entries := make([]resolution.Entry, len(batch))
		at := a.env.now().UTC()
		for i, it := range batch {
			entries[i] = resolution.Entry{DeadLetter: it.Letter.Coord, Action: resolution.Resolved, Note: note, At: at, By: by,
				Identity: it.Letter.Identity()}
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err := s.store.Record(wctx, s.state, entries)
		if err == nil {
			for _, it := range batch {
				cursor.Resolve(it.Letter.Position())
			}
			done += len(batch)
			err = s.store.Commit(wctx, s.state, cursor.Offsets())
		}
		cancel()
		if err != nil {
			return done, err
		}
	}
	return done, nil
}
