package main

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// params are the parameters of a run: the flags, and the sizes of each
// case derived from them (--quick shrinks every case to a smoke test).
type params struct {
	quick    bool
	postgres string // --postgres URL; empty: start the offline image
	orders   int    // orders per throughput case
	out      string
	cases    []string
	bin      string // prebuilt binaries for case 8; empty: build them
	profile  bool
	replot   string // --replot DIR: redraw from DIR/results.json
	// serviceEnv is added to the environment of every reefer-manager and
	// order-retry, in process or not, and of every service process of
	// case 8 (--service-env), to try a setting such as GOMEMLIMIT.
	serviceEnv map[string]string

	// baselineWindow is how long each blocking baseline (case 5) runs.
	baselineWindow time.Duration
	// retries and the delay range of case 6.
	retries            int
	minDelay, maxDelay time.Duration
	// throttled is the number of dead letters redriven with --rate
	// redriveRate (case 7).
	throttled   int
	redriveRate float64
	// maxPending is order-retry's MAX_PENDING in case 8; backlogFactor the
	// backlog it is given, as a multiple of it.
	maxPending    int
	backlogFactor int
	// hold is how long case 8 keeps order-retry working on retries after
	// reefer-manager concluded the orders of an outage.
	hold time.Duration
	// inFlight is reefer-manager's MAX_IN_FLIGHT, used by every concurrent
	// case so that they compare like for like.
	inFlight int
	// inventoryTimeout is INVENTORY_TIMEOUT when the inventory is down:
	// how long a hanging inventory holds each call.
	inventoryTimeout time.Duration
	// Case 9: shareOrders per healthy and outage run, flakyOrders in the
	// flaky run, recoveryOrders produced once the outage ends; outageFor
	// is how long the inventory is down (longer than the suite's retry
	// budget); retryBase is the suite's RETRY_BASE_DELAY.
	shareOrders, flakyOrders, recoveryOrders int
	outageFor, retryBase                     time.Duration
	// callTimeout is INVENTORY_TIMEOUT when the inventory is healthy
	// (cases 2, 3, 6 and 8-healthy), where a call that times out would
	// be a failure of the case. It equals inventoryTimeout in a full run;
	// --quick makes it generous, because a smoke run on a loaded machine
	// under -race checks that every case runs, not that each call is fast.
	callTimeout time.Duration
}

// timeoutFor is the INVENTORY_TIMEOUT of a run whose inventory is down or
// healthy.
func (p params) timeoutFor(down bool) time.Duration {
	if down {
		return p.inventoryTimeout
	}
	return p.callTimeout
}

// allCases are the case numbers of the issue, in run order.
var allCases = []string{"1", "2", "3", "4", "5", "6", "7", "8", "9"}

