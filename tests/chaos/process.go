package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Process is one service binary the campaign runs, stops and restarts. Its
// HTTP address stays the same across restarts; its output goes, appended,
// to <dir>/<name>.log.
type Process struct {
	Name string
	Bin  string
	Env  []string
	// Addr is the service's HTTP_ADDR (127.0.0.1:port).
	Addr string
	Log  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current run has exited
	starts int
	// stopping is set while the campaign stops the process on purpose;
	// an exit without it is a crash, which the supervisor restarts.
	stopping bool
	crashes  int
	closed   bool // the test is over: no more restarts
}

// SupervisorDelay is how long after a crash the process is started again,
// as a container runtime's restart policy would: a service that cannot
// reach the database at start exits, and comes back once it can.
const SupervisorDelay = time.Second

// NewProcess prepares a process; env is added to the test's environment
// with HTTP_ADDR set to a free loopback port.
func NewProcess(name, bin, dir string, env map[string]string) (*Process, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &Process{Name: name, Bin: bin, Addr: fmt.Sprintf("127.0.0.1:%d", port), Log: filepath.Join(dir, name+".log")}
	p.Env = append(os.Environ(), "HTTP_ADDR="+p.Addr)
	for k, v := range env {
		p.Env = append(p.Env, k+"="+v)
	}
	return p, nil
}

// freePort returns a TCP port nothing listens on right now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Start starts the process unless it runs already (or the test is over).
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil || p.closed {
		return nil
	}
	out, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	p.starts++
	fmt.Fprintf(out, "==== chaos: start %d of %s at %s\n", p.starts, p.Name, time.Now().Format(time.StampMilli))
	cmd := exec.Command(p.Bin)
	cmd.Env = p.Env
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		crashed := !p.stopping && !p.closed
		if crashed {
			p.crashes++
		}
		if p.cmd == cmd {
			p.cmd = nil
		}
		p.mu.Unlock()
		how := "stopped by the campaign"
		if crashed {
			how = "crashed; the supervisor restarts it in " + SupervisorDelay.String()
		}
		fmt.Fprintf(out, "==== chaos: %s exited at %s (%s): %v\n", p.Name, time.Now().Format(time.StampMilli), how, err)
		out.Close()
		close(exited)
		if crashed {
			time.AfterFunc(SupervisorDelay, func() { _ = p.restartAfterCrash() })
		}
	}()
	p.cmd, p.exited, p.stopping = cmd, exited, false
	return nil
}

func (p *Process) restartAfterCrash() error {
	p.mu.Lock()
	skip := p.closed || p.stopping || p.cmd != nil
	p.mu.Unlock()
	if skip {
		return nil
	}
	return p.Start()
}

// Crashes counts the exits the campaign did not ask for.
func (p *Process) Crashes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.crashes
}

// Close kills the process for good: no restart after it.
func (p *Process) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	_ = p.Kill()
}

// Dump asks the Go runtime of the process for its goroutines (SIGQUIT:
// it prints them to its log and exits) and does not restart it: what a
// stalled service was waiting for, for the failure report.
func (p *Process) Dump() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	if err := p.stop(syscall.SIGQUIT, 5*time.Second); err != nil {
		_ = p.Kill()
	}
}

// Running reports whether the process runs.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// Kill sends SIGKILL and waits for the process to exit.
func (p *Process) Kill() error { return p.stop(syscall.SIGKILL, 10*time.Second) }

// Term sends SIGTERM and waits up to grace for a clean exit, then kills.
func (p *Process) Term(grace time.Duration) error {
	if err := p.stop(syscall.SIGTERM, grace); err == nil || !errors.Is(err, errStillRunning) {
		return err
	}
	return p.Kill()
}

var errStillRunning = errors.New("still running")

func (p *Process) stop(sig syscall.Signal, wait time.Duration) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.stopping = true // also keeps a crashed process from being restarted
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s %s: %w", sig, p.Name, err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(wait):
		return fmt.Errorf("%s %s: %w after %s", sig, p.Name, errStillRunning, wait)
	}
}

// WaitReady polls /readyz until it answers 200.
func (p *Process) WaitReady(ctx context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get("http://" + p.Addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/readyz answered %d", resp.StatusCode)
		}
		if !p.Running() {
			return fmt.Errorf("%s exited before it was ready (see %s)", p.Name, p.Log)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last: %v; see %s)", p.Name, ctx.Err(), err, p.Log)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
