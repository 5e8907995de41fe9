package demo

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/reeferdlq/reefer-dlq/deployments/local/ordergen"
	"github.com/reeferdlq/reefer-dlq/deployments/local/tracker"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/envconfig"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/dlq"
)

func (d *demo) title() {
	where := "embedded broker, SQLite"
	if len(d.cfg.Brokers) > 0 {
		where = "broker " + strings.Join(d.cfg.Brokers, ",")
	}
	if d.cfg.PostgresURL != "" {
		where += ", Postgres"
	}
	d.scr.Printf("reefer-dlq demo · the Kafka retry and dead-letter pattern, end to end\n"+
		"seed %d · %d orders per phase · speed %g · %s", d.cfg.Seed, d.cfg.Orders, d.cfg.Speed, where)
}

func (d *demo) describeStack() {
	if d.cfg.Quiet {
		return
	}
	s := d.st
	db := "SQLite " + strings.TrimPrefix(s.dbURL, "sqlite:")
	if d.cfg.PostgresURL != "" {
		db = "Postgres " + envconfig.RedactURL(d.cfg.PostgresURL)
	}
	broker := strings.Join(s.kafka.Brokers, ",")
	if s.broker != nil {
		broker += " (embedded, Kafka protocol)"
	}
	d.scr.Printf("\nRunning in this process, with the production code paths:\n"+
		"  broker           %s\n"+
		"  reefer database  %s\n"+
		"  inventory        %s (the flaky legacy service; faults steered via /admin)\n"+
		"  reefer-manager   http://%s/metrics\n"+
		"  order-retry      http://%s/metrics\n"+
		"  retry policy     %d attempts, delay %s · 2^(n−1) ±10%%, at most %s\n"+
		"  service logs     %s",
		broker, db, s.invURL, s.services[0].addr, s.services[1].addr,
		d.tm.maxAttempts, d.tm.retryBase, d.tm.retryMax, s.logPath)
	d.scr.Printf("\nThe status line reads the four topics, like an outside observer:\n" +
		"  in: orders sent · allocated · rejected: no reefer big enough · 1st try: waiting for a first attempt\n" +
		"  retry n:k: k orders on order-retries after n failures (0: redriven) · dead: pending dead letters\n" +
		"  redriven: orders dlq sent back")
}

func (d *demo) heading(format string, args ...any) {
	d.scr.Printf("\n━━ %s ━━", fmt.Sprintf(format, args...))
}

// say prints narration (not in --quiet).
func (d *demo) say(format string, args ...any) {
	if d.cfg.Quiet {
		return
	}
	d.scr.Printf(format, args...)
}

// done prints the outcome of a step, with the status it ended on.
func (d *demo) done(format string, args ...any) {
	if !d.cfg.Quiet {
		d.scr.Flush(d.statusLine(d.tr.Counts()))
	}
	d.scr.Printf("✔ "+format, args...)
}

