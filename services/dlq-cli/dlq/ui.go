package dlq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/console"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/filter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/redrive"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/render"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/resolution"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/valueedit"
)

// DefaultUIAddr is where dlq ui listens: loopback only.
const DefaultUIAddr = "127.0.0.1:8089"

func (a *app) uiCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Web console: browse, filter, edit, redrive and resolve dead letters in a browser",
		Long: `ui serves a web console for the dead-letter topic until interrupted: the
letters with the same filters as list, updated live as new ones arrive; one
letter in detail (labelled headers, pretty-printed value, stack trace, its
history); and the actions: edit the value (the diff is shown before
saving), redrive a selection after a dry run (with a rate limit and a
progress bar), resolve with a note. Each action goes through the same code
and validation as the CLI.

It listens on 127.0.0.1:8089 (--addr). Bound to any other address it
requires a token (--token or DLQ_UI_TOKEN): open it once with ?token=...`,
		Example: `  dlq ui
  dlq ui --addr 127.0.0.1:9000
  DLQ_UI_TOKEN=$(openssl rand -hex 16) dlq ui --addr 0.0.0.0:8089`,
		Args: noArgs,
	}
	addr := cmd.Flags().String("addr", DefaultUIAddr, "host:port to listen on")
	token := cmd.Flags().String("token", "", "token required on every request; mandatory off loopback (env DLQ_UI_TOKEN)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		if *token == "" {
			*token = a.env.getenv("DLQ_UI_TOKEN")
		}
		host, _, err := net.SplitHostPort(*addr)
		if err != nil {
			return usagef("--addr %q: want host:port (%v)", *addr, err)
		}
		loopback := isLoopback(host)
		if !loopback && *token == "" {
			return usagef("--addr %s is not a loopback address: set --token or DLQ_UI_TOKEN, or anyone who reaches it can redrive", *addr)
		}
		// Reach the brokers once now, so a wrong --brokers fails here and
		// not on the first page.
		s, err := a.open(ctx)
		if err != nil {
			return err
		}
		s.close()
		log := slog.New(slog.NewTextHandler(a.env.Stderr, nil))
		srv, err := console.New(ctx, console.Config{Backend: uiBackend{a}, Token: *token, Loopback: loopback, Log: log, Now: a.env.Now})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", *addr, err)
		}
		hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
		fmt.Fprintf(a.env.Stderr, "dlq console for %s at http://%s/ (Ctrl-C stops it)\n", a.g.topic, ln.Addr())
		errc := make(chan error, 1)
		go func() { errc <- hs.Serve(ln) }()
		select {
		case err := <-errc:
			return fmt.Errorf("console: %w", err)
		case <-ctx.Done():
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("console shutdown: %w", err)
		}
		return nil
	}
	return cmd
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// uiBackend is the console's Backend: each call opens a session as a CLI
// command does, so the console always shows the resolution log as it is.
type uiBackend struct{ a *app }

func (b uiBackend) Topic() string { return b.a.g.topic }

func (b uiBackend) List(ctx context.Context, f filter.Filter) ([]render.Item, error) {
	return b.a.read(ctx, f)
}

func (b uiBackend) Watermark(ctx context.Context) (int64, error) {
	s, err := b.a.open(ctx)
	if err != nil {
		return 0, err
	}
	defer s.close()
	var sum int64
	for _, p := range s.parts {
		sum += p.End
	}
	return sum, nil
}

// one reads the letter at pos within an open session.
func (b uiBackend) one(ctx context.Context, s *session, pos deadletter.Position) (render.Item, error) {
	f := filter.New()
	f.Partition, f.FromOffset, f.Limit = pos.Partition, pos.Offset, 1
	items, err := s.selectItems(ctx, f, nil)
	if err != nil {
		return render.Item{}, err
	}
	if len(items) == 0 || items[0].Letter.Position() != pos {
		return render.Item{}, fmt.Errorf("no dead letter at %s in %s", pos, b.a.g.topic)
	}
	return items[0], nil
}

func (b uiBackend) Letter(ctx context.Context, pos deadletter.Position) (render.Item, []console.Event, error) {
	s, err := b.a.open(ctx)
	if err != nil {
		return render.Item{}, nil, err
	}
	defer s.close()
	it, err := b.one(ctx, s, pos)
	if err != nil {
		return it, nil, err
	}
	l := it.Letter
	var hist []console.Event
	if e, ok := s.state.Lineage(l.Origin()); ok {
		hist = append(hist, console.Event{At: e.At, What: fmt.Sprintf("a copy redriven by %s from an earlier dead letter (redrive %d); it failed again", e.By, e.RedriveCount), Link: e.Position().String()})
	}
	hist = append(hist, console.Event{At: l.DeadLetteredAt(), What: fmt.Sprintf("dead-lettered (%s)", l.Dialect)})
	if r := it.Resolution; r != nil {
		what := string(r.Action)
		if r.Target != nil {
			what += fmt.Sprintf(" to %s %d:%d", r.Target.Topic, r.Target.Partition, r.Target.Offset)
		}
		if r.By != "" {
			what += " by " + r.By
		}
		if r.Note != "" {
			what += ": " + r.Note
		}
		hist = append(hist, console.Event{At: r.At, What: what})
	}
	return it, hist, nil
}

