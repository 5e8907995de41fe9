package chaos

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/testkit/pgtest"
)

// Postgres is the reefer database in a container, reached through a TCP
// proxy of the test process: Docker may publish a restarted container on
// another host port, and the services keep one DATABASE_URL for the whole
// campaign. The proxy only copies bytes, so a paused container looks to the
// services exactly like a hung server.
type Postgres struct {
	ctr   *pgtest.Container
	proxy net.Listener

	mu     sync.Mutex
	target string // host:port of the container now
	conns  map[net.Conn]struct{}

	// faultMu serialises the container faults: on a loaded machine a
	// restart can outlast its slot and meet the next pause, and docker
	// stop on a paused container never ends, which left Postgres paused
	// for the rest of a 20,000-order campaign.
	faultMu sync.Mutex
}

// StartPostgres starts the container and the proxy; both end with the test.
func StartPostgres(t testing.TB) (*Postgres, error) {
	ctr := pgtest.StartContainer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("postgres proxy: %w", err)
	}
	pg := &Postgres{ctr: ctr, proxy: ln, conns: map[net.Conn]struct{}{}}
	if err := pg.locate(t.Context()); err != nil {
		ln.Close()
		return nil, err
	}
	t.Cleanup(pg.close)
	go pg.serve()
	return pg, nil
}

// DSN is the database URL of the services and the checker: the proxy's.
func (pg *Postgres) DSN() string { return pgtest.DSN(pg.proxy.Addr().String()) }

func (pg *Postgres) locate(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ep, err := pg.ctr.PortEndpoint(ctx, "5432/tcp", "")
	if err != nil {
		return fmt.Errorf("address of the postgres container: %w", err)
	}
	pg.mu.Lock()
	pg.target = ep
	pg.mu.Unlock()
	return nil
}

func (pg *Postgres) serve() {
	for {
		c, err := pg.proxy.Accept()
		if err != nil {
			return // closed
		}
		go pg.pipe(c)
	}
}

func (pg *Postgres) pipe(c net.Conn) {
	pg.mu.Lock()
	target := pg.target
	pg.mu.Unlock()
	s, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	pg.mu.Lock()
	pg.conns[c], pg.conns[s] = struct{}{}, struct{}{}
	pg.mu.Unlock()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(s, c)
	go cp(c, s)
	<-done
	c.Close()
	s.Close()
	<-done
	pg.mu.Lock()
	delete(pg.conns, c)
	delete(pg.conns, s)
	pg.mu.Unlock()
}

// dropConnections closes every proxied connection, as a server restart does.
func (pg *Postgres) dropConnections() {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	for c := range pg.conns {
		c.Close()
	}
}

func (pg *Postgres) close() {
	pg.proxy.Close()
	pg.dropConnections()
	// A test that failed during a pause leaves the container paused;
	// unpaused, it is removed the usual way. An error means it was not.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = pg.Unpause(ctx)
}

// Pause freezes the container (docker pause): connections stay open and
// nothing answers.
func (pg *Postgres) Pause(ctx context.Context) error {
	pg.faultMu.Lock()
	defer pg.faultMu.Unlock()
	return docker(ctx, "pause", pg.ctr.GetContainerID())
}

// Unpause resumes the container if it is paused: a pause whose docker
// command failed may still have happened, so the state is asked, not
// remembered.
func (pg *Postgres) Unpause(ctx context.Context) error {
	pg.faultMu.Lock()
	defer pg.faultMu.Unlock()
	return pg.unpause(ctx)
}

func (pg *Postgres) unpause(ctx context.Context) error {
	id := pg.ctr.GetContainerID()
	var err error
	for range 5 {
		out, ierr := exec.CommandContext(ctx, "docker", "inspect", "-f", "{{.State.Paused}}", id).Output()
		if ierr == nil && strings.TrimSpace(string(out)) == "false" {
			return nil
		}
		if err = docker(ctx, "unpause", id); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
	return err
}

// Restart stops the server (fast shutdown) and starts it again, then points
// the proxy at its new address. A paused container is resumed first.
func (pg *Postgres) Restart(ctx context.Context) error {
	pg.faultMu.Lock()
	defer pg.faultMu.Unlock()
	if err := pg.unpause(ctx); err != nil {
		return err
	}
	if err := pg.ctr.Restart(ctx); err != nil {
		return err
	}
	pg.dropConnections() // the server's side of them is gone anyway
	return pg.locate(ctx)
}

func docker(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
