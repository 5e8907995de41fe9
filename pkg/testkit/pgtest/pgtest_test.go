package pgtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/testcontainers/testcontainers-go/modules/postgres"
)

func TestImageFollowsEnvironment(t *testing.T) {
	tests := []struct {
		name string
		env  string
		want string
	}{
		{name: "unset uses the offline image", env: "", want: DefaultImage},
		{name: "set uses the given image", env: "postgres:16", want: "postgres:16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("POSTGRES_IMAGE", tt.env)
			if got := Image(); got != tt.want {
				t.Errorf("Image() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDSNNamesTheServerAndDisablesTLS(t *testing.T) {
	tests := []struct {
		hostPort string
		want     string
	}{
		{"postgres:5432", "postgres://reefer:reefer@postgres:5432/reefer?sslmode=disable"},
		{"127.0.0.1:49153", "postgres://reefer:reefer@127.0.0.1:49153/reefer?sslmode=disable"},
	}
	for _, tt := range tests {
		if got := DSN(tt.hostPort); got != tt.want {
			t.Errorf("DSN(%q) = %q, want %q", tt.hostPort, got, tt.want)
		}
	}
}

func TestCheckEngineNamesTheMissingImage(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a Docker engine; integration tests are skipped with -short")
	}
	tests := []struct {
		name    string
		image   string
		wantErr string // "" means no error
	}{
		{name: "built image is accepted", image: Image()},
		{name: "missing offline image asks for make images", image: "reefer-dlq/no-such-image:0", wantErr: "run `make images`"},
		{name: "missing public image is left to pull", image: "postgres:0-never-pulled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := checkEngine(ctx, tt.image)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("checkEngine(%q) = %v, want nil", tt.image, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("checkEngine(%q) = %v, want an error containing %q", tt.image, err, tt.wantErr)
			}
		})
	}
}

func TestStartServesQueriesAsTheConfiguredUser(t *testing.T) {
	t.Parallel()
	dsn := Start(t) // waits as long as a loaded machine needs (see Start)
	// The queries' bound starts once the server is up: a minute is far
	// more than they take, even under make test-stress.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)

	var user, db string
	if err := conn.QueryRow(ctx, "SELECT current_user, current_database()").Scan(&user, &db); err != nil {
		t.Fatalf("query: %v", err)
	}
	if user != User || db != Database {
		t.Errorf("connected as %s to %s, want %s to %s", user, db, User, Database)
	}
}

// The image runs /docker-entrypoint-initdb.d like the official one, and
// options given to Start reach postgres.Run.
func TestStartRunsInitScriptsInOrder(t *testing.T) {
	t.Parallel()
	dsn := Start(t, postgres.WithOrderedInitScripts("testdata/01-schema.sql", "testdata/02-seed.sh"))
	// Counted from when the server is up (Start took 80 s once under make
	// test-stress, and a context made before it had expired).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var ids string
	if err := conn.QueryRow(ctx, "SELECT string_agg(container_id, ',' ORDER BY container_id) FROM fleet").Scan(&ids); err != nil {
		t.Fatalf("query: %v", err)
	}
	if ids != "C01,C02" {
		t.Errorf("fleet = %s, want C01,C02 (the .sql script, then the .sh script)", ids)
	}
}

func TestContainerKeepsDataAcrossRestart(t *testing.T) {
	t.Parallel()
	ctr := StartContainer(t)
	// Counted from when the server is up; the restart inside is bounded
	// by the container helper's own wait.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	connect := func() *pgx.Conn {
		t.Helper()
		conn, err := pgx.Connect(ctx, ctr.DSN(t))
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		return conn
	}

	before := connect()
	if _, err := before.Exec(ctx, "CREATE TABLE reefers (id int PRIMARY KEY)"); err != nil {
		t.Fatalf("create table: %v", err)
	}
	if _, err := before.Exec(ctx, "INSERT INTO reefers VALUES (7)"); err != nil {
		t.Fatalf("insert: %v", err)
	}

	if err := ctr.Restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}

	var got int
	if err := connect().QueryRow(ctx, "SELECT id FROM reefers").Scan(&got); err != nil {
		t.Fatalf("select after restart: %v", err)
	}
	if got != 7 {
		t.Errorf("after restart got id %d, want 7", got)
	}
}
