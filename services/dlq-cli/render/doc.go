// Package render prints dead letters for people and for programs: an
// aligned table (colored on a terminal unless NO_COLOR), a JSON document,
// or JSON lines, one object per dead letter, for jq and scripts.
//
// The JSON shapes (Row, Detail, ExportRecord, Summary) are part of the
// CLI's interface: field names are stable, times are RFC 3339 in UTC, and
// the full error message is kept (the table shortens it).
package render
