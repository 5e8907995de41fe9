package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/bench/report"
)

// memoryGoalMiB is the bound on each service's resident memory.
const memoryGoalMiB = 64

// caseMemory is case 8: the peak resident memory of each service. In the
// other cases the services share the bench's process, whose memory says
// nothing about any one of them; here each runs from its binary as a
// process of its own, and its peak (VmHWM of /proc/<pid>/status) is read at
// the end. Three scenarios replay cases 3 and 4 with all three services,
// order-retry working on the retries while the inventory is down; two more
// give order-retry a backlog of retries due in half an hour, once as large
// as MAX_PENDING and once larger, to show that it holds MAX_PENDING records
// and not the backlog.
func caseMemory(ctx context.Context, e *env) ([]report.Row, error) {
	var rows []report.Row
	scenarios := []struct {
		key, name, faultProfile string
		down                    bool
	}{
		{"healthy", "healthy (case 3)", "healthy", false},
		{"503", "inventory 503 (case 4)", "outage", true},
		{"hang", "inventory hanging (case 4)", `{"timeoutRate":1}`, true},
	}
	for _, s := range scenarios {
		got, err := e.memoryPipeline(ctx, "c8-"+s.key, s.faultProfile, s.down, false)
		if err != nil {
			return rows, fmt.Errorf("%s: %w", s.key, err)
		}
		for _, svc := range []string{"reefer-manager", "order-retry", "container-inventory-mock"} {
			m := map[string]float64{"orders_per_s": got.rate}
			maps.Copy(m, got.goMemory[svc])
			rows = append(rows, report.Row{
				Case: "8", Key: "8-" + s.key + "-" + svc, Name: "peak RSS of " + svc + ", " + s.name,
				Params: fmt.Sprintf("%d orders through reefer-manager, order-retry and the mock as separate processes (built binaries, default settings, LOG_LEVEL=warn)%s; VmHWM at the end; go_* from the process's /metrics then",
					e.p.orders, map[bool]string{true: fmt.Sprintf(", then %s more of order-retry retrying", e.p.hold), false: ""}[s.down]),
				Value: mib(got.peak[svc]), Unit: "MiB",
				Metrics: m,
				Goals:   []report.Goal{{Metric: report.MetricValue, Op: "<=", Target: memoryGoalMiB}},
			})
		}
	}
	if e.p.profile {
		// Where order-retry's memory goes during an outage: the same
		// scenario once more, order-retry being the bench itself with a
		// profiling endpoint (its binary has none). Its figures are not
		// reported: it is another binary.
		if _, err := e.memoryPipeline(ctx, "c8-503-profiled", "outage", true, true); err != nil {
			return rows, fmt.Errorf("503, profiled: %w", err)
		}
	}

	for _, factor := range []int{1, e.p.backlogFactor} {
		key := fmt.Sprintf("8-pending-%dx", factor)
		backlog := factor * e.p.maxPending
		peak, held, goMem, err := e.memoryPending(ctx, fmt.Sprintf("c8-pend-%dx", factor), backlog)
		if err != nil {
			return rows, fmt.Errorf("%s: %w", key, err)
		}
		m := map[string]float64{"held": held, "backlog": float64(backlog)}
		maps.Copy(m, goMem)
		row := report.Row{
			Case: "8", Key: key, Name: fmt.Sprintf("peak RSS of order-retry holding MAX_PENDING retries, backlog %d× MAX_PENDING", factor),
			Params: fmt.Sprintf("order-retry as a process, MAX_PENDING=%d; %d retry records (about %d bytes each) due in 30 min on its topic; VmHWM once it holds MAX_PENDING", e.p.maxPending, backlog, retryRecordSize()),
			Value:  mib(peak), Unit: "MiB",
			Metrics: m,
			Goals:   []report.Goal{{Metric: report.MetricValue, Op: "<=", Target: memoryGoalMiB}},
		}
		if factor != 1 {
			row.RatioTo = []string{"8-pending-1x"}
			row.Goals = append(row.Goals, report.Goal{Metric: report.MetricRatio, Op: "<=", Target: 1.1})
			row.Note = "bounded by MAX_PENDING, not by the backlog: the ratio to the 1× run stays near 1"
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func mib(b int64) float64 { return round(float64(b)/(1<<20), 1) }

// pipelineMemory is what memoryPipeline measured.
type pipelineMemory struct {
	peak map[string]int64 // service -> VmHWM bytes
	// goMemory holds, per service, the Go runtime's view at the end (from
	// its /metrics): how much of the RSS is Go heap, and the heap size at
	// which the next collection starts (GOGC's headroom).
	goMemory map[string]map[string]float64
	rate     float64 // reefer-manager's input orders/s, as a cross-check of cases 3 and 4
}

// goMemorySeries are the Go runtime series read from each process.
var goMemorySeries = map[string]string{
	"go_heap_inuse_mib": "go_memstats_heap_inuse_bytes",
	"go_next_gc_mib":    "go_memstats_next_gc_bytes",
	"go_stack_mib":      "go_memstats_stack_inuse_bytes",
	"go_sys_mib":        "go_memstats_sys_bytes",
}

// memoryPipeline runs the three services as processes against the case's
// orders and returns each one's peak RSS.
// With profiled, order-retry is the bench itself (serveOrderRetry), and its
// heap and goroutine profiles are written to <out>/profiles at the end.
func (e *env) memoryPipeline(ctx context.Context, prefix, faultProfile string, down, profiled bool) (pipelineMemory, error) {
	n := e.p.orders
	t, err := e.newTopics(ctx, prefix)
	if err != nil {
		return pipelineMemory{}, err
	}
	db, err := e.database(ctx, prefix)
	if err != nil {
		return pipelineMemory{}, err
	}
	// The three start at once (each one's address is chosen beforehand):
	// start-up is no part of what is measured.
	mockAddr, err := freeAddr()
	if err != nil {
		return pipelineMemory{}, err
	}
	fleet := map[string]string{"REEFER_FLEET_SIZE": strconv.Itoa(n + 100), "INVENTORY_TIMEOUT": e.p.timeoutFor(down).String()}
	specs := []procSpec{
		{name: "container-inventory-mock", environ: map[string]string{"FAULT_PROFILE": faultProfile, "LOG_LEVEL": "warn", "LOG_FORMAT": "json", "HTTP_ADDR": mockAddr}},
		{name: "reefer-manager", environ: e.serviceEnv(t, db, "http://"+mockAddr, prefix+"-reefer-manager", fleet)},
		{name: "order-retry", environ: e.serviceEnv(t, db, "http://"+mockAddr, prefix+"-order-retry", fleet)},
	}
	var pprofAddr string
	if profiled {
		self, err := os.Executable()
		if err != nil {
			return pipelineMemory{}, fmt.Errorf("profiled order-retry: %w", err)
		}
		if pprofAddr, err = freeAddr(); err != nil {
			return pipelineMemory{}, err
		}
		specs[2].bin, specs[2].args = self, []string{serveCommand}
		specs[2].environ["PPROF_ADDR"] = pprofAddr
	}
	procs := make([]*process, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, s := range specs {
		s.logName = prefix + "-" + s.name
		wg.Go(func() { procs[i], errs[i] = e.startProcess(ctx, s) })
	}
	wg.Wait()
	defer func() {
		for _, p := range procs {
			if p != nil {
				_ = p.stop()
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return pipelineMemory{}, err
	}

	group := prefix + "-reefer-manager"
	if err := e.warmUp(ctx, t.Orders, group, nil); err != nil {
		return pipelineMemory{}, err
	}
	msgs, err := orderRecords(prefix, n)
	if err != nil {
		return pipelineMemory{}, err
	}
	start := time.Now()
	if err := e.produce(ctx, t.Orders, msgs); err != nil {
		return pipelineMemory{}, err
	}
	if err := e.waitCommitted(ctx, group, t.Orders, 10*time.Minute); err != nil {
		return pipelineMemory{}, err
	}
	got := pipelineMemory{rate: round(float64(n)/time.Since(start).Seconds(), 0), peak: map[string]int64{}}
	if profiled {
		// Every order has just been handed to order-retry: about its peak.
		if err := fetchProfile(ctx, "http://"+pprofAddr+"/heap",
			filepath.Join(e.p.out, "profiles", "8-503-order-retry.heap-at-handoff.pprof")); err != nil {
			return pipelineMemory{}, err
		}
	}
	if down {
		// Waiting is the point here: order-retry works through the retries.
		select {
		case <-time.After(e.p.hold):
		case <-ctx.Done():
			return pipelineMemory{}, ctx.Err()
		}
	}
	errs = errs[:0]
	got.goMemory = map[string]map[string]float64{}
	for _, p := range procs {
		peak, err := p.peakRSS()
		errs = append(errs, err)
		got.peak[p.name] = peak
		got.goMemory[p.name] = map[string]float64{}
		for name, series := range goMemorySeries {
			if v, err := p.metric(ctx, series); err == nil {
				got.goMemory[p.name][name] = round(v/(1<<20), 1)
			}
		}
	}
	if profiled {
		e.log.Info("profiled order-retry (the bench binary)", "peak_rss_mib", mib(got.peak["order-retry"]))
		for _, name := range []string{"heap", "goroutine"} {
			errs = append(errs, fetchProfile(ctx, "http://"+pprofAddr+"/"+name,
				filepath.Join(e.p.out, "profiles", "8-503-order-retry."+name+".pprof")))
		}
	}
	for _, p := range procs {
		errs = append(errs, p.stop())
	}
	return got, errors.Join(errs...)
}

// memoryPending gives order-retry a backlog of retries due in half an
// hour and returns its peak RSS once it holds all it may.
func (e *env) memoryPending(ctx context.Context, prefix string, backlog int) (peak int64, held float64, goMem map[string]float64, err error) {
	t, err := e.newTopics(ctx, prefix)
	if err != nil {
		return 0, 0, nil, err
	}
	db, err := e.database(ctx, prefix)
	if err != nil {
		return 0, 0, nil, err
	}
	// No record falls due during the run, so the inventory is never called:
	// no mock is needed, only an address to satisfy the configuration.
	environ := e.serviceEnv(t, db, "http://127.0.0.1:9", prefix+"-order-retry", map[string]string{
		"MAX_PENDING": strconv.Itoa(e.p.maxPending),
	})
	p, err := e.startProcess(ctx, procSpec{name: "order-retry", logName: prefix + "-order-retry", environ: environ})
	if err != nil {
		return 0, 0, nil, err
	}
	defer p.stop()

	now := time.Now()
	msgs := make([]kafka.Message, backlog)
	for i := range msgs {
		if msgs[i], err = retryRecord(fmt.Sprintf("%s-%07d", prefix, i), now, now.Add(30*time.Minute), int64(i)); err != nil {
			return 0, 0, nil, err
		}
	}
	if err := e.produce(ctx, t.Retry, msgs); err != nil {
		return 0, 0, nil, err
	}
	// MAX_PENDING records, or fewer when MAX_PENDING_BYTES binds first:
	// then the count stops growing below MAX_PENDING.
	want := float64(min(backlog, e.p.maxPending))
	var (
		last  float64
		since time.Time
	)
	err = waitUntil(ctx, 2*time.Minute, fmt.Sprintf("order-retry holding %v records, or as many as MAX_PENDING_BYTES allows", want), func() (bool, error) {
		v, err := p.metric(ctx, "order_retry_pending_records")
		held = v
		if err != nil || v >= want {
			return err == nil, err
		}
		if v == 0 || v != last {
			last, since = v, time.Now()
			return false, nil
		}
		return time.Since(since) >= 3*time.Second, nil
	})
	if err != nil {
		return 0, held, nil, err
	}
	// Let it settle: a record fetched beyond the bound would show now.
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		return 0, held, nil, ctx.Err()
	}
	if held, err = p.metric(ctx, "order_retry_pending_records"); err != nil {
		return 0, held, nil, err
	}
	if held > want {
		return 0, held, nil, fmt.Errorf("order-retry holds %v records, more than MAX_PENDING %d", held, e.p.maxPending)
	}
	peak, err = p.peakRSS()
	if err != nil {
		return 0, held, nil, err
	}
	goMem = map[string]float64{}
	for name, series := range goMemorySeries {
		if v, err := p.metric(ctx, series); err == nil {
			goMem[name] = round(v/(1<<20), 1)
		}
	}
	return peak, held, goMem, p.stop()
}

// fetchProfile saves a profile served over HTTP.
func fetchProfile(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetch profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch profile %s: %s", url, resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("fetch profile %s: %w", url, err)
	}
	return f.Close()
}

// retryRecordSize is the size of one retry record of the bench: value and
// headers.
func retryRecordSize() int {
	m, err := retryRecord("c8-pend-0000000", time.Now(), time.Now(), 0)
	if err != nil {
		return 0
	}
	n := len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}
