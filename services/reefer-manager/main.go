// Command reefer-manager consumes OrderCreated events, allocates a reefer
// container to each order and emits the outcome; failures are handed to
// the retry or dead-letter topic. The service lives in package manager;
// this file only wires the process to it.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/reeferdlq/reefer-dlq/services/reefer-manager/manager"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "reefer-manager:", err)
		os.Exit(1)
	}
}

// run reads the configuration, builds the logger and runs the service
// until ctx ends.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := manager.ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	return manager.Run(ctx, cfg.NewLogger(stdout), cfg)
}
