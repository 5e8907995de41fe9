package dlq

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/healthgate"
)

// errAborted: the person answered no.
var errAborted = errors.New("aborted: nothing was changed")

// confirm asks question on a terminal; without a terminal it requires
// --yes, so that a script never changes anything by accident.
func (a *app) confirm(question string, yes bool) error {
	if yes {
		return nil
	}
	if !a.env.StdinTTY {
		return usagef("this changes the dead-letter queue and needs confirmation, but stdin is not a terminal: pass --yes (or --dry-run to see what would change)")
	}
	fmt.Fprintf(a.env.Stderr, "%s [y/N] ", question)
	answer, err := bufio.NewReader(a.env.Stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read the answer: %w", err)
	}
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return errAborted
}

// progress reports how far a run is.
type progress interface {
	Add(n int)
	Finish()
}

// newProgress returns a progress bar on a terminal, and plain lines at most
// once a second otherwise (a log file wants lines, not carriage returns).
func (a *app) newProgress(total int, what string) progress {
	if a.env.StderrTTY {
		return barProgress{progressbar.NewOptions(total,
			progressbar.OptionSetWriter(a.env.Stderr),
			progressbar.OptionSetDescription(what),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("rec"),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionEnableColorCodes(!a.g.noColor),
		)}
	}
	now := time.Now()
	return &lineProgress{w: a.env.Stderr, what: what, total: total, start: now, last: now, every: time.Second}
}

type barProgress struct{ bar *progressbar.ProgressBar }

func (b barProgress) Add(n int) { _ = b.bar.Add(n) }
func (b barProgress) Finish()   { _ = b.bar.Finish() }

type lineProgress struct {
	w     io.Writer
	what  string
	total int
	done  int
	start time.Time
	last  time.Time
	every time.Duration
}

func (p *lineProgress) Add(n int) {
	p.done += n
	if time.Since(p.last) >= p.every {
		p.print()
	}
}

func (p *lineProgress) Finish() {
	if p.done > 0 {
		p.print()
	}
}

func (p *lineProgress) print() {
	p.last = time.Now()
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(p.done) / float64(p.total)
	}
	rate := float64(p.done) / max(time.Since(p.start).Seconds(), 1e-3)
	fmt.Fprintf(p.w, "%s: %d/%d (%.0f%%), %.0f records/s\n", p.what, p.done, p.total, pct, rate)
}

// healthFlags configure --when-healthy.
type healthFlags struct {
	url            string
	healthyAfter   int
	unhealthyAfter int
	interval       time.Duration
}

func addHealthFlags(cmd *cobra.Command) *healthFlags {
	hf := &healthFlags{}
	fs := cmd.Flags()
	fs.StringVar(&hf.url, "when-healthy", "", "probe this URL (e.g. the backend's /readyz) and redrive only while it answers 2xx")
	fs.IntVar(&hf.healthyAfter, "healthy-after", 3, "consecutive 2xx probes before the backend counts as healthy")
	fs.IntVar(&hf.unhealthyAfter, "unhealthy-after", 1, "consecutive failed probes before it counts as unhealthy")
	fs.DurationVar(&hf.interval, "probe-interval", time.Second, "time between probes")
	return hf
}

// gate builds the health gate of the flags; nil when --when-healthy is not
// given. Transitions are reported on stderr.
func (a *app) gate(hf *healthFlags, report func(healthy bool, err error)) (*healthgate.Gate, error) {
	if hf.url == "" {
		return nil, nil
	}
	if hf.healthyAfter < 1 || hf.unhealthyAfter < 1 {
		return nil, usagef("--healthy-after and --unhealthy-after: want 1 or more")
	}
	if hf.interval <= 0 {
		return nil, usagef("--probe-interval %s: want a positive duration", hf.interval)
	}
	client := a.env.HTTPClient
	if client == nil {
		client = &http.Client{}
	}
	g, err := healthgate.New(healthgate.Config{
		URL:            hf.url,
		Client:         client,
		Interval:       hf.interval,
		HealthyAfter:   hf.healthyAfter,
		UnhealthyAfter: hf.unhealthyAfter,
		OnChange:       report,
	})
	if err != nil {
		return nil, usagef("--when-healthy: %v", err)
	}
	return g, nil
}

// runGate starts probing and returns the function that stops it.
func runGate(ctx context.Context, g *healthgate.Gate) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { g.Run(ctx) })
	return func() {
		cancel()
		wg.Wait()
	}
}
