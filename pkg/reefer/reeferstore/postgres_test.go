package reeferstore_test

import (
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for creating test databases

	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
	"github.com/reeferdlq/reefer-dlq/pkg/testkit/pgtest"
)

func TestPostgresStore(t *testing.T) {
	runSuite(t, backend{open: postgresOpener(t), outageFailsPing: true})
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
