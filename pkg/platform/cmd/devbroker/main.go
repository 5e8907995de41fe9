// Command devbroker runs an embedded Kafka-protocol broker (package
// devbroker) for development and tests. Production uses a real Kafka
// cluster.
//
//	devbroker --listen 127.0.0.1:9092 --topics orders:6,containers:6
//
// It prints the advertised address on standard output once it accepts
// connections, logs to standard error, and stops cleanly on SIGINT or
// SIGTERM. Run devbroker --help for every flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errUsage):
		os.Exit(2) // the usage was printed already
	default:
		fmt.Fprintln(os.Stderr, "devbroker:", err)
		os.Exit(1)
	}
}
