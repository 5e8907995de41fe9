// Package dlq is the dead-letter CLI: the cobra commands list, show, stats,
// export, redrive, edit, watch and resolve, wired to the packages that do
// the work (kafkalog reads and writes by offset, deadletter decodes,
// filter selects, render prints, resolution records what was dealt with,
// redrive republishes, healthgate decides when).
//
// Run is the whole program: main passes the real streams and environment,
// the local demo and the tests pass their own (Env), so all three run the
// same code. The exit code says how it went: 0 done, 1 error, 2 usage,
// 3 nothing matched the filters.
//
// The commands that only read (list, show, stats, export) never join a
// consumer group and never write. The commands that change the queue
// (redrive, edit, resolve, watch) ask for confirmation on a terminal or
// --yes, offer --dry-run, and record every letter they handle in the
// resolution log before moving the group's watermark (see package
// resolution), so an interrupted run resumes without redriving a letter
// twice.
package dlq