// showStatus redraws the status line until the returned function is
// called.
func (d *demo) showStatus() (stop func()) {
	if d.cfg.Quiet {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(d.tm.refresh)
		defer t.Stop()
		for {
			d.scr.Status(d.statusLine(d.tr.Counts()))
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
		d.scr.Stop()
	}
}

// statusLine is the one-line summary of where the orders are.
func (d *demo) statusLine(c tracker.Counts) string {
	var retry []string
	for n, k := range c.Retrying {
		if k > 0 {
			retry = append(retry, fmt.Sprintf("%d:%d", n, k))
		}
	}
	r := "0"
	if len(retry) > 0 {
		r = strings.Join(retry, " ")
	}
	dead := fmt.Sprintf("%d", c.DeadLettered())
	if c.DeadPermanent > 0 {
		dead += fmt.Sprintf(" (%d permanent)", c.DeadPermanent)
	}
	line := fmt.Sprintf("t=%5.1fs │ in %d │ allocated %d │ rejected %d │ 1st try %d │ retry %s │ dead %s │ redriven %d",
		time.Since(d.tr.Started()).Seconds(), c.In, c.Allocated, c.Rejected, c.FirstAttempt, r, dead, c.Redriven)
	if d.cfg.Live {
		width := d.cfg.Width
		if width <= 0 {
			width = 100
		}
		// A line longer than the terminal wraps, and the carriage return
		// then redraws only its last part.
		if runes := []rune(line); len(runes) > width-5 {
			line = string(runes[:width-6]) + "…"
		}
	}
	return line
}

// keepRunning prints where everything is and waits for ctx to end.
func (d *demo) keepRunning(ctx context.Context) {
	s := d.st
	broker := strings.Join(s.kafka.Brokers, ",")
	console := startConsole(ctx, broker, s.tracer("dlq"))
	d.scr.Printf("\nEverything keeps running (--keep-running). Poke at it, then press Ctrl-C to stop:\n"+
		"  dlq console     %s\n"+
		"  broker          %s\n"+
		"  inventory       %s\n"+
		"  reefer-manager  http://%s/metrics   http://%s/readyz\n"+
		"  order-retry     http://%s/metrics   http://%s/readyz\n"+
		"  service logs    %s\n\n"+
		"  go run ./services/dlq-cli --brokers %s list --status all\n"+
		"  go run ./services/dlq-cli --brokers %s show %s\n"+
		"  go run ./services/dlq-cli --brokers %s stats\n"+
		"  curl -s %s/admin/stats\n"+
		"  curl -s -X POST '%s/admin/outage?for=10s'      # another outage\n"+
		"  curl -s -X PATCH -H 'Content-Type: application/merge-patch+json' -d '{\"errorRate\":0.5}' %s/admin/faults\n"+
		"  curl -s http://%s/metrics | grep ^order_retry\n",
		console, broker, s.invURL, s.services[0].addr, s.services[0].addr, s.services[1].addr, s.services[1].addr, s.logPath,
		broker, broker, d.examplePermanent(), broker, s.invURL, s.invURL, s.invURL, s.services[1].addr)
	<-ctx.Done()
	d.scr.Printf("Stopping. The service log and the database stay in %s.", s.dir)
}

// consoleAt finds the address `dlq ui` prints when it listens.
var consoleAt = regexp.MustCompile(`at (http://\S+/) `)

// startConsole runs the dlq web console (`dlq ui`) until ctx ends and
// returns its address: 127.0.0.1:8089, or a free port when that one is
// taken. Its redrives record their spans with tp.
func startConsole(ctx context.Context, broker string, tp trace.TracerProvider) string {
	var last string
	for _, addr := range []string{dlq.DefaultUIAddr, "127.0.0.1:0"} {
		out := &syncBuffer{}
		done := make(chan int, 1)
		go func() {
			done <- dlq.Run(ctx, []string{"--brokers", broker, "ui", "--addr", addr}, dlq.Env{
				Stderr:  out,
				Getenv:  getenv(map[string]string{"DLQ_OPERATOR": "make-demo"}),
				Tracing: tp,
			})
		}()
		deadline := time.After(15 * time.Second)
	wait:
		for {
			if m := consoleAt.FindStringSubmatch(out.String()); m != nil {
				return m[1]
			}
			select {
			case <-done:
				last = strings.TrimSpace(out.String())
				break wait
			case <-deadline:
				return "(the console did not start within 15 s)"
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return "(the console did not start: " + last + ")"
}

// syncBuffer is a bytes.Buffer safe for the console's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (d *demo) examplePermanent() string {
	d.ordersMu.RLock()
	defer d.ordersMu.RUnlock()
	for _, id := range d.order {
		if strings.HasPrefix(id, ordergen.PermanentPrefix) {
			return id
		}
	}
	if len(d.order) > 0 {
		return d.order[0]
	}
	return "O-000001"
}
