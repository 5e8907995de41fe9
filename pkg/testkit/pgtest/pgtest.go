package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/postgres"
	"github.com/testcontainers/testcontainers-go/wait"
)

// DefaultImage is the image `make images` builds offline.
const DefaultImage = "reefer-dlq/postgres:15"

// The credentials and database of every server this package starts. They
// are constants so that a test can also build the address another container
// on the same Docker network uses (see DSN).
const (
	User     = "reefer"
	Password = "reefer"
	Database = "reefer"
)

// startTimeout bounds the whole start, image checks included, and the wait
// for readiness. A cold start of the offline image takes 2-4 s; on a 2-core
// machine at load 50 it took 30 s once and did not log "ready" twice
// within testcontainers' default 60 s wait another time.
const startTimeout = 5 * time.Minute

// Image returns the image Start runs: $POSTGRES_IMAGE, else DefaultImage.
func Image() string {
	if img := os.Getenv("POSTGRES_IMAGE"); img != "" {
		return img
	}
	return DefaultImage
}

// DSN returns the connection URL of a server started by this package at
// hostPort, e.g. DSN("postgres:5432") for a service container that reaches
// the server by its network alias.
func DSN(hostPort string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(User, Password),
		Host:     hostPort,
		Path:     "/" + Database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Container is a running Postgres server owned by one test. The embedded
// module container gives access to Stop, Start, Exec and the rest of the
// testcontainers API, e.g. for tests that restart the database.
type Container struct {
	*postgres.PostgresContainer
}

// DSN returns the URL the test process uses to connect. Ask again after a
// restart: Docker may map the port to a different host port.
func (c *Container) DSN(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	endpoint, err := c.PortEndpoint(ctx, "5432/tcp", "")
	if err != nil {
		tb.Fatalf("pgtest: address of the Postgres container: %v", err)
	}
	return DSN(endpoint)
}

// Restart stops the server with its stop signal (SIGINT: Postgres' fast
// shutdown) and starts it again, returning once it accepts TCP connections.
// Call DSN afterwards: the host port may have changed.
func (c *Container) Restart(ctx context.Context) error {
	stopTimeout := 30 * time.Second
	if err := c.Stop(ctx, &stopTimeout); err != nil {
		return fmt.Errorf("stop postgres: %w", err)
	}
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	// The start-up wait strategy counts log lines of earlier runs too, so it
	// returns early after a restart; ask the server itself instead.
	for {
		code, _, err := c.Exec(ctx, []string{"pg_isready", "--quiet", "--host=127.0.0.1", "--username=" + User, "--dbname=" + Database})
		if err == nil && code == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("postgres not ready after restart (exit code %d, err %v): %w", code, err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Start starts a Postgres server for the test and returns its connection
// URL. The container is removed when the test and its subtests end.
// opts are passed to postgres.Run after this package's own, e.g.
// network.WithNetwork([]string{"postgres"}, nw) to join a Docker network.
func Start(tb testing.TB, opts ...testcontainers.ContainerCustomizer) (dsn string) {
	tb.Helper()
	return StartContainer(tb, opts...).DSN(tb)
}

// StartContainer is Start for tests that need the container itself.
func StartContainer(tb testing.TB, opts ...testcontainers.ContainerCustomizer) *Container {
	tb.Helper()
	if testing.Short() {
		tb.Skip("pgtest: needs a Docker engine; integration tests are skipped with -short")
	}

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()

	img := Image()
	if err := checkEngine(ctx, img); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}

	all := append([]testcontainers.ContainerCustomizer{
		postgres.WithDatabase(Database),
		postgres.WithUsername(User),
		postgres.WithPassword(Password),
		// postgres.BasicWaitStrategies with startTimeout instead of 60 s:
		// ready logged twice (initdb restarts the server), then the port.
		testcontainers.WithAdditionalWaitStrategyAndDeadline(startTimeout,
			wait.ForLog("database system is ready to accept connections").WithOccurrence(2).WithStartupTimeout(startTimeout),
			wait.ForListeningPort("5432/tcp").WithStartupTimeout(startTimeout)),
	}, opts...)
	ctr, err := postgres.Run(ctx, img, all...)
	// Registered before the error check: a container that started but never
	// became ready must be removed too.
	testcontainers.CleanupContainer(tb, ctr)
	if err != nil {
		tb.Fatalf("pgtest: start Postgres from image %s: %v%s", img, err, reaperHint())
	}
	return &Container{PostgresContainer: ctr}
}

// checkEngine is CheckEngine with the tests' way out.
func checkEngine(ctx context.Context, img string) error {
	return CheckEngine(ctx, img, "run `make test-unit` for the tests that need none")
}

// CheckEngine turns the two usual set-up mistakes into one clear message
// each instead of a hang or a failed pull: no reachable Docker engine, and
// the offline image not built yet. otherwise says what the caller can do
// without Docker ("pass --postgres URL"). A public image that is missing
// is left to testcontainers to pull.
func CheckEngine(ctx context.Context, img, otherwise string) (err error) {
	// testcontainers panics when it finds no Docker host at all.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("no Docker engine reachable (%v): start Docker, or %s", r, otherwise)
		}
	}()

	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("no Docker engine reachable: %w: start Docker, or %s", err, otherwise)
	}
	defer cli.Close()

	_, err = cli.ImageInspect(ctx, img)
	switch {
	case err == nil:
		return nil
	case !errdefs.IsNotFound(err):
		return fmt.Errorf("inspect image %s: %w", img, err)
	case isLocalImage(img):
		return fmt.Errorf("image %s is not in the Docker engine: run `make images` (or set POSTGRES_IMAGE to an image your engine can pull, or %s)", img, otherwise)
	default:
		// A public image: testcontainers pulls it.
		return nil
	}
}

// reaperHint explains the most likely cause of a failed start on an engine
// without a registry: testcontainers' reaper, whose image it tries to pull.
func reaperHint() string {
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "true" {
		return ""
	}
	return " (on an engine that cannot pull images set TESTCONTAINERS_RYUK_DISABLED=true, as `make test NO_REGISTRY=1` does)"
}

// isLocalImage reports whether img is one of the images `make images` builds,
// which no registry serves.
func isLocalImage(img string) bool {
	return strings.HasPrefix(img, "reefer-dlq/")
}
