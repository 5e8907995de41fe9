package reeferstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	gormlogger "gorm.io/gorm/logger"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/envconfig"
)

// dialect names the SQL flavour a Store speaks; a few statements differ.
type dialect string

const (
	dialectPostgres dialect = "postgres"
	dialectSQLite   dialect = "sqlite"
)

// Pool settings. Postgres: enough connections for the services' default
// concurrency (MAX_IN_FLIGHT) without exhausting a small server's
// max_connections (100 by default) when a few replicas run; connections
// are recycled so that a failover or a load balancer change is picked up.
// SQLite: one connection, because SQLite has one writer at a time anyway;
// queueing in Go's pool is cheaper and fairer than spinning in SQLite's
// busy handler.
const (
	postgresMaxOpenConns    = 20
	postgresMaxIdleConns    = 20
	postgresConnMaxLifetime = 30 * time.Minute
	postgresConnMaxIdleTime = 5 * time.Minute

	sqliteMaxOpenConns = 1

	// slowQuery is the duration above which a statement is logged at warn.
	slowQuery = 200 * time.Millisecond
)

// sqliteDefaults are applied to every SQLite database unless the URL sets
// the same parameter. WAL lets readers run while one writer writes;
// busy_timeout makes a second process (or a second Store on the same file)
// wait for the write lock instead of failing at once; _txlock=immediate
// takes the write lock when a transaction begins, so two allocations can
// never both read "reefer is free" and then both write.
var sqliteDefaults = []struct{ key, value, pragma string }{
	{key: "_pragma", pragma: "journal_mode", value: "journal_mode(WAL)"},
	{key: "_pragma", pragma: "busy_timeout", value: "busy_timeout(5000)"},
	{key: "_pragma", pragma: "foreign_keys", value: "foreign_keys(1)"},
	{key: "_pragma", pragma: "synchronous", value: "synchronous(NORMAL)"},
	{key: "_txlock", value: "immediate"},
}

// postgresDefaults are added to every Postgres URL that does not set the
// same parameter. Each bounds a way a database can hang a caller:
//
//   - connect_timeout (seconds, read by pgx): a server, or a proxy, that
//     accepts the connection and never answers the start-up;
//   - statement_timeout (ms, set on the server for the session): a
//     statement that runs too long, holding its locks;
//   - lock_timeout (ms): a statement waiting on a lock another session
//     holds (a stuck transaction, a migration);
//   - idle_in_transaction_session_timeout (ms): a session that opened a
//     transaction and went silent, holding its locks for everyone else.
//
// The values are generous: a connection's SCRAM handshake alone can take
// seconds on a saturated machine, and a timeout that fires on a healthy
// but busy database turns load into failures.
//
// A server that stops answering mid-statement (paused, or a network path
// that drops packets) trips none of these: the client's deadline does
// that (allocbatch bounds every batch and store call). The client's
// deadline is longer than statement_timeout, so a merely slow statement
// ends with the server's clearer error (SQLSTATE 57014, transient).
var postgresDefaults = []struct{ key, value string }{
	{"connect_timeout", "15"},
	{"statement_timeout", "10000"},
	{"lock_timeout", "10000"},
	{"idle_in_transaction_session_timeout", "60000"},
}

// Store is the reefer fleet and its allocations in a SQL database.
// It is safe for concurrent use.
type Store struct {
	db      *gorm.DB
	dialect dialect
	log     *slog.Logger
	now     func() time.Time
}

// Open connects to the database that databaseURL names and checks that it
// answers. Accepted forms:
//
//	postgres://user:pass@host:5432/db?sslmode=disable   (also postgresql://)
//	sqlite:/var/lib/reefer/fleet.db                     (the local demo)
//	file:/var/lib/reefer/fleet.db
//	/var/lib/reefer/fleet.db                            (any path ending in .db)
//
// SQLite URLs may carry driver parameters after '?' (for example
// ?_pragma=busy_timeout(100)); they override the defaults.
//
// Open does not change the schema: call [Store.Migrate] next. An
// unreachable database gives a transient error.
func Open(ctx context.Context, databaseURL string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d, dsn, err := parseURL(databaseURL)
	if err != nil {
		return nil, scrub(err, databaseURL, dsn)
	}
	s, err := open(ctx, d, dsn, databaseURL, log)
	if err != nil {
		// A driver's error may echo the connection string it was given.
		return nil, scrub(err, databaseURL, dsn)
	}
	return s, nil
}

