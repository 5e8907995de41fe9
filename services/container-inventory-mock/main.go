// Command container-inventory-mock plays the legacy container-inventory
// service that reefer-manager calls, with faults you can steer while it runs.
// See README.md for the API, the fault profiles and the configuration.
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
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "container-inventory-mock:", err)
		stop()
		os.Exit(1)
	}
}
