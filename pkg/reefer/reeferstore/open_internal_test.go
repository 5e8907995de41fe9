package reeferstore

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The SQLite defaults are what make the demo store safe under concurrency;
// a parameter in DATABASE_URL must replace the default, not run after it.
func TestSQLiteDSNAddsDefaultsUnlessOverridden(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		wantPath    string
		wantPragmas []string
		wantTxLock  string
	}{
		{
			name:        "defaults",
			in:          "/data/reefers.db",
			wantPath:    "/data/reefers.db",
			wantPragmas: []string{"journal_mode(WAL)", "busy_timeout(5000)", "foreign_keys(1)", "synchronous(NORMAL)"},
			wantTxLock:  "immediate",
		},
		{
			name:        "overrides",
			in:          "rel.db?_pragma=busy_timeout(100)&_txlock=exclusive&_pragma=journal_mode(DELETE)",
			wantPath:    "rel.db",
			wantPragmas: []string{"busy_timeout(100)", "journal_mode(DELETE)", "foreign_keys(1)", "synchronous(NORMAL)"},
			wantTxLock:  "exclusive",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dsn, err := sqliteDSN(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			path, rawQuery, _ := strings.Cut(dsn, "?")
			q, err := url.ParseQuery(rawQuery)
			if err != nil {
				t.Fatal(err)
			}
			got := []any{path, q["_pragma"], q.Get("_txlock")}
			want := []any{tt.wantPath, tt.wantPragmas, tt.wantTxLock}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("sqliteDSN(%q) = %q (-want +got):\n%s", tt.in, dsn, diff)
			}
		})
	}
}
