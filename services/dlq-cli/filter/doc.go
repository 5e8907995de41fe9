// Package filter selects dead letters the way a person asks for them: by
// order, by reason, by error class, by a piece of text, by time window, by
// partition and offset, by whether someone already dealt with them, and at
// most so many.
//
// Every command that reads the dead-letter topic takes the same filters, so
// what `dlq list` shows is exactly what `dlq redrive` with the same flags
// moves: look first, then act.
package filter
