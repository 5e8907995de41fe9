// Command bench measures the claims of the retry and dead-letter pattern
// against the ways people do it instead, side by side in one run: on the
// same broker, the same database and the same machine. It reports ratios,
// because on a shared machine absolute rates are noisy and ratios measured
// minutes apart far less so.
//
// It starts the embedded broker, Postgres (the offline image, or
// --postgres) and the inventory mock, runs each case for a fixed number of
// orders, prints a table, and writes results.json, results.md and
// chart.png. Run it with `make bench`, or from this directory:
//
//	go run . [--quick] [--cases 3,4] [--orders 20000] [--out results] [--profile]
//
// The cases are those of docs/performance.md: the pipe limit, the
// dependency limits, reefer-manager healthy and with the inventory down,
// the blocking baselines, retry lateness, redrive, memory, and the suite
// against a share-group (KIP-932) consumer on the same workloads.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
