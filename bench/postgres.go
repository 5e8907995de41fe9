package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/reeferdlq/reefer-dlq/pkg/testkit/pgtest"
)

// defaultPostgresImage is the image `make images` builds offline; the
// tests (package pgtest) use the same one.
const defaultPostgresImage = "reefer-dlq/postgres:15"

// postgresServer is the database server every case shares. Each case gets a
// database of its own on it (a fresh fleet, no rows of an earlier case), so
// the cases do not depend on their order.
type postgresServer struct {
	// url is the administrative connection: the server's default
	// database, used to create and drop the cases' databases.
	url       string
	container *postgres.PostgresContainer // nil with --postgres
	created   []string
	image     string
}

// startPostgres starts the offline Postgres image in Docker as pgtest does
// for the tests (pgtest itself needs a *testing.T), but with Postgres'
// default durability.
func startPostgres(ctx context.Context) (*postgresServer, error) {
	img := os.Getenv("POSTGRES_IMAGE")
	if img == "" {
		img = defaultPostgresImage
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := pgtest.CheckEngine(ctx, img, "pass --postgres URL"); err != nil {
		return nil, err
	}
	ctr, err := postgres.Run(ctx, img,
		postgres.WithDatabase("bench"),
		postgres.WithUsername("bench"),
		postgres.WithPassword("bench"),
		postgres.BasicWaitStrategies(),
		// The module turns fsync off, which suits tests; a benchmark
		// measures what production runs: Postgres' defaults, fsync on.
		testcontainers.WithCmd("postgres", "-c", "fsync=on"),
	)
	if err != nil {
		if ctr != nil {
			_ = ctr.Terminate(context.WithoutCancel(ctx))
		}
		return nil, fmt.Errorf("start Postgres from image %s: %w", img, err)
	}
	dsn, err := ctr.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		_ = ctr.Terminate(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("address of the Postgres container: %w", err)
	}
	return &postgresServer{url: dsn, container: ctr, image: img}, nil
}

// usePostgres uses a server the caller runs (--postgres). Its user must be
// allowed to create databases.
func usePostgres(ctx context.Context, rawURL string) (*postgresServer, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return nil, fmt.Errorf("--postgres %q: want postgres://user:password@host:5432/db?sslmode=disable", redactURL(rawURL))
	}
	conn, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("--postgres %s: %w", redactURL(rawURL), err)
	}
	_ = conn.Close(ctx)
	return &postgresServer{url: rawURL, image: "external server"}, nil
}

// database creates an empty database for one case and returns its URL.
func (s *postgresServer) database(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("create database %s: drop the old one: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return "", fmt.Errorf("create database %s (the --postgres user needs CREATEDB): %w", name, err)
	}
	s.created = append(s.created, name)
	u, err := url.Parse(s.url)
	if err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// close drops the databases the run created and stops the container.
func (s *postgresServer) close(ctx context.Context) error {
	var errs []error
	if conn, err := pgx.Connect(ctx, s.url); err == nil {
		for _, name := range s.created {
			if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
				errs = append(errs, fmt.Errorf("drop database %s: %w", name, err))
			}
		}
		_ = conn.Close(ctx)
	} else if s.container == nil {
		errs = append(errs, fmt.Errorf("drop the run's databases: %w", err))
	}
	if s.container != nil {
		if err := s.container.Terminate(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop the Postgres container: %w", err))
		}
	}
	return errors.Join(errs...)
}

// settings describes the server's version and the settings that matter
// for write throughput.
func (s *postgresServer) settings(ctx context.Context) (string, error) {
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return "", fmt.Errorf("read Postgres settings: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var parts []string
	for _, name := range []string{"server_version", "fsync", "synchronous_commit", "shared_buffers", "max_connections"} {
		var v string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
			return "", fmt.Errorf("read Postgres setting %s: %w", name, err)
		}
		parts = append(parts, name+"="+v)
	}
	return strings.Join(parts, ", "), nil
}

// redactURL hides a URL's password.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}
