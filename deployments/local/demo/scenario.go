package demo

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/reefer/inventory"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/dlq"

	"github.com/reeferdlq/reefer-dlq/deployments/local/ordergen"
	"github.com/reeferdlq/reefer-dlq/deployments/local/tracker"
)

// scenario plays the four phases.
func (d *demo) scenario(ctx context.Context) error {
	for _, step := range []func(context.Context) error{d.healthy, d.flaky, d.deadLetters, d.redrive} {
		if err := step(ctx); err != nil {
			return err
		}
		if err := d.breathe(ctx); err != nil {
			return err
		}
	}
	d.endPhases()
	return nil
}

// breathe pauses between phases, so that a person can read the screen.
func (d *demo) breathe(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(d.tm.pause):
		return nil
	}
}

func (d *demo) next(n int) []ordergen.Order {
	out := make([]ordergen.Order, n)
	for i := range out {
		out[i] = d.gen.Next()
	}
	return out
}

// Phase 1: everything works.
func (d *demo) healthy(ctx context.Context) error {
	d.heading("Phase 1 · the inventory is healthy · happy path, steps (1)-(5)")
	d.say("%d orders go to `orders`. reefer-manager (1) reads each one, (2) reserves a reefer in its database,\n"+
		"(3) records the allocation in the legacy inventory over HTTP, then emits (4) ContainerAllocated\n"+
		"to `orders` and (5) ContainerAssignedToOrder to `containers`.", d.cfg.Orders)
	d.phase("1 healthy")
	start := time.Now()
	ids, err := d.send(ctx, d.next(d.cfg.Orders))
	if err != nil {
		return err
	}
	if err := d.waitFor(ctx, "phase 1", ids, settled); err != nil {
		return err
	}
	rep := d.tr.Report()
	c := countStages(rep, ids)
	d.done("%d orders concluded in %s: %d allocated, %d rejected.", len(ids), seconds(time.Since(start)),
		c[tracker.Allocated], c[tracker.Rejected])
	if c[tracker.Rejected] > 0 {
		d.say("The rejected ones asked for more than the biggest reefer holds: OrderRejected is a business\n" +
			"answer, emitted to `orders` like any outcome. It is not a failure, so it is never retried.")
	}
	return nil
}

// Phase 2: 30% of the inventory's answers are 503.
func (d *demo) flaky(ctx context.Context) error {
	const share = 0.3
	d.heading("Phase 2 · the inventory turns flaky: %d%% of calls answer 503 · failure path, steps (4)-(6)", int(share*100))
	d.say("reefer-manager neither waits nor retries in place: a failed order goes (4) to `order-retries`,\n" +
		"key and value unchanged, with the attempt count, the due time and the error in headers, and the\n" +
		"next order is read at once. order-retry (5) holds each record until it is due and (6) calls again;\n" +
		"on another failure it republishes the order with attempt + 1 and a longer delay.")
	if err := d.st.flaky(ctx, share); err != nil {
		return fmt.Errorf("make the inventory flaky: %w", err)
	}
	d.phase("2 flaky (30% 503)")
	start := time.Now()
	ids, err := d.send(ctx, d.next(d.cfg.Orders))
	if err != nil {
		return err
	}
	if err := d.waitFor(ctx, "phase 2", ids, concluded); err != nil {
		return err
	}
	rep := d.tr.Report()
	var first, dead, rejected int
	after := map[int]int{}
	for _, id := range ids {
		o := rep.Orders[id]
		switch {
		case o.Stage == tracker.Rejected:
			rejected++
		case o.Stage == tracker.DeadLettered:
			dead++
		case o.MaxAttempt == 0:
			first++
		default:
			after[o.MaxAttempt]++
		}
	}
	var parts []string
	for _, n := range slices.Sorted(maps.Keys(after)) {
		parts = append(parts, fmt.Sprintf("%d after %d", after[n], n))
	}
	retried := "none needed a retry"
	if len(parts) > 0 {
		retried = strings.Join(parts, ", ") + " failed attempt(s)"
	}
	d.done("%d orders concluded in %s: %d allocated at the first attempt, %s, %d rejected.",
		len(ids), seconds(time.Since(start)), first, retried, rejected)
	if dead > 0 {
		d.say("%d failed %d times in a row: dead-lettered with reason max-attempts. They come back in phase 4.", dead, d.tm.maxAttempts)
	}
	if len(rep.Delays) > 0 {
		d.say("The delays, read from the retry headers (x-retry-due-at − x-retry-last-failure-at):")
		for _, s := range rep.Delays {
			if s.Cause == tracker.CauseInventory {
				d.say("  after %d failure(s): %s to %s (mean %s, %d records)", s.Attempt, ms(s.Min), ms(s.Max), ms(s.Mean()), s.Count)
			}
		}
		d.say("Exponential backoff (base %s · 2^(n−1)) with ±10%% jitter, so retries do not arrive in lockstep.", d.tm.retryBase)
	}
	if n := rep.Causes[tracker.CauseBreaker]; n > 0 {
		d.say("%d failures never reached the inventory: a service's circuit breaker saw %s and\n"+
			"opened for %s, failing fast. Their delay is the breaker's Retry-After (the time it stays open),\n"+
			"so they come back when it lets calls through again.", n, breakerRule(), seconds(inventory.DefaultOpenTimeout))
	}
	return nil
}

