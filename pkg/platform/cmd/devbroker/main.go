// Command devbroker runs an embedded Kafka-protocol broker (package devbroker)
// for development and tests: devbroker --topics orders:6,containers:6 prints the
// address once it accepts connections; --help lists every flag.
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
	case errors.Is(err, errUsage): // the usage was printed already
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "devbroker:", err)
		os.Exit(1)
	}
}
