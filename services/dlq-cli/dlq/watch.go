package dlq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"

	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/healthgate"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/pending"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/redrive"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/resolution"
)

func (a *app) watchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "watch --when-healthy URL",
		Short: "Automatic mode: redrive new transient dead letters while the backend is healthy",
		Long: `watch runs until interrupted. While URL answers 2xx (--healthy-after
consecutive probes), it redrives every pending dead letter whose error class is
transient, the ones that failed only because the backend was down, as they
arrive. Permanent ones are left for a person (dlq list --error-class
permanent). It pauses when the backend turns unhealthy and resumes when it
recovers. It starts at the group's offset (--group), so a restarted watch
picks up where the last one stopped. One log line per action on stderr.`,
		Example: `  dlq watch --when-healthy http://localhost:8081/readyz
  dlq watch --when-healthy http://inventory:8081/readyz --rate 100 --to original`,
		Args: noArgs,
	}
	rf := addRedriveFlags(cmd)
	hf := addHealthFlags(cmd)
	poll := cmd.Flags().Duration("poll-interval", 2*time.Second, "how often to look for new dead letters")
	metricsAddr := cmd.Flags().String("metrics-addr", "", "serve /metrics here, e.g. :9464: dlq_dead_letters_pending by reason and class, counted every --poll-interval even while paused (package pending)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if hf.url == "" {
			return usagef("--when-healthy URL is required: watch redrives only while the backend is healthy")
		}
		if *poll <= 0 {
			return usagef("--poll-interval %s: want a positive duration", *poll)
		}
		log := slog.New(slog.NewTextHandler(a.env.Stderr, nil))
		gate, err := a.gate(hf, func(healthy bool, err error) {
			if healthy {
				log.Info("backend healthy: redriving", "url", hf.url)
				return
			}
			log.Warn("backend unhealthy: paused", "url", hf.url, "err", err)
		})
		if err != nil {
			return err
		}
		s, err := a.open(cmd.Context())
		if err != nil {
			return err
		}
		defer s.close()
		if *metricsAddr != "" {
			_, stop, err := pending.Serve(cmd.Context(), pending.Config{Store: s.store, Addr: *metricsAddr, Every: *poll, Log: log})
			if err != nil {
				return err
			}
			defer stop()
		}
		w := &watcher{app: a, s: s, gate: gate, log: log, cursor: resolution.NewCursor(), poll: *poll}
		if w.engine, err = a.engine(s, w.cursor, rf, "dlq watch on "+who(a.env)); err != nil {
			return err
		}
		return w.run(cmd.Context())
	}
	return cmd
}

// watcher is one run of dlq watch.
type watcher struct {
	app    *app
	s      *session
	gate   *healthgate.Gate
	engine *redrive.Engine
	cursor *resolution.Cursor
	log    *slog.Logger
	poll   time.Duration

	// next is the next offset to look at per partition.
	next map[int]int64
	// noted are the letters already reported as left for a person, so a
	// partition read again after a pause does not report them twice.
	noted              map[deadletter.Position]bool
	redriven, leftOver int
}

func (w *watcher) run(ctx context.Context) error {
	if err := w.s.store.Ensure(ctx); err != nil {
		return err
	}
	w.next = map[int]int64{}
	w.noted = map[deadletter.Position]bool{}
	for _, p := range w.s.parts {
		start := p.First
		if g, ok := w.s.state.GroupOffset(p.ID); ok {
			start = max(start, g)
		}
		w.next[p.ID] = start
	}
	w.engine.Continue = func() error {
		if !w.gate.Healthy() {
			return errPaused
		}
		return nil
	}
	w.engine.OnResult = w.logResult

	stop := runGate(ctx, w.gate)
	defer stop()
	w.log.Info("watching", "topic", w.app.g.topic, "group", w.app.g.group, "health", w.gate.URL(), "to", w.engine.To)
	for {
		if err := w.gate.WaitHealthy(ctx); err != nil {
			break
		}
		if err := w.round(ctx); err != nil && !errors.Is(err, errPaused) {
			if ctx.Err() != nil {
				break
			}
			// A broker hiccup is not a reason to stop the automatic mode:
			// say so and try again next round.
			w.log.Error("round failed; retrying", "err", err)
		}
		t := time.NewTimer(w.poll)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		if ctx.Err() != nil {
			break
		}
	}
	w.log.Info("stopped", "redriven", w.redriven, "left_for_a_person", w.leftOver)
	return nil
}

// errPaused stops a round when the gate closes.
var errPaused = errors.New("backend unhealthy")

// round reads what arrived since the last round and redrives the transient
// pending letters. The positions only move past records whose fate is
// settled (redriven, left for a person, resolved by someone else); a round
// that stops early (gate closed, interrupted) reads the rest next time.
func (w *watcher) round(ctx context.Context) error {
	if err := w.s.store.Refresh(ctx, w.s.state); err != nil {
		return err
	}
	parts, err := w.s.log.Partitions(ctx, w.app.g.topic)
	if err != nil {
		return err
	}
	for _, p := range parts {
		from := max(w.next[p.ID], p.First)
		if from >= p.End {
			continue
		}
		var todo []deadletter.Letter
		err := w.s.log.Scan(ctx, w.app.g.topic, p.ID, from, p.End, func(m kafka.Message) error {
			l := w.s.decode(m)
			resolved := w.s.state.ResolvedLetter(l)
			w.cursor.Observe(l.Position(), resolved)
			switch {
			case resolved:
			case !l.Transient():
				if w.noted[l.Position()] {
					return nil
				}
				w.noted[l.Position()] = true
				w.leftOver++
				w.log.Info("left for a person", "position", l.Position().String(), "order", l.OrderID,
					"reason", l.Meta.DLQReason, "class", classOrMalformed(l), "message", shortMessage(l))
			default:
				todo = append(todo, l)
			}
			return nil
		})
		if err != nil {
			return err
		}
		w.cursor.ScannedTo(p.ID, p.End)
		if _, err := w.engine.Run(ctx, todo); err != nil {
			return err
		}
		w.next[p.ID] = p.End
	}
	return w.s.store.Commit(ctx, w.s.state, w.cursor.Offsets())
}

func (w *watcher) logResult(r redrive.Result) {
	l := r.Letter
	if r.Outcome == redrive.Refused {
		if w.noted[l.Position()] {
			return
		}
		w.noted[l.Position()] = true
		w.leftOver++
		w.log.Warn("refused, left for a person", "position", l.Position().String(), "order", l.OrderID, "why", r.Why)
		return
	}
	w.redriven++
	w.log.Info("redriven", "position", l.Position().String(), "order", l.OrderID, "reason", l.Meta.DLQReason,
		"target", fmt.Sprintf("%s %d:%d", r.Target.Topic, r.Target.Partition, r.Target.Offset), "redrive_count", r.RedriveCount)
}

func classOrMalformed(l deadletter.Letter) string {
	if l.Malformed != "" {
		return "malformed"
	}
	return string(l.Meta.ErrorClass)
}

func shortMessage(l deadletter.Letter) string {
	m := l.Meta.ErrorMessage
	if l.Malformed != "" {
		m = l.Malformed
	}
	if r := []rune(m); len(r) > 120 {
		return string(r[:119]) + "…"
	}
	return m
}
