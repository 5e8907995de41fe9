// Command order-retry consumes the orders that failed with a transient
// error, waits until each is due, and allocates it again; orders that
// keep failing, or fail for good, go to the dead-letter topic. The service
// lives in package retrier; this file only wires the process to it.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/reeferdlq/reefer-dlq/services/order-retry/retrier"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "order-retry:", err)
		os.Exit(1)
	}
}

// run reads the configuration, builds the logger and runs the service
// until ctx ends.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := retrier.ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	return retrier.Run(ctx, cfg.NewLogger(stdout), cfg)
}
