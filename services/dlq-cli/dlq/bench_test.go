package dlq_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
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

// BenchmarkRedriveThroughConsole measures the same redrive started from
// the web console: b.N letters selected and posted to /redrive/run (rate
// 0: no limit), timed until the job's progress says finished. It reports
// the console's figures next to BenchmarkRedriveUnthrottled's:
//
//	go test ./dlq -run '^$' -bench 'Redrive(Unthrottled|ThroughConsole)' -benchtime 20000x
func BenchmarkRedriveThroughConsole(b *testing.B) {
	c := newCluster(b)
	c.seed(manyLetters(b.N, false)...)
	base := c.startConsole(b)
	page := get(b, base, nil)
	csrf := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(page)
	if csrf == nil {
		b.Fatal("no CSRF token in the page")
	}
	positions := make([]string, b.N)
	for i := range b.N {
		positions[i] = fmt.Sprintf("%d:%d", i%3, i/3)
	}
	form := url.Values{"csrf": {csrf[1]}, "to": {"retry"}, "rate": {"0"}, "positions": {strings.Join(positions, ",")}}
	cpu0 := cpuTime(b)
	b.ResetTimer()
	res, err := noRedirect.PostForm(base+"redrive/run", form)
	if err != nil {
		b.Fatal(err)
	}
	msg, _ := io.ReadAll(res.Body)
	res.Body.Close()
	job := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || job == "" {
		b.Fatalf("POST /redrive/run: %d %s", res.StatusCode, msg)
	}
	var p struct {
		Finished bool   `json:"finished"`
		Redriven int    `json:"redriven"`
		Error    string `json:"error"`
	}
	for !p.Finished {
		time.Sleep(20 * time.Millisecond)
		if err := json.Unmarshal([]byte(get(b, base+strings.TrimPrefix(job, "/")+"/progress", nil)), &p); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cpu := cpuTime(b) - cpu0
	if p.Redriven != b.N || p.Error != "" {
		b.Fatalf("console redrive: %+v, want %d redriven", p, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "records/cpu-s")
}
