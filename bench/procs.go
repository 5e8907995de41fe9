package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The services case 8 runs as separate processes: binary name -> package
// directory, relative to the repository root (as in the Makefile).
var serviceBinaries = map[string]string{
	"reefer-manager":           "services/reefer-manager",
	"order-retry":              "services/order-retry",
	"container-inventory-mock": "services/container-inventory-mock",
}

// binaries finds or builds the service binaries, once.
type binaries struct {
	dir  string // --bin; empty: build into a temporary directory
	log  *slog.Logger
	once sync.Once
	done chan struct{}
	err  error
	tmp  string
}

func newBinaries(dir string, log *slog.Logger) *binaries {
	return &binaries{dir: dir, log: log, done: make(chan struct{})}
}

// prefetch starts building in the background, so that the build overlaps
// the cases that come before the one that needs the binaries.
func (b *binaries) prefetch(ctx context.Context) {
	b.once.Do(func() {
		go func() {
			defer close(b.done)
			b.err = b.prepare(ctx)
		}()
	})
}

// path returns the binary of a service.
func (b *binaries) path(ctx context.Context, name string) (string, error) {
	b.prefetch(ctx)
	select {
	case <-b.done:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if b.err != nil {
		return "", b.err
	}
	p := filepath.Join(b.dir, name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("binary %s: %w (run make build, or leave --bin empty to build it)", name, err)
	}
	return p, nil
}

// prepare builds the binaries when no --bin was given: go build from the
// repository of the workspace this program runs in, with the flags of
// `make build` (so that a build after make build comes from Go's cache).
func (b *binaries) prepare(ctx context.Context) error {
	if b.dir != "" {
		return nil
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOWORK").Output()
	gowork := strings.TrimSpace(string(out))
	if err != nil || gowork == "" || gowork == "off" {
		return fmt.Errorf("case 8 builds the service binaries from the repository's Go workspace, and none was found (go env GOWORK = %q, %v): run from inside the repository, or pass --bin with the binaries of make build", gowork, err)
	}
	root := filepath.Dir(gowork)
	b.tmp, err = os.MkdirTemp("", "reefer-dlq-bench-bin-")
	if err != nil {
		return fmt.Errorf("build service binaries: %w", err)
	}
	args := []string{"build", "-trimpath", "-o", b.tmp + string(filepath.Separator)}
	for _, name := range slices.Sorted(maps.Keys(serviceBinaries)) {
		args = append(args, "./"+serviceBinaries[name])
	}
	b.log.Info("building the service binaries", "cmd", "go "+strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build service binaries (go %s): %w\n%s", strings.Join(args, " "), err, out)
	}
	b.dir = b.tmp
	return nil
}

// cleanup removes the binaries it built, after waiting for a build in
// progress.
func (b *binaries) cleanup() {
	b.once.Do(func() { close(b.done) }) // never started: nothing to wait for
	<-b.done
	if b.tmp != "" {
		os.RemoveAll(b.tmp)
	}
}

// process is a service running as a child process.
type process struct {
	name   string
	cmd    *exec.Cmd
	addr   string        // its HTTP_ADDR
	log    string        // its log file
	exited chan struct{} // closed when it exited; waitErr is set then
	// waitErr is what cmd.Wait returned.
	waitErr error
}

// procSpec says how to start a service process.
type procSpec struct {
	name    string            // the service: its binary's name
	logName string            // the log file's name in <out>/logs
	environ map[string]string // its whole environment but PATH and HOME
	// bin and args, when bin is set, run that program instead of the
	// service's binary (the bench itself as a profiled order-retry).
	bin  string
	args []string
}

// startProcess runs the service with exactly its environment (plus PATH
// and HOME: nothing of the caller's KAFKA_* or DATABASE_URL leaks in) and
// waits until it answers /readyz (the inventory mock: /healthz, as its
// /readyz fails on purpose while an outage is injected, and the memory
// case starts it in one).
func (e *env) startProcess(ctx context.Context, s procSpec) (*process, error) {
	name, environ, bin := s.name, s.environ, s.bin
	if bin == "" {
		var err error
		if bin, err = e.bins.path(ctx, name); err != nil {
			return nil, err
		}
	}
	var err error
	addr := environ["HTTP_ADDR"]
	if addr == "" || strings.HasSuffix(addr, ":0") {
		if addr, err = freeAddr(); err != nil {
			return nil, err
		}
		environ["HTTP_ADDR"] = addr
	}
	logPath := filepath.Join(e.p.out, "logs", s.logName+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, s.args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	maps.Copy(environ, e.p.serviceEnv)
	for _, k := range slices.Sorted(maps.Keys(environ)) {
		cmd.Env = append(cmd.Env, k+"="+environ[k])
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, addr: addr, log: logPath, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	probe := "/readyz"
	if name == "container-inventory-mock" {
		probe = "/healthz"
	}
	err = waitUntil(ctx, time.Minute, name+" ready", func() (bool, error) {
		select {
		case <-p.exited:
			return false, fmt.Errorf("exited: %v", p.waitErr)
		default:
		}
		resp, err := http.Get("http://" + addr + probe)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Errorf("%s answered %s", probe, resp.Status)
	})
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("%w; log %s:\n%s", err, logPath, tail(logPath, 20))
	}
	return p, nil
}

// peakRSS returns the process's peak resident set size (VmHWM) in bytes.
func (p *process) peakRSS() (int64, error) {
	return procStatusBytes(p.cmd.Process.Pid, "VmHWM")
}

// procStatusBytes reads a "kB" field of /proc/<pid>/status.
func procStatusBytes(pid int, field string) (int64, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/status"
	v := procField(path, field)
	kb, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s of pid %d: %q in %s: %w", field, pid, v, path, err)
	}
	return kb << 10, nil
}

// stop sends SIGTERM (a graceful shutdown) and kills the process if it is
// not gone in 30 s. It reports an exit with an error, with the end of the
// process's log. Calling it again returns nil.
func (p *process) stop() error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.waitErr != nil {
			return fmt.Errorf("%s exited with %v; log %s:\n%s", p.name, p.waitErr, p.log, tail(p.log, 20))
		}
		return nil
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s did not stop within 30 s of SIGTERM; killed", p.name)
	}
}