// scrub hides, in err's message, the database URLs and their passwords
// (envconfig.RedactText). An error that does not mention them is returned
// as is; one that does is replaced by an error of the same class and
// reason with the cleaned message, so that no chain of it can print the
// password either.
func scrub(err error, urls ...string) error {
	msg := err.Error()
	clean := redactText(msg, urls...)
	if clean == msg {
		return err
	}
	return failure.New(failure.ClassOf(err), failure.ReasonOf(err), errors.New(clean))
}

func redactText(text string, urls ...string) string {
	for _, u := range urls {
		text = envconfig.RedactText(text, u)
	}
	return text
}

func open(ctx context.Context, d dialect, dsn, databaseURL string, log *slog.Logger) (*Store, error) {

	var dialector gorm.Dialector
	switch d {
	case dialectPostgres:
		dialector = postgres.Open(dsn)
	case dialectSQLite:
		var err error
		if dialector, err = sqliteDialector(dsn); err != nil {
			return nil, fmt.Errorf("open %s database: %w", d, err)
		}
	}
	db, err := gorm.Open(dialector, &gorm.Config{
		// Writes here are single atomic statements or explicit
		// transactions; gorm's implicit transaction per statement would
		// only add round trips.
		SkipDefaultTransaction: true,
		// Turn driver errors into gorm.ErrDuplicatedKey and friends, so
		// classification does not depend on the driver.
		TranslateError: true,
		// Open pings itself, with the caller's context.
		DisableAutomaticPing: true,
		Logger: queryLogger{log: log, redact: func(text string) string {
			return redactText(text, databaseURL, dsn)
		}},
		NowFunc: func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		// The network is not involved yet (Open pings below): a bad DSN,
		// or a SQLite file that cannot be created.
		return nil, fmt.Errorf("open %s database: DATABASE_URL %q: %w", d, envconfig.RedactURL(databaseURL), err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", d, err)
	}
	switch d {
	case dialectPostgres:
		sqlDB.SetMaxOpenConns(postgresMaxOpenConns)
		sqlDB.SetMaxIdleConns(postgresMaxIdleConns)
		sqlDB.SetConnMaxLifetime(postgresConnMaxLifetime)
		sqlDB.SetConnMaxIdleTime(postgresConnMaxIdleTime)
	case dialectSQLite:
		sqlDB.SetMaxOpenConns(sqliteMaxOpenConns)
		// Keep the one connection: reopening re-runs the pragmas.
		sqlDB.SetMaxIdleConns(sqliteMaxOpenConns)
	}

	s := &Store{db: db, dialect: d, log: log, now: func() time.Time { return time.Now().UTC() }}
	if err := s.Ping(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("open %s database: %w", d, err)
	}
	return s, nil
}

// parseURL picks the dialect and the driver's DSN from DATABASE_URL.
func parseURL(databaseURL string) (dialect, string, error) {
	raw := strings.TrimSpace(databaseURL)
	lower := strings.ToLower(raw)
	switch {
	case raw == "":
		return "", "", errors.New("DATABASE_URL is empty: want postgres://user:pass@host:5432/db, sqlite:<path>, file:<path> or a path ending in .db")
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		// url.Parse's error quotes the URL, password included: say what
		// is wrong without it.
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return "", "", fmt.Errorf("DATABASE_URL %q is not a valid Postgres URL: want postgres://user:pass@host:5432/db, with reserved characters in the password percent-encoded (%% as %%25, # as %%23, @ as %%40)", envconfig.RedactURL(raw))
		}
		q := u.Query()
		for _, p := range postgresDefaults {
			if !q.Has(p.key) {
				q.Set(p.key, p.value)
			}
		}
		u.RawQuery = q.Encode()
		return dialectPostgres, u.String(), nil
	case strings.HasPrefix(lower, "sqlite:"):
		dsn, err := sqliteDSN(strings.TrimPrefix(raw[len("sqlite:"):], "//"))
		return dialectSQLite, dsn, err
	case strings.HasPrefix(lower, "file:"):
		dsn, err := sqliteDSN(strings.TrimPrefix(raw[len("file:"):], "//"))
		return dialectSQLite, dsn, err
	case strings.HasSuffix(strings.SplitN(lower, "?", 2)[0], ".db"):
		dsn, err := sqliteDSN(raw)
		return dialectSQLite, dsn, err
	}
	return "", "", fmt.Errorf("DATABASE_URL %q is not supported: want postgres://user:pass@host:5432/db, sqlite:<path>, file:<path> or a path ending in .db", envconfig.RedactURL(raw))
}

// sqliteDSN turns "<path>[?params]" into the driver's DSN with the
// defaults added for every parameter the URL does not set.
func sqliteDSN(pathAndQuery string) (string, error) {
	path, rawQuery, _ := strings.Cut(pathAndQuery, "?")
	if path == "" {
		return "", errors.New("DATABASE_URL names no SQLite file: want sqlite:<path>, e.g. sqlite:./reefer.db")
	}
	if path == ":memory:" || strings.Contains(rawQuery, "mode=memory") {
		// Each pooled connection would see its own empty database, and the
		// point of the store is that allocations survive a restart.
		return "", errors.New("DATABASE_URL: in-memory SQLite is not supported: give a file path, e.g. sqlite:./reefer.db")
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", fmt.Errorf("DATABASE_URL: SQLite parameters %q: %w", rawQuery, err)
	}
	for _, d := range sqliteDefaults {
		if d.key == "_pragma" {
			if hasPragma(q["_pragma"], d.pragma) {
				continue
			}
		} else if q.Has(d.key) {
			continue
		}
		q.Add(d.key, d.value)
	}
	return path + "?" + q.Encode(), nil
}

func hasPragma(pragmas []string, name string) bool {
	for _, p := range pragmas {
		if strings.HasPrefix(strings.ToLower(strings.TrimSpace(p)), name) {
			return true
		}
	}
	return false
}

// Ping checks that the database answers. Use it for readiness probes, with
// a short deadline on ctx.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", classify(err))
	}
	return nil
}

