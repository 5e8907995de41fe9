package dlq

import (
	"bytes"
	"cmp"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/filter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/redrive"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/render"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/resolution"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/valueedit"
)

// parsePositionArg parses a partition:offset argument as a usage error.
func parsePositionArg(s string) (deadletter.Position, error) {
	pos, err := deadletter.ParsePosition(s)
	if err != nil {
		return pos, usagef("%v (e.g. 0:15)", err)
	}
	return pos, nil
}

func (a *app) editCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "edit <partition:offset> [--set path=value ...]",
		Short: "Fix a dead letter's data and redrive the corrected copy",
		Long: `edit changes the value of one pending dead letter: with --set path=value
(e.g. --set data.quantity=4; the value is JSON when it parses as JSON, a
string otherwise), or in $VISUAL / $EDITOR when no --set is given. The result
must decode as the event it claims to be (its CloudEvents type), with the
same subject as the record key. edit shows the diff, asks for confirmation
(or --yes), and redrives the corrected copy with x-dlq-edited-from naming
the original, which stays in the topic and is marked resolved (edited).`,
		Example: `  dlq edit 0:15 --set data.quantity=4 --dry-run
  dlq edit 0:15 --set data.destinationCity=Rotterdam --yes
  EDITOR=nano dlq edit 1:7`,
		Args: exactArgs(1),
	}
	sets := cmd.Flags().StringArray("set", nil, "path=value to change (repeatable)")
	to := cmd.Flags().String("to", string(redrive.ToRetry), "retry or original: where the corrected copy goes")
	dryRun := cmd.Flags().Bool("dry-run", false, "validate and show the diff; change nothing")
	yes := cmd.Flags().Bool("yes", false, "do not ask for confirmation (required when stdin is not a terminal)")
	_ = cmd.RegisterFlagCompletionFunc("to", fixedCompletions("retry", "original"))
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		pos, err := parsePositionArg(args[0])
		if err != nil {
			return err
		}
		s, err := a.open(ctx)
		if err != nil {
			return err
		}
		defer s.close()
		e, err := a.engine(s, resolution.NewCursor(), &redriveFlags{to: *to, maxRedrives: redrive.DefaultMaxRedrives}, who(a.env))
		if err != nil {
			return err
		}
		f := filter.New()
		f.Partition, f.FromOffset, f.Limit = pos.Partition, pos.Offset, 1
		items, err := s.selectItems(ctx, f, nil)
		if err != nil {
			return err
		}
		if len(items) == 0 || items[0].Letter.Position() != pos {
			return noMatchError{fmt.Sprintf("no dead letter at %s in %s", pos, a.g.topic)}
		}
		it := items[0]
		if it.Resolution != nil {
			return fmt.Errorf("%s is already resolved (%s): edit works on pending dead letters", pos, it.Resolution.Action)
		}
		l := it.Letter

		var edited []byte
		if len(*sets) > 0 {
			if edited, err = valueedit.Set(l.Value, *sets); err != nil {
				return usageError{err}
			}
		} else {
			editor := valueedit.Editor{
				Command: cmp.Or(a.env.getenv("VISUAL"), a.env.getenv("EDITOR")),
				Stdin:   a.env.Stdin, Stdout: a.env.Stdout, Stderr: a.env.Stderr,
			}
			if editor.Command == "" {
				return usagef("nothing to apply: give --set path=value, or set $EDITOR to edit the value")
			}
			if edited, err = editor.Edit(ctx, l.Value); err != nil {
				return err
			}
			edited = valueedit.Compact(edited)
		}
		if bytes.Equal(edited, l.Value) {
			return fmt.Errorf("the value is unchanged: nothing was redriven (dlq redrive sends a letter as it is)")
		}
		// This suite's events have a schema to check; another framework's
		// values are its own business (the diff is still shown).
		if l.Dialect == deadletter.Reefer {
			if _, err := valueedit.Validate(edited, l.Key); err != nil {
				return fmt.Errorf("%w; nothing was redriven", err)
			}
		}
		diff, err := valueedit.Diff(l.Value, edited, pos.String()+" (dead letter)", pos.String()+" (corrected)")
		if err != nil {
			return err
		}
		// The diff is for the person; with -o json stdout stays one document.
		diffOut := a.env.Stdout
		if a.printer().Format != render.Table {
			diffOut = a.env.Stderr
		}
		fmt.Fprint(diffOut, diff)

		target := a.targetName(e.To)
		if *dryRun {
			fmt.Fprintf(a.env.Stdout, "dry run: the corrected record is valid; it would go to %s with %s=%s; nothing was changed\n",
				target, "x-dlq-edited-from", redrive.EditedFrom(l))
			return nil
		}
		if err := a.confirm(fmt.Sprintf("Redrive the corrected %s to %s and mark the original resolved?", pos, target), *yes); err != nil {
			return err
		}
		if err := s.store.Ensure(ctx); err != nil {
			return err
		}
		res, err := e.Edit(ctx, l, edited)
		if err != nil {
			return err
		}
		out := render.Outcome{Command: "edit", Selected: 1, Redriven: 1, Target: res.Target.Topic}
		if a.printer().Format != render.Table {
			return a.printer().Outcome(out)
		}
		fmt.Fprintf(a.env.Stdout, "redriven the corrected %s to %s %d:%d; %s is marked resolved (edited)\n",
			pos, res.Target.Topic, res.Target.Partition, res.Target.Offset, pos)
		return nil
	}
	return cmd
}
