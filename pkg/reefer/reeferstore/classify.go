package reeferstore

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
)

// classify gives a database error its failure class, so the services can
// tell "try again later" from "this will never work".
//
// Transient: the database is unreachable, restarting, overloaded, locked
// or timed out, or a transaction lost a race it can win next time.
// Permanent: the data breaks a constraint or has the wrong type or range.
// Config: the credentials are refused (SQLSTATE class 28) or the schema
// does not match the code (class 42: a missing table or column, a missing
// privilege); every order fails alike until an operator acts, so they are
// retried and alerted on, never dead-lettered at the first attempt.
//
// An error we do not recognise goes through failure.FromTransport: in
// practice it is almost always the connection (refused, reset, EOF, pool
// closed during a failover), which is transient, and the failure package
// treats anything unknown as transient too (a few retries cost less than
// dead-lettering healthy orders during an outage). Errors that already
// carry a class, allocation.ErrNoCapacity (a business answer) and
// context.Canceled (shutdown, not a failure) pass through unchanged.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var fe *failure.Error
	if errors.As(err, &fe) || errors.Is(err, allocation.ErrNoCapacity) || errors.Is(err, context.Canceled) {
		return err
	}

	if errors.Is(err, gorm.ErrDuplicatedKey) ||
		errors.Is(err, gorm.ErrForeignKeyViolated) ||
		errors.Is(err, gorm.ErrCheckConstraintViolated) {
		return failure.NewPermanent("database-constraint", err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return classifySQLState(pgErr.Code, err)
	}
	if code, ok := sqliteCode(err); ok {
		return classifySQLite(code, err)
	}
	return failure.FromTransport(err)
}

// classifySQLState maps a Postgres SQLSTATE (a 5-character code whose
// first two characters name its class) to a failure class. Reference:
// https://www.postgresql.org/docs/current/errcodes-appendix.html
func classifySQLState(code string, err error) error {
	switch code {
	case "57P01", "57P02", "57P03": // admin/crash shutdown, cannot connect now
		return failure.NewTransient("database-unavailable", err)
	case "57014": // query canceled (statement_timeout)
		return failure.NewTransient("database-timeout", err)
	case "55P03", "55006": // lock not available, object in use
		return failure.NewTransient("database-busy", err)
	}
	switch {
	case strings.HasPrefix(code, "08"): // connection exception
		return failure.NewTransient("database-unavailable", err)
	case strings.HasPrefix(code, "40"): // serialization failure, deadlock
		return failure.NewTransient("database-conflict", err)
	case strings.HasPrefix(code, "53"): // insufficient resources (too many connections, disk full)
		return failure.NewTransient("database-busy", err)
	case strings.HasPrefix(code, "23"): // integrity constraint violation
		return failure.NewPermanent("database-constraint", err)
	case strings.HasPrefix(code, "22"): // data exception (value out of range, bad encoding)
		return failure.NewPermanent("database-data", err)
	// Not the order's fault: the deployment's. A rotated password or a
	// schema the code does not expect fails every order alike until an
	// operator fixes it, so config (retried, alertable), not permanent.
	case strings.HasPrefix(code, "28"): // invalid authorization specification, bad password
		return failure.NewConfig("database-auth", err)
	case strings.HasPrefix(code, "42"): // syntax error or access rule violation: schema mismatch, permission
		return failure.NewConfig("database-schema", err)
	}
	return failure.NewTransient("database-error", err)
}
