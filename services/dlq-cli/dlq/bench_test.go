package dlq_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/dlq"
)

// BenchmarkRedriveUnthrottled measures a whole `dlq redrive --yes` against
// the embedded broker: read the resolution log and the dead-letter topic,
// publish every letter to the retry topic, record each in the resolution
// log, commit the watermark. b.N is the number of dead letters. Metrics:
//
//   - records/s: wall clock, the figure of the goal (20,000/s on 2 cores);
//   - records/cpu-s: per second of CPU used by the process (CLI and
//     embedded broker together), which other processes on the machine do
//     not disturb.
//
// Run with a fixed count for a stable figure:
//
//	go test ./dlq -run '^$' -bench RedriveUnthrottled -benchtime 100000x -count 5
func BenchmarkRedriveUnthrottled(b *testing.B) {
	c := newCluster(b)
	c.seed(manyLetters(b.N, false)...)
	cpu0 := cpuTime(b)
	b.ResetTimer()
	r := c.run("redrive", "--yes")
	b.StopTimer()
	cpu := cpuTime(b) - cpu0
	if r.code != dlq.ExitOK {
		b.Fatalf("redrive: %s", r)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "records/cpu-s")
}

// cpuTime is the user and system CPU time of the process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