// Phase 3: permanent refusals, then an outage longer than the retry budget.
func (d *demo) deadLetters(ctx context.Context) error {
	d.heading("Phase 3 · dead letters · failure path, step (7)")
	if err := d.st.healthy(ctx); err != nil {
		return fmt.Errorf("heal the inventory: %w", err)
	}
	d.phase("3 permanent errors, then outage")
	if d.cfg.Permanent > 0 {
		d.say("First, %d orders the inventory refuses outright (HTTP 422 for ids %s*). A permanent error\n"+
			"is not retried: the order goes to `order-dead-letter` at once, with the error and its stack\n"+
			"trace in headers.", d.cfg.Permanent, ordergen.PermanentPrefix)
		perm := make([]ordergen.Order, d.cfg.Permanent)
		for i := range perm {
			perm[i] = d.gen.Permanent()
		}
		ids, err := d.send(ctx, perm)
		if err != nil {
			return err
		}
		if err := d.waitFor(ctx, "permanent orders", ids, concluded); err != nil {
			return err
		}
		rep := d.tr.Report()
		reasons := map[string]int{}
		for _, id := range ids {
			reasons[rep.Orders[id].DLQReason]++
		}
		d.done("%d dead-lettered: %s.", len(ids), countList(reasons))
	}

	d.say("Now the inventory goes down: every call answers 503, for longer than the retry budget\n"+
		"(%d attempts). After %s each service's circuit breaker opens: it stops calling\n"+
		"and fails fast, and its Retry-After spaces the attempts by the %s it stays open. The orders\n"+
		"still move on, from attempt to attempt, to `order-dead-letter`.",
		d.tm.maxAttempts, breakerRule(), seconds(inventory.DefaultOpenTimeout))
	if err := d.st.outage(ctx); err != nil {
		return fmt.Errorf("start the outage: %w", err)
	}
	start := time.Now()
	ids, err := d.send(ctx, d.next(d.cfg.Orders))
	if err != nil {
		return err
	}
	if err := d.waitFor(ctx, "phase 3", ids, concluded); err != nil {
		return err
	}
	rep := d.tr.Report()
	reasons := map[string]int{}
	for _, id := range ids {
		if o := rep.Orders[id]; o.Stage == tracker.DeadLettered {
			reasons[o.DLQReason]++
		} else {
			reasons[o.Stage.String()]++
		}
	}
	d.done("%d orders concluded in %s: %s.", len(ids), seconds(time.Since(start)), countList(reasons))
	d.say("None is lost: each waits on `order-dead-letter`, its value byte for byte, with the attempts,\n" +
		"the first and last failure times and the error in headers.")
	return nil
}

// originalDoor is how many dead letters phase 4 redrives to `orders`.
const originalDoor = 5

