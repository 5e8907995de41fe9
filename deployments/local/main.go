// Command local is the local demo behind `make demo`: the whole retry and
// dead-letter pattern in one process, narrated, with nothing to install but
// Go. `go run ./deployments/local --help` lists the flags; the scenario and
// the code live in package demo.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/reeferdlq/reefer-dlq/deployments/local/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses the flags, runs the demo and returns the exit code: 0 when
// the invariant holds, 1 when it does not or the demo could not run, 2 for
// a bad command line.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 2
	}
	cfg.Out = stdout
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 2
	}
	if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		cfg.Live = true
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			cfg.Width = w
		}
	}
	res, err := demo.Run(ctx, cfg)
	switch {
	case errors.Is(err, demo.ErrInvariant):
		fmt.Fprintln(stderr, "demo: the invariant does not hold (see the ✘ lines above)")
		return 1
	case err != nil && ctx.Err() != nil:
		fmt.Fprintln(stderr, "demo: interrupted; everything it started is stopped")
		return 1
	case err != nil:
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	fmt.Fprintf(stdout, "Done in %.1fs.\n", res.Elapsed.Seconds())
	return 0
}

func parseFlags(args []string, stderr io.Writer) (demo.Config, error) {
	cfg := demo.Config{}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.Orders, "orders", demo.DefaultOrders, "orders sent in each of phases 1, 2 and 3")
	fs.IntVar(&cfg.Permanent, "permanent", demo.DefaultPermanent, "orders the inventory refuses for good (HTTP 422), sent in phase 3")
	fs.Uint64Var(&cfg.Seed, "seed", demo.DefaultSeed, "seed of the orders and of the inventory's random faults")
	fs.Float64Var(&cfg.Speed, "speed", demo.DefaultSpeed, "scales every delay: 2 runs twice as fast, 0.5 half as fast (for a talk)")
	fs.BoolVar(&cfg.KeepRunning, "keep-running", false, "leave everything running after the scenario, print the addresses, stop on Ctrl-C")
	fs.StringVar(&cfg.PostgresURL, "postgres", "", "use this Postgres database instead of a SQLite file (postgres://user:pass@host:5432/db?sslmode=disable)")
	brokers := fs.String("brokers", "", "use these Kafka brokers (host:port,...) instead of the embedded one")
	fs.StringVar(&cfg.Trace, "trace", "", "print this order's trace as a waterfall at the end (default: one that was retried, dead-lettered and redriven; none: no waterfall)")
	fs.StringVar(&cfg.ChartPath, "chart", "", "write the timeline PNG here (default: reefer-dlq-demo-timeline.png in the OS temp dir)")
	fs.BoolVar(&cfg.Quiet, "quiet", false, "print only the phase titles, their outcomes, the summary and the verdict")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run ./deployments/local [flags]   (make demo DEMO_FLAGS=\"...\")\n\n"+
			"Runs the Kafka retry and dead-letter pattern end to end in one process and narrates it:\n"+
			"healthy, flaky, outage and dead letters, redrive. Exits 0 when every order ends in exactly\n"+
			"one terminal state, none lost, none allocated twice.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q (flags only; see --help)", fs.Arg(0))
	}
	if *brokers != "" {
		for _, b := range strings.Split(*brokers, ",") {
			cfg.Brokers = append(cfg.Brokers, strings.TrimSpace(b))
		}
	}
	return cfg, nil
}
