package reeferstore

import "gorm.io/gorm"

// scan is q.Scan(dest).Error without its cost for a logger that does not
// log: gorm's Scan records every statement through logger.Recorder, which
// renders it with its parameters inlined (ExplainSQL) whatever the log
// level, about 12% of the CPU of the allocation path in bench case 2.
// scan reads the rows the same way (the first row, or every row into a
// slice) and leaves logging to the store's queryLogger, which renders a
// statement only when it logs it. BenchmarkScan measures the two side by
// side.
func scan(q *gorm.DB, dest any) error {
	rows, err := q.Rows()
	if err != nil {
		return err
	}
	defer func() { _ = rows.Close() }()
	if rows.Next() {
		if err := q.ScanRows(rows, dest); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}
