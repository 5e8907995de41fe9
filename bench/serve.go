package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/reeferdlq/reefer-dlq/services/order-retry/retrier"
)

// serveCommand is the first argument with which the bench starts itself as
// an order-retry process that can be profiled.
const serveCommand = "serve-order-retry"

// serveOrderRetry runs order-retry exactly as its binary's main does (the
// configuration from the environment), plus a profiling endpoint on
// PPROF_ADDR: GET /heap and /goroutine return those profiles. The
// order-retry binary has no such endpoint, so case 8, with --profile,
// starts the bench this way to show where order-retry's memory goes.
func serveOrderRetry(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := retrier.ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	addr := getenv("PPROF_ADDR")
	if addr == "" {
		return errors.New("PPROF_ADDR is not set: want host:port for the profiling endpoint")
	}
	mux := http.NewServeMux()
	for _, name := range []string{"heap", "goroutine"} {
		mux.HandleFunc("GET /"+name, func(w http.ResponseWriter, _ *http.Request) {
			if name == "heap" {
				runtime.GC() // the in-use figures as of now, not of the last cycle
			}
			if err := pprof.Lookup(name).WriteTo(w, 0); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		})
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("PPROF_ADDR %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Shutdown below
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	return retrier.Run(ctx, cfg.NewLogger(stdout), cfg)
}
