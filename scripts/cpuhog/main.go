// Command cpuhog keeps every core busy, so that the test suite can be run
// on a machine as loaded as a shared CI runner (`make test-stress`).
//
//	cpuhog [-workers N] [-for 2h]
//
// It runs N goroutines (default: one per core) that spin until it receives
// SIGINT or SIGTERM, the -for limit passes, or its parent process exits
// (so that a hog is never left behind by a killed make). At the end it
// prints how many cores it kept busy on average.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cpuhog:", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("cpuhog", flag.ContinueOnError)
	workers := fs.Int("workers", runtime.NumCPU(), "goroutines spinning, each on a core")
	limit := fs.Duration("for", 2*time.Hour, "stop after this long, whatever happens")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *workers < 1 || *limit <= 0 {
		return fmt.Errorf("-workers %d -for %s: want at least one worker and a positive duration", *workers, *limit)
	}
	runtime.GOMAXPROCS(max(*workers, runtime.GOMAXPROCS(0)))
	ctx, cancel := context.WithTimeout(ctx, *limit)
	defer cancel()

	parent := os.Getppid()
	go func() {
		// Reparented: the make that started us is gone.
		for ctx.Err() == nil && os.Getppid() == parent {
			time.Sleep(time.Second)
		}
		cancel()
	}()

	fmt.Fprintf(stdout, "cpuhog: %d workers spinning (pid %d)\n", *workers, os.Getpid())
	start, cpuBefore := time.Now(), cpuTime()
	var wg sync.WaitGroup
	var sum atomic.Uint64 // the loops' results, so the compiler keeps them
	for range *workers {
		wg.Go(func() { sum.Add(spin(ctx)) })
	}
	wg.Wait()
	wall, cpu := time.Since(start), cpuTime()-cpuBefore
	fmt.Fprintf(stdout, "cpuhog: stopped after %s; %.2f cores busy on average (%s of CPU)\n",
		wall.Round(time.Second), cpu.Seconds()/wall.Seconds(), cpu.Round(time.Second))
	return nil
}

// spin burns CPU until ctx ends, checking it every few million rounds.
func spin(ctx context.Context) uint64 {
	x := uint64(1)
	for ctx.Err() == nil {
		for range 1 << 22 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	return x
}

// cpuTime is the CPU this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