// Close closes the connection pool. Call it last, after every user of the
// Store has stopped.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// queryLogger adapts gorm's logger to slog. Failed statements are logged
// at debug only: the error is returned to the caller, which logs it once
// with the order it belongs to. Slow statements are logged at warn.
// Parameters are never logged, since they carry customer data.
type queryLogger struct {
	log *slog.Logger
	// redact hides the connection string and its password: gorm logs the
	// driver's error when it cannot open the database.
	redact func(string) string
}

func (l queryLogger) LogMode(gormlogger.LogLevel) gormlogger.Interface { return l }

func (l queryLogger) Info(ctx context.Context, msg string, args ...any) {
	l.log.InfoContext(ctx, l.redact(fmt.Sprintf(msg, args...)))
}

func (l queryLogger) Warn(ctx context.Context, msg string, args ...any) {
	l.log.WarnContext(ctx, l.redact(fmt.Sprintf(msg, args...)))
}

func (l queryLogger) Error(ctx context.Context, msg string, args ...any) {
	l.log.ErrorContext(ctx, l.redact(fmt.Sprintf(msg, args...)))
}

func (l queryLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	elapsed := time.Since(begin)
	level := slog.LevelDebug
	if elapsed > slowQuery {
		level = slog.LevelWarn
	}
	if !l.log.Enabled(ctx, level) {
		return
	}
	sql, rows := fc()
	attrs := []slog.Attr{
		slog.Duration("duration", elapsed),
		slog.String("sql", sql),
		slog.Int64("rows", rows),
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", l.redact(err.Error())))
	}
	l.log.LogAttrs(ctx, level, "sql statement", attrs...)
}

// ParamsFilter drops the parameters from logged SQL.
func (queryLogger) ParamsFilter(_ context.Context, sql string, _ ...any) (string, []any) {
	return sql, nil
}
