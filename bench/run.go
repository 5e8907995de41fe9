package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reeferdlq/reefer-dlq/bench/report"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
)

// benchCase is one case of the issue.
type benchCase struct {
	name string
	// needsPostgres: the case uses the database.
	needsPostgres bool
	run           func(ctx context.Context, e *env) ([]report.Row, error)
}

var cases = map[string]benchCase{
	"1": {"pipe limit", false, casePipe},
	"2": {"dependency limits", true, caseDependencies},
	"3": {"reefer-manager, healthy", true, caseHealthy},
	"4": {"reefer-manager, inventory down", true, caseInventoryDown},
	"5": {"blocking retry baselines", true, caseBaselines},
	"6": {"retry lateness", true, caseLateness},
	"7": {"redrive", false, caseRedrive},
	"8": {"memory", true, caseMemory},
	"9": {"retry topics or share groups", true, caseShareGroups},
}

// run is the whole program: flags, the shared environment, every selected
// case, the results. It returns an error when the command line is wrong,
// the environment cannot start, or a case failed (after writing the results
// of the others).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == serveCommand {
		return serveOrderRetry(ctx, os.Getenv, stdout)
	}
	p, err := parseParams(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if p.replot != "" {
		return replot(p.replot, stdout)
	}
	if err := os.MkdirAll(filepath.Join(p.out, "logs"), 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	svcLogFile, err := os.Create(filepath.Join(p.out, "logs", "in-process-services.log"))
	if err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	defer svcLogFile.Close()

	e := &env{
		p:      p,
		log:    slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
		svcLog: slog.New(slog.NewJSONHandler(svcLogFile, &slog.HandlerOptions{Level: slog.LevelWarn})),
		runID:  strconv.FormatInt(time.Now().Unix()%1e6, 36),
	}
	res := &report.Run{
		Command: "bench " + strings.Join(args, " "),
		Quick:   p.quick,
		Started: time.Now(),
		Machine: machine(),
	}

	// The broker: in this process, like the services of cases 3 to 7.
	e.broker, err = devbroker.Start(ctx, devbroker.Config{Log: e.svcLog.With("service", "devbroker")})
	if err != nil {
		return err
	}
	defer e.broker.Close()
	e.kafka = kafkaclient.Config{Brokers: []string{e.broker.Addr()}, ClientID: "bench"}

	needsPostgres := false
	for _, c := range p.cases {
		needsPostgres = needsPostgres || cases[c].needsPostgres
	}
	pgDesc := "not used by the selected cases"
	if needsPostgres {
		e.log.Info("starting Postgres")
		if p.postgres != "" {
			e.pg, err = usePostgres(ctx, p.postgres)
		} else {
			containerDefaults()
			e.pg, err = startPostgres(ctx)
		}
		if err != nil {
			return err
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if err := e.pg.close(ctx); err != nil {
				e.log.Warn("stop Postgres", "error", err)
			}
		}()
		settings, err := e.pg.settings(ctx)
		if err != nil {
			return err
		}
		pgDesc = fmt.Sprintf("Postgres (%s; %s) on this machine, a fresh database per case; the stores use their pool of 20 connections", e.pg.image, settings)
	}
	e.bins = newBinaries(p.bin, e.log)
	defer e.bins.cleanup()
	if slices.Contains(p.cases, "8") {
		e.bins.prefetch(ctx)
	}

	res.Setup = []string{
		"Broker: the embedded devbroker (kfake) in the bench process; a fresh set of topics per case with the contract's partition counts (orders 6, containers 6, order-retries 6, order-dead-letter 3)",
		"Database: " + pgDesc,
		fmt.Sprintf("Inventory: container-inventory-mock in the bench process, a fresh one per case (healthy, outage = every call 503, or hang = every call held until the client's timeout, INVENTORY_TIMEOUT=%s; %s when the inventory is healthy)", p.inventoryTimeout, p.callTimeout),
		fmt.Sprintf("Services: reefer-manager and order-retry run in the bench process (cases 3, 4, 6) with MAX_IN_FLIGHT=%d and the contract's retry defaults (5 attempts, base 1 s); case 8 runs the built binaries as separate processes", p.inFlight),
		fmt.Sprintf("Rates: from the first produced order until the consumer group has committed every record (commits follow the hand-off); offsets polled every %s", pollEvery),
		fmt.Sprintf("Everything shares one machine: %d cores, GOMAXPROCS %d; bench_cores is the CPU the bench process used (all but Postgres)", runtime.NumCPU(), runtime.GOMAXPROCS(0)),
	}
	if len(p.serviceEnv) > 0 {
		res.Setup = append(res.Setup, fmt.Sprintf("NOT the defaults: the services also get %v (--service-env)", p.serviceEnv))
	}

	for _, c := range p.cases {
		bc := cases[c]
		if ctx.Err() != nil {
			break
		}
		e.log.Info("case "+c+": "+bc.name, "quick", p.quick)
		start := time.Now()
		rows, err := bc.run(ctx, e)
		res.Rows = append(res.Rows, rows...)
		if err != nil {
			e.log.Error("case "+c+" failed", "error", err)
			res.Failures = append(res.Failures, fmt.Sprintf("case %s (%s): %v", c, bc.name, err))
			continue
		}
		e.log.Info("case "+c+" done", "took", time.Since(start).Round(100*time.Millisecond))
	}

	res.Duration = time.Since(res.Started)
	res.Machine.UptimeAfter = uptime()
	if err := write(res, p.out, stdout); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	if len(res.Failures) > 0 {
		return fmt.Errorf("%d of %d cases failed: %s", len(res.Failures), len(p.cases), strings.Join(res.Failures, "; "))
	}
	return nil
}

// write finishes the run and writes the table to stdout and the files to
// dir.
func write(res *report.Run, dir string, stdout io.Writer) error {
	if err := res.Finish(); err != nil {
		return err
	}
	if err := res.WriteTable(stdout); err != nil {
		return err
	}
	if err := res.WriteFiles(dir); err != nil {
		return err
	}
	if len(res.Rows) > 0 {
		if err := report.WriteChart(filepath.Join(dir, "chart.png"), chartTitle(res), panels(res)); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "results: %s (results.json, results.md, chart.png)\n", dir)
	return nil
}

// replot rewrites the table, the files and the chart of an earlier run.
func replot(dir string, stdout io.Writer) error {
	data, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return fmt.Errorf("--replot: %w", err)
	}
	var res report.Run
	if err := json.Unmarshal(data, &res); err != nil {
		return fmt.Errorf("--replot: %s: %w", filepath.Join(dir, "results.json"), err)
	}
	return write(&res, dir, stdout)
}

