// Package deadletter turns records of the dead-letter topic into Letters:
// the record itself (key and value byte for byte, every header) plus what
// its headers and payload say about it: the order it concerns, why and when
// it was dead-lettered, how many attempts failed, how often it has already
// been redriven.
//
// Dead letters are the records that went wrong, so a reader of them must
// never fail on one. A record whose retry headers cannot be read is still a
// Letter: Malformed says what is wrong, the raw headers are kept, and the
// command that reads it goes on to the next record.
package deadletter
