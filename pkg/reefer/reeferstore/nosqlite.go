//go:build nosqlite

package reeferstore

import (
	"errors"

	"gorm.io/gorm"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
)

// Built with the nosqlite tag (the production binaries, see sqlite.go):
// no SQLite driver is linked, and a sqlite: DATABASE_URL is refused at
// start.

func sqliteDialector(string) (gorm.Dialector, error) {
	return nil, errors.New("this binary was built without SQLite (tag nosqlite): use a postgres:// DATABASE_URL, or the local demo (make demo)")
}

func sqliteCode(error) (int, bool) { return 0, false }

// classifySQLite is never called: no error carries an SQLite code.
func classifySQLite(_ int, err error) error { return failure.FromTransport(err) }