// metric scrapes one unlabelled series from the process's /metrics.
func (p *process) metric(ctx context.Context, series string) (float64, error) {
	text, err := scrape(ctx, p.addr)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p.name, err)
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if ok && name == series {
			return strconv.ParseFloat(strings.TrimSpace(value), 64)
		}
	}
	return 0, fmt.Errorf("%s: no series %s on /metrics", p.name, series)
}

// scrape returns the Prometheus text of http://addr/metrics.
func scrape(ctx context.Context, addr string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("scrape %s: %w", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("scrape %s: %w", addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("scrape %s: %s", addr, resp.Status)
	}
	return string(body), nil
}

// histogramBound returns the upper bound of the first bucket of histogram
// name (an unlabelled Prometheus histogram) that holds the quantile q: what
// the service itself reports, at its buckets' resolution.
func histogramBound(text, name string, q float64) (float64, error) {
	type bucket struct{ le, count float64 }
	var buckets []bucket
	prefix := name + `_bucket{le="`
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		le, count, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		b := bucket{le: math.Inf(1)}
		if le != "+Inf" {
			v, err := strconv.ParseFloat(le, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: bucket %q: %w", name, le, err)
			}
			b.le = v
		}
		c, err := strconv.ParseFloat(strings.TrimSpace(count), 64)
		if err != nil {
			return 0, fmt.Errorf("%s: bucket count %q: %w", name, count, err)
		}
		b.count = c
		buckets = append(buckets, b)
	}
	if len(buckets) == 0 || buckets[len(buckets)-1].count == 0 {
		return 0, fmt.Errorf("no observations of %s", name)
	}
	total := buckets[len(buckets)-1].count
	for _, b := range buckets {
		if b.count >= q*total {
			return b.le, nil
		}
	}
	return math.Inf(1), nil
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