// pending opens a session and selects the pending letters at positions,
// with a cursor that saw every record from the group's offset on.
func (b uiBackend) pending(ctx context.Context, positions []deadletter.Position) (*session, *resolution.Cursor, []render.Item, error) {
	s, err := b.a.open(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	cursor := resolution.NewCursor()
	f := filter.New()
	f.Status = filter.Pending
	items, err := s.selectItems(ctx, f, cursor)
	if err != nil {
		s.close()
		return nil, nil, nil, err
	}
	want := make(map[deadletter.Position]bool, len(positions))
	for _, p := range positions {
		want[p] = true
	}
	items = slices.DeleteFunc(items, func(it render.Item) bool { return !want[it.Letter.Position()] })
	return s, cursor, items, nil
}

func (b uiBackend) Plan(ctx context.Context, positions []deadletter.Position, to redrive.Target, maxRedrives int) ([]render.PlanRow, error) {
	s, cursor, items, err := b.pending(ctx, positions)
	if err != nil {
		return nil, err
	}
	defer s.close()
	e, err := b.a.engine(s, cursor, &redriveFlags{to: string(to), maxRedrives: maxRedrives}, "")
	if err != nil {
		return nil, err
	}
	return b.a.plan(items, e), nil
}

func (b uiBackend) Redrive(ctx context.Context, positions []deadletter.Position, to redrive.Target, maxRedrives int, rate float64, onResult func(redrive.Result)) (redrive.Report, error) {
	s, cursor, items, err := b.pending(ctx, positions)
	if err != nil {
		return redrive.Report{}, err
	}
	defer s.close()
	e, err := b.a.engine(s, cursor, &redriveFlags{to: string(to), maxRedrives: maxRedrives, rate: rate}, who(b.a.env)+" (console)")
	if err != nil {
		return redrive.Report{}, err
	}
	if err := s.store.Ensure(ctx); err != nil {
		return redrive.Report{}, err
	}
	e.OnResult = onResult
	return e.Run(ctx, letters(items))
}

func (b uiBackend) Resolve(ctx context.Context, positions []deadletter.Position, note string) (int, error) {
	s, cursor, items, err := b.pending(ctx, positions)
	if err != nil {
		return 0, err
	}
	defer s.close()
	return b.a.markResolvedBy(ctx, s, cursor, items, note, who(b.a.env)+" (console)")
}

// edited validates a new value for the pending letter at pos, as dlq edit
// does.
func (b uiBackend) edited(ctx context.Context, s *session, pos deadletter.Position, value []byte) (render.Item, []byte, error) {
	it, err := b.one(ctx, s, pos)
	if err != nil {
		return it, nil, err
	}
	if it.Resolution != nil {
		return it, nil, fmt.Errorf("%s is already resolved (%s): edit works on pending dead letters", pos, it.Resolution.Action)
	}
	v := valueedit.Compact(value)
	if bytes.Equal(v, it.Letter.Value) || bytes.Equal(v, valueedit.Compact(it.Letter.Value)) {
		return it, nil, errors.New("the value is unchanged")
	}
	if it.Letter.Dialect == deadletter.Reefer {
		if _, err := valueedit.Validate(v, it.Letter.Key); err != nil {
			return it, nil, err
		}
	}
	return it, v, nil
}

func (b uiBackend) EditPreview(ctx context.Context, pos deadletter.Position, value []byte) (string, error) {
	s, err := b.a.open(ctx)
	if err != nil {
		return "", err
	}
	defer s.close()
	it, v, err := b.edited(ctx, s, pos, value)
	if err != nil {
		return "", err
	}
	return valueedit.Diff(it.Letter.Value, v, pos.String()+" (dead letter)", pos.String()+" (corrected)")
}

func (b uiBackend) Edit(ctx context.Context, pos deadletter.Position, value []byte, to redrive.Target) (redrive.Result, error) {
	s, err := b.a.open(ctx)
	if err != nil {
		return redrive.Result{}, err
	}
	defer s.close()
	it, v, err := b.edited(ctx, s, pos, value)
	if err != nil {
		return redrive.Result{}, err
	}
	e, err := b.a.engine(s, resolution.NewCursor(), &redriveFlags{to: string(to), maxRedrives: redrive.DefaultMaxRedrives}, who(b.a.env)+" (console)")
	if err != nil {
		return redrive.Result{}, err
	}
	if err := s.store.Ensure(ctx); err != nil {
		return redrive.Result{}, err
	}
	return e.Edit(ctx, it.Letter, v)
}
