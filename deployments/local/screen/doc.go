// Package screen prints the demo's narration and its live status line.
//
// On a terminal the status line is redrawn in place (carriage return, erase
// line) a few times a second, and narration is printed above it: the line is
// erased, the text written, the line drawn again. Anywhere else (a pipe, a
// file, CI logs) there is no in-place redrawing: the status is written as a
// plain line now and then, only when it changed, so a log stays readable.
package screen
