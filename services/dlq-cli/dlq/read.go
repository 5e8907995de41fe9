package dlq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/filter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/render"
)

// read connects, reads the letters f selects and disconnects: the whole
// of a reading command but its output.
func (a *app) read(ctx context.Context, f filter.Filter) ([]render.Item, error) {
	s, err := a.open(ctx)
	if err != nil {
		return nil, err
	}
	defer s.close()
	return s.selectItems(ctx, f, nil)
}

// readFiltered is read with the filters of the command line.
func (a *app) readFiltered(ctx context.Context, ff *filterFlags) ([]render.Item, error) {
	f, err := a.filter(ff)
	if err != nil {
		return nil, err
	}
	return a.read(ctx, f)
}

func (a *app) listCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list [filters]",
		Short: "One row per dead letter: position, order, reason, class, attempts, times, message",
		Example: `  dlq list
  dlq list --reason max-attempts --since 2h
  dlq list --status all -o jsonl | jq .orderID`,
		Args: noArgs,
	}
	ff := addFilterFlags(cmd, filter.All)
	failEmpty := cmd.Flags().Bool("fail-empty", false, "exit 3 when nothing matches (default: an empty list is a success)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		items, err := a.readFiltered(cmd.Context(), ff)
		if err != nil {
			return err
		}
		if err := a.printer().List(items); err != nil {
			return fmt.Errorf("write the list: %w", err)
		}
		if len(items) == 0 && *failEmpty {
			return errNoMatch
		}
		return nil
	}
	return cmd
}

func (a *app) showCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show <order-id | partition:offset>",
		Short: "Every header decoded and labelled, the payload pretty-printed, the stack trace",
		Example: `  dlq show 0:15
  dlq show O-1001 -o json`,
		Args: exactArgs(1),
	}
	status := cmd.Flags().String("status", string(filter.All), "for an order id: pending, resolved or all")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		f := filter.New()
		var err error
		if f.Status, err = filter.ParseStatus(*status); err != nil {
			return usagef("--status: %v", err)
		}
		pos, perr := deadletter.ParsePosition(args[0])
		if perr == nil {
			f.Partition, f.FromOffset, f.Limit = pos.Partition, pos.Offset, 1
		} else {
			f.OrderID = args[0]
		}
		items, err := a.read(cmd.Context(), f)
		if err != nil {
			return err
		}
		if perr == nil && (len(items) == 0 || items[0].Letter.Position() != pos) {
			return noMatchError{fmt.Sprintf("no dead letter at %s in %s", pos, a.g.topic)}
		}
		if len(items) == 0 {
			return noMatchError{fmt.Sprintf("no dead letter for order %q in %s (status %s)", args[0], a.g.topic, f.Status)}
		}
		return a.printer().Show(items)
	}
	return cmd
}

func (a *app) statsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stats [filters]",
		Short: "Counts by reason, error class and hour, and the oldest pending dead letter",
		Args:  noArgs,
	}
	ff := addFilterFlags(cmd, filter.All)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		items, err := a.readFiltered(cmd.Context(), ff)
		if err != nil {
			return err
		}
		if err := a.printer().Stats(render.Summarize(items, a.env.now())); err != nil {
			return err
		}
		if len(items) == 0 {
			return errNoMatch
		}
		return nil
	}
	return cmd
}

func (a *app) exportCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export [filters]",
		Short: "JSON lines of the records as they are (headers, key, value, coordinates), for audits and tickets",
		Example: `  dlq export --order-id O-1001 > O-1001.jsonl
  dlq export --since 24h --file dead-letters.jsonl`,
		Args: noArgs,
	}
	ff := addFilterFlags(cmd, filter.All)
	file := cmd.Flags().String("file", "", "write to this file (created or truncated, mode 0600) instead of stdout")
	cmd.RunE = func(cmd *cobra.Command, _ []string) (err error) {
		var items []render.Item
		items, err = a.readFiltered(cmd.Context(), ff)
		if err != nil {
			return err
		}
		if len(items) == 0 {
			return errNoMatch
		}
		var w io.Writer = a.env.Stdout
		if *file != "" {
			// Dead letters carry customer data: readable by the owner only.
			out, err := os.OpenFile(*file, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return fmt.Errorf("export: %w", err)
			}
			defer func() { err = errors.Join(err, out.Close()) }()
			w = out
		}
		if err := render.Export(w, items); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if *file != "" {
			fmt.Fprintf(a.env.Stderr, "exported %d dead letters to %s\n", len(items), *file)
		}
		return nil
	}
	return cmd
}
