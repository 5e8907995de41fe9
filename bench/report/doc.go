// Package report holds the results of a benchmark run and writes them: a
// table for the terminal, JSON and Markdown files, and a PNG chart.
//
// A run produces [Row]s, one per measured figure. A row states what was
// measured and with which parameters, its value, and optionally a ratio to
// other rows (the claims of the pattern are ratios: on a shared machine
// absolute rates are noisy, ratios measured side by side in one run much
// less so) and the goals it is held to. [Finish] computes the ratios and
// checks the goals once every case has run, so a row may refer to a row of
// a later case.
package report
