package reeferstore

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// scanStore is a SQLite store with a fleet of n reefers.
func scanStore(tb testing.TB, n int) *Store {
	tb.Helper()
	s, err := Open(tb.Context(), "sqlite:"+filepath.Join(tb.TempDir(), "scan.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	if err := s.SeedFleet(tb.Context(), n); err != nil {
		tb.Fatal(err)
	}
	return s
}

// scan reads what gorm's Scan reads: every row into a slice, the first
// into a single value, nothing (and no error) from no rows, and the
// statement's error.
func TestScanReadsWhatGormScanReads(t *testing.T) {
	s := scanStore(t, 5)
	db := s.db.WithContext(t.Context())
	const all = `SELECT container_id FROM reefers ORDER BY container_id`

	var want, got []string
	if err := db.Raw(all).Scan(&want).Error; err != nil {
		t.Fatal(err)
	}
	if err := scan(db.Raw(all), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || !cmp.Equal(want, got) {
		t.Errorf("slice: scan = %v, gorm Scan = %v", got, want)
	}

	var n int64
	if err := scan(db.Raw(`SELECT COUNT(*) FROM reefers WHERE capacity >= ?`, 20), &n); err != nil || n != 4 {
		t.Errorf("single value: %d, %v; want 4", n, err)
	}

	none := []string{"left alone"}
	if err := scan(db.Raw(`SELECT container_id FROM reefers WHERE 1 = 0`), &none); err != nil || len(none) != 1 {
		t.Errorf("no rows: %v, %v; want the slice untouched and no error", none, err)
	}

	if err := scan(db.Raw(`SELECT nope FROM reefers`), &got); err == nil {
		t.Error("a bad statement: no error")
	}
}

// BenchmarkScan runs queries of the store's shapes through gorm's Scan
// and through scan, side by side in one run; compare their ns/op (and
// allocs/op) as ratios. "small" has three short parameters; "batch" has
// the JSON of 128 orders, as allocateManyPostgres passes:
//
//	go test -run '^$' -bench Scan -benchmem ./reeferstore
func BenchmarkScan(b *testing.B) {
	s := scanStore(b, 64)
	db := s.db.WithContext(b.Context())
	batch := []byte("[")
	for i := range 128 {
		if i > 0 {
			batch = append(batch, ',')
		}
		batch = fmt.Appendf(batch, `{"order_id":"O-%06d","quantity":%d}`, i, 10+i%90)
	}
	batch = append(batch, ']')
	for _, q := range []struct {
		name string
		sql  string
		args []any
	}{
		{"small", `SELECT container_id FROM reefers WHERE status = ? AND capacity >= ? ORDER BY capacity, container_id LIMIT ?`,
			[]any{"free", 30, 8}},
		{"batch", `SELECT container_id FROM reefers WHERE status = 'free' AND length(?) > 0 ORDER BY capacity, container_id LIMIT 8`,
			[]any{string(batch)}},
	} {
		b.Run(q.name+"/gorm-Scan", func(b *testing.B) {
			for b.Loop() {
				var ids []string
				if err := db.Raw(q.sql, q.args...).Scan(&ids).Error; err != nil || len(ids) != 8 {
					b.Fatal(ids, err)
				}
			}
		})
		b.Run(q.name+"/scan", func(b *testing.B) {
			for b.Loop() {
				var ids []string
				if err := scan(db.Raw(q.sql, q.args...), &ids); err != nil || len(ids) != 8 {
					b.Fatal(ids, err)
				}
			}
		})
	}
}