// containerDefaults sets what testcontainers-go needs on an engine without
// a registry, as the Makefile does for every target: no reaper (its image
// cannot be pulled; only "true" disables it) and, inside a container, the
// mapped ports on localhost. testcontainers reads these from the
// environment only; a value already set wins.
func containerDefaults() {
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	if _, err := os.Stat("/.dockerenv"); err == nil && os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" {
		os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "localhost")
	}
}

// machine describes this machine.
func machine() report.Machine {
	m := report.Machine{
		Cores:        runtime.NumCPU(),
		GoVersion:    runtime.Version(),
		OS:           runtime.GOOS + "/" + runtime.GOARCH,
		UptimeBefore: uptime(),
	}
	m.Hostname, _ = os.Hostname()
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	if kb, err := strconv.ParseFloat(strings.Fields(procField("/proc/meminfo", "MemTotal") + " 0")[0], 64); err == nil && kb > 0 {
		m.MemoryGiB = strconv.FormatFloat(kb/(1<<20), 'f', 1, 64)
	}
	return m
}

// uptime returns the output of uptime(1): the load other processes put on
// the machine.
func uptime() string {
	out, err := exec.Command("uptime").Output()
	if err != nil {
		b, _ := os.ReadFile("/proc/loadavg")
		return "loadavg " + strings.TrimSpace(string(b))
	}
	return strings.TrimSpace(string(out))
}

// procField returns the value of the first "name: value" line of a /proc
// file.
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