// Phase 4: heal, and redrive the transient dead letters when the
// inventory is healthy, through both doors.
func (d *demo) redrive(ctx context.Context) error {
	d.heading("Phase 4 · the inventory comes back · dlq redrive --when-healthy")
	d.phase("4 heal + redrive")
	d.say("A person (or a job) asks dlq to send back the dead letters of transient failures, but only once\n" +
		"the inventory answers again: dlq probes it and waits for 3 healthy answers in a row. The inventory\n" +
		"is still down while it starts.")

	// Both doors: the first few letters go back to `orders` (--to original),
	// where reefer-manager runs them as new attempts with their redrive
	// count; the rest to `order-retries` (--to retry).
	args := []string{"redrive", "--error-class", "transient", "--to", "original", "--limit", strconv.Itoa(originalDoor),
		"--when-healthy", d.st.probeURL(), "--probe-interval", d.tm.probeInterval.String(), "--yes"}
	args = append(args, d.sinceArgs()...)
	breakerBefore := d.tr.Report().Causes[tracker.CauseBreaker]
	var wg sync.WaitGroup
	var code int
	wg.Go(func() { code = d.dlq(ctx, args...) })

	// Let dlq start probing while the inventory is down, then heal it.
	select {
	case <-ctx.Done():
		wg.Wait()
		return context.Cause(ctx)
	case <-time.After(d.tm.pause):
	}
	if err := d.st.healthy(ctx); err != nil {
		wg.Wait()
		return fmt.Errorf("heal the inventory: %w", err)
	}
	d.say("The inventory is back (its fault profile healed).")
	wg.Wait()
	if code != dlq.ExitOK && code != dlq.ExitNoMatch {
		return fmt.Errorf("dlq redrive --to original exited with %d", code)
	}
	d.say("The rest of them go to `order-retries`:")
	args = append([]string{"redrive", "--error-class", "transient", "--to", "retry", "--yes"}, d.sinceArgs()...)
	if code := d.dlq(ctx, args...); code != dlq.ExitOK && code != dlq.ExitNoMatch {
		return fmt.Errorf("dlq redrive --to retry exited with %d", code)
	}

	var all []string
	d.ordersMu.RLock()
	all = slices.Clone(d.order)
	d.ordersMu.RUnlock()
	if err := d.waitFor(ctx, "phase 4", all, settled); err != nil {
		return err
	}
	rep := d.tr.Report()
	redriven, allocated := 0, 0
	for _, o := range rep.Orders {
		if o.Redrives > 0 {
			redriven++
			if o.Stage == tracker.Allocated {
				allocated++
			}
		}
	}
	d.done("%d redriven orders ran again (%d through `orders`, the others through `order-retries`): %d allocated.",
		redriven, min(redriven, originalDoor), allocated)
	if n := rep.Causes[tracker.CauseBreaker] - breakerBefore; n > 0 {
		d.say("%d of their attempts met order-retry's circuit breaker, still open from the outage: they\n"+
			"waited for its Retry-After, then went through. The inventory was healthy; the breaker needed\n"+
			"one successful trial call to believe it.", n)
	}
	d.say("The permanent ones stay, pending, for a person to fix (dlq edit) or close (dlq resolve):")
	if code := d.dlq(ctx, append([]string{"list", "--status", "pending"}, d.sinceArgs()...)...); code != dlq.ExitOK && code != dlq.ExitNoMatch {
		return fmt.Errorf("dlq list exited with %d", code)
	}
	return nil
}

// sinceArgs limits dlq to this run's dead letters on a shared broker.
func (d *demo) sinceArgs() []string {
	if len(d.cfg.Brokers) == 0 {
		return nil
	}
	return []string{"--since", d.since.Add(-time.Second).UTC().Format(time.RFC3339)}
}

// dlq runs the dlq CLI in process, printing the command and its output.
func (d *demo) dlq(ctx context.Context, args ...string) int {
	full := append([]string{"--brokers", strings.Join(d.st.kafka.Brokers, ",")}, args...)
	if !d.cfg.Quiet {
		d.scr.Printf("\n  $ dlq %s", strings.Join(full, " "))
	}
	out := &prefixWriter{prefix: "    │ ", print: func(line string) {
		if !d.cfg.Quiet {
			d.scr.Printf("%s", line)
		}
	}}
	// Its own transport, so that no idle keep-alive connection (and its
	// goroutines) outlives the command.
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	code := dlq.Run(ctx, full, dlq.Env{
		Stdout:     out,
		Stderr:     out,
		Getenv:     getenv(map[string]string{"DLQ_OPERATOR": "make-demo"}),
		HTTPClient: &http.Client{Transport: transport},
		Tracing:    d.st.tracer("dlq"),
	})
	out.Flush()
	return code
}

// prefixWriter hands complete lines, prefixed, to print.
type prefixWriter struct {
	mu     sync.Mutex
	prefix string
	buf    bytes.Buffer
	print  func(string)
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line) // incomplete: keep it for the next write
			return len(p), nil
		}
		w.print(w.prefix + strings.TrimRight(line, "\r\n"))
	}
}

// Flush prints what is left of an unfinished line.
func (w *prefixWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 {
		w.print(w.prefix + w.buf.String())
		w.buf.Reset()
	}
}

func countStages(rep tracker.Report, ids []string) map[tracker.Stage]int {
	out := map[tracker.Stage]int{}
	for _, id := range ids {
		out[rep.Orders[id].Stage]++
	}
	return out
}

// countList writes {"a": 2, "b": 1} as "2 a, 1 b", biggest first.
func countList(m map[string]int) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", m[k], k)
	}
	return strings.Join(parts, ", ")
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

func ms(d time.Duration) string { return fmt.Sprintf("%dms", d.Round(time.Millisecond).Milliseconds()) }

// breakerRule says when the services' circuit breaker opens, from the
// defaults they run with (package inventory), so the narration cannot
// drift from the code.
func breakerRule() string {
	return fmt.Sprintf("%d failures in a row, or %.0f%% failures of at least %d calls within %s,",
		inventory.DefaultMaxFailures, inventory.DefaultFailureRatio*100, inventory.DefaultMinRequests,
		seconds(inventory.DefaultWindow))
}