// parseParams reads the command line.
func parseParams(args []string, stderr io.Writer) (params, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `bench measures the retry and dead-letter pattern against the ways people do it
instead, side by side on one broker, database and machine, and reports ratios.

Usage: go run . [flags]      (from bench/; or: make bench)

Cases: 1 pipe limit, 2 dependency limits, 3 reefer-manager healthy, 4 inventory
down, 5 blocking baselines, 6 retry lateness, 7 redrive, 8 memory, 9 retry
topics against a share group (KIP-932).

Flags:
`)
		fs.PrintDefaults()
	}
	var p params
	var cases string
	fs.BoolVar(&p.quick, "quick", false, "run a small version of every case: a smoke test of the program, not numbers to trust")
	fs.StringVar(&p.postgres, "postgres", "", "use this Postgres server (postgres://user:pass@host:5432/db?sslmode=disable; the user needs CREATEDB) instead of starting the offline image reefer-dlq/postgres:15 in Docker")
	fs.IntVar(&p.orders, "orders", 0, "orders per throughput case (default 20000, 200 with --quick)")
	fs.StringVar(&p.out, "out", "results", "directory for results.json, results.md, chart.png, logs/ and profiles/")
	fs.StringVar(&cases, "cases", strings.Join(allCases, ","), "comma-separated cases to run, e.g. 3,4,5")
	fs.StringVar(&p.bin, "bin", "", "directory holding the service binaries for case 8 (make build puts them in bin/); default: build them with go build")
	fs.BoolVar(&p.profile, "profile", false, "write to <out>/profiles/ a CPU profile of each measured window, goroutine profiles 1 s and 3 s into it, and order-retry's heap in case 8 (go tool pprof -top)")
	p.serviceEnv = map[string]string{}
	fs.Func("service-env", "NAME=VALUE added to the environment of reefer-manager and order-retry (in process or not) and of every service process of case 8, e.g. MAX_IN_FLIGHT=128 or GOMEMLIMIT=40MiB (repeatable; the results then say they are not the defaults)", func(v string) error {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return fmt.Errorf("want NAME=VALUE, e.g. GOMEMLIMIT=48MiB")
		}
		p.serviceEnv[k] = val
		return nil
	})
	fs.StringVar(&p.replot, "replot", "", "run nothing: redraw chart.png and rewrite results.md from the results.json in this directory")
	if err := fs.Parse(args); err != nil {
		return params{}, err
	}
	if fs.NArg() > 0 {
		return params{}, fmt.Errorf("unexpected argument %q: bench takes flags only (see -h)", fs.Arg(0))
	}

	for c := range strings.SplitSeq(cases, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if !slices.Contains(allCases, c) {
			return params{}, fmt.Errorf("--cases: unknown case %q: want numbers from 1 to 9, e.g. --cases 3,4", c)
		}
		if !slices.Contains(p.cases, c) {
			p.cases = append(p.cases, c)
		}
	}
	if len(p.cases) == 0 {
		return params{}, fmt.Errorf("--cases %q selects nothing: want e.g. --cases 3,4", cases)
	}
	slices.SortFunc(p.cases, func(a, b string) int { return slices.Index(allCases, a) - slices.Index(allCases, b) })
	if p.orders < 0 {
		return params{}, fmt.Errorf("--orders %d: want a positive number", p.orders)
	}
	if p.out == "" {
		return params{}, fmt.Errorf("--out is empty: want a directory")
	}

	p.inFlight = 256 // reefer-manager's MAX_IN_FLIGHT default
	p.inventoryTimeout = 2 * time.Second
	p.redriveRate = 1000
	p.minDelay = 100 * time.Millisecond
	if p.quick {
		// Small enough to run in the test suite in well under a minute.
		p.orders = cmp.Or(p.orders, 200)
		p.baselineWindow = time.Second
		p.retries, p.maxDelay = 200, 500*time.Millisecond
		p.throttled = 200
		p.maxPending, p.backlogFactor = 200, 4
		p.hold = 500 * time.Millisecond
		// The suite's back-off a tenth of its default, so that an outage
		// longer than its retry budget fits in seconds.
		p.shareOrders, p.flakyOrders, p.recoveryOrders = 200, 200, 50
		p.retryBase, p.outageFor = 100*time.Millisecond, 3*time.Second
		// The hang cases wait for this timeout: short, so they end quickly.
		p.inventoryTimeout = 500 * time.Millisecond
		// A healthy call that a loaded 2-core machine under -race holds
		// for seconds is slow, not failed: 30 s is far above any such
		// stall, and a hung call would still end the case.
		p.callTimeout = 30 * time.Second
	} else {
		p.orders = cmp.Or(p.orders, 20000)
		p.baselineWindow = 20 * time.Second
		p.retries, p.maxDelay = 10000, 5*time.Second
		p.throttled = 5000
		p.maxPending, p.backlogFactor = 10000, 4
		p.hold = 5 * time.Second
		p.shareOrders, p.flakyOrders, p.recoveryOrders = 5000, 2000, 1000
		p.retryBase, p.outageFor = time.Second, 35*time.Second
	}
	p.callTimeout = cmp.Or(p.callTimeout, p.inventoryTimeout)
	return p, nil
}
