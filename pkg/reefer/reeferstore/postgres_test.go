package reeferstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for creating test databases

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
	"github.com/reeferdlq/reefer-dlq/pkg/testkit/pgtest"
)

func TestPostgresStore(t *testing.T) {
	runSuite(t, backend{open: postgresOpener(t), outageFailsPing: true, rowLocks: true})
}

// postgresOpener starts one Postgres server for the whole suite and gives
// every test its own database on it. Each Store reaches its database
// through a TCP proxy, so a test can cut the connection as a network
// failure or a crashed server would, without stopping the server that the
// other tests share.
func postgresOpener(t *testing.T) func(t *testing.T) (*reeferstore.Store, outage) {
	admin, dsn := startPostgres(t)
	var seq atomic.Int64
	return func(t *testing.T) (*reeferstore.Store, outage) {
		t.Helper()
		dbURL := createDatabase(t, admin, dsn, fmt.Sprintf("suite_%d", seq.Add(1)))
		target, err := url.Parse(dbURL)
		if err != nil {
			t.Fatal(err)
		}
		p := startProxy(t, target.Host)
		target.Host = p.addr()

		s, err := reeferstore.Open(t.Context(), target.String(), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s, func(_ *testing.T, down bool) { p.setDown(down) }
	}
}

// startPostgres starts the server and returns an admin connection to it.
func startPostgres(tb testing.TB) (*sql.DB, string) {
	tb.Helper()
	dsn := pgtest.Start(tb)
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = admin.Close() })
	return admin, dsn
}

// createDatabase creates an empty database and returns its URL.
func createDatabase(tb testing.TB, admin *sql.DB, dsn, name string) string {
	tb.Helper()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		tb.Fatalf("create database %s: %v", name, err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// proxy forwards TCP connections to target. While down it cuts every
// connection and refuses new ones by closing them at once.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.setDown(true)
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			_ = c.Close()
		}
		clear(p.conns)
	}
}

func (p *proxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(client)
	}
}

func (p *proxy) forward(client net.Conn) {
	p.mu.Lock()
	down := p.down
	p.mu.Unlock()
	if down {
		_ = client.Close()
		return
	}
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = client.Close()
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		_ = client.Close()
		_ = server.Close()
		return
	}
	p.conns[client] = struct{}{}
	p.conns[server] = struct{}{}
	p.mu.Unlock()

	go func() {
		_, _ = io.Copy(server, client)
		_ = server.Close()
	}()
	_, _ = io.Copy(client, server)
	_ = client.Close()
}

// Found by the integration suite (outage, then redrive): two releases of
// one reefer ran at once (the release sweep and the redriven chain). One
// freed the reefer, the order took it again and the inventory recorded
// it, then the other's inventory release erased that record. On Postgres
// a release holds the reefer's row lock for the inventory call: a second
// release of the same reefer meanwhile does nothing.
func TestPostgresReleasesOfOneReeferNeverOverlap(t *testing.T) {
	s, _ := postgresOpener(t)(t)
	ctx := t.Context()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.SeedFleet(ctx, 3); err != nil {
		t.Fatal(err)
	}
	c, err := s.Allocate(ctx, "O-1", 5)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.DeadLetter(ctx, "O-1", allocation.Claim{Token: "orders/0@1", ErrorClass: failure.Permanent, ErrorReason: "http-422", ErrorMessage: "refused"}); err != nil || res.Released != c {
		t.Fatalf("DeadLetter = %+v, %v; want %s pending release", res, err, c)
	}
	r := allocation.Reservation{OrderID: "O-1", ContainerID: c}

	inside, leave := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		done, err := s.ReleaseWith(ctx, r, func(context.Context) error {
			close(inside)
			<-leave // the first release's inventory call is in flight
			return nil
		})
		if err == nil && !done {
			err = errors.New("the first release did not free the reefer")
		}
		first <- err
	}()
	<-inside
	called := false
	done, err := s.ReleaseWith(ctx, r, func(context.Context) error { called = true; return nil })
	if err != nil || done || called {
		t.Errorf("a second release during the first = done %t, called %t, %v; want nothing done, the inventory not called", done, called, err)
	}
	close(leave)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if rf, err := s.Reefer(ctx, c); err != nil || rf.Status != reeferstore.StatusFree {
		t.Errorf("reefer after the release = %+v, %v; want free", rf, err)
	}
	if done, err := s.ReleaseWith(ctx, r, func(context.Context) error { called = true; return nil }); err != nil || done || called {
		t.Errorf("a release of a free reefer = done %t, called %t, %v; want nothing", done, called, err)
	}
}
