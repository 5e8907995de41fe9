package main

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// window is one measured stretch of time.
type window struct {
	Elapsed time.Duration
	// BenchCores is the CPU the bench process used (broker, in-process
	// services, mock, producer: everything but Postgres), in cores.
	BenchCores float64
	// Load1 is the one-minute load average at the end.
	Load1 float64
}

// metrics returns the window's figures for a report row.
func (w window) metrics(more map[string]float64) map[string]float64 {
	m := map[string]float64{
		"seconds":     round(w.Elapsed.Seconds(), 3),
		"bench_cores": round(w.BenchCores, 2),
		"load1":       w.Load1,
	}
	maps.Copy(m, more)
	return m
}

// stopwatch times one window and, with --profile, records a CPU profile of
// the bench process over it, and goroutine profiles 1 s and 3 s into it:
// where the records in flight are waiting (the CPU profile cannot show
// time spent waiting for Postgres or the inventory).
type stopwatch struct {
	start  time.Time
	cpu    time.Duration
	prof   *os.File
	timers []*time.Timer
}

// goroutineSnapshots are the moments of a window the goroutine profiles
// are taken at.
var goroutineSnapshots = []time.Duration{time.Second, 3 * time.Second}

// startWatch starts a window; name names the profile file.
func (e *env) startWatch(name string) (*stopwatch, error) {
	runtime.GC() // start every window without the previous case's garbage
	sw := &stopwatch{}
	if e.p.profile {
		dir := filepath.Join(e.p.out, "profiles")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
		f, err := os.Create(filepath.Join(dir, name+".cpu.pprof"))
		if err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("profile %s: %w", name, err)
		}
		sw.prof = f
		for _, at := range goroutineSnapshots {
			path := filepath.Join(dir, fmt.Sprintf("%s.goroutine-%s.pprof", name, at))
			sw.timers = append(sw.timers, time.AfterFunc(at, func() {
				if err := writeGoroutineProfile(path); err != nil {
					e.log.Warn("goroutine profile", "error", err)
				}
			}))
		}
	}
	sw.start, sw.cpu = time.Now(), processCPU()
	return sw, nil
}

// stop ends the window.
func (sw *stopwatch) stop() window {
	w := window{Elapsed: time.Since(sw.start)}
	if w.Elapsed > 0 {
		w.BenchCores = (processCPU() - sw.cpu).Seconds() / w.Elapsed.Seconds()
	}
	for _, t := range sw.timers {
		t.Stop()
	}
	if sw.prof != nil {
		pprof.StopCPUProfile()
		sw.prof.Close()
		sw.prof = nil
	}
	w.Load1 = load1()
	return w
}

// writeGoroutineProfile writes the stacks of every goroutine, for
// go tool pprof -top (goroutines counted by where they are).
func writeGoroutineProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("goroutine").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// processCPU returns the user and system CPU time of this process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// load1 reads the one-minute load average.
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func round(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}
