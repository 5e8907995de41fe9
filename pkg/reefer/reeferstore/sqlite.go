//go:build !nosqlite

package reeferstore

import (
	"errors"

	gosqlite "github.com/glebarez/go-sqlite"
	"github.com/glebarez/sqlite"
	"gorm.io/gorm"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
)

// The SQLite driver (pure Go, no cgo) serves the local demo and the tests.
// The production binaries leave it out: `make build` builds them with the
// nosqlite tag (see nosqlite.go), which takes a few MB off each.

// sqliteDialector opens the SQLite database dsn names.
func sqliteDialector(dsn string) (gorm.Dialector, error) { return sqlite.Open(dsn), nil }

// sqliteCode is the result code of an SQLite error; ok is false for any
// other error.
func sqliteCode(err error) (code int, ok bool) {
	var liteErr *gosqlite.Error
	if errors.As(err, &liteErr) {
		return liteErr.Code(), true
	}
	return 0, false
}

// classifySQLite maps an SQLite result code to a failure class. Extended
// codes carry the primary code in their low byte.
// Reference: https://www.sqlite.org/rescode.html
func classifySQLite(code int, err error) error {
	switch code & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return failure.NewTransient("database-busy", err)
	case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN,
		sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_INTERRUPT:
		return failure.NewTransient("database-unavailable", err)
	case sqlite3.SQLITE_CONSTRAINT:
		return failure.NewPermanent("database-constraint", err)
	case sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_RANGE:
		return failure.NewPermanent("database-data", err)
	case sqlite3.SQLITE_ERROR, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CORRUPT,
		sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_AUTH, sqlite3.SQLITE_PERM:
		// A missing table, a read-only or broken file: the deployment's
		// fault, the same for every order (see classifySQLState).
		return failure.NewConfig("database-schema", err)
	}
	return failure.NewTransient("database-error", err)
}
