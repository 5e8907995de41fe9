// Package healthgate decides whether a backend is healthy enough to send
// work to, by probing a URL.
//
// Redriving dead letters into a backend that is still down only makes new
// dead letters. The gate opens after several consecutive 2xx answers (one
// lucky answer from a flapping service is not health) and closes after a
// number of consecutive failures (default one: stopping early is cheap, a
// stopped redrive resumes where it stopped). `dlq redrive --when-healthy`
// waits for the gate before it starts and stops when it closes; `dlq watch`
// pauses and resumes with it.
package healthgate
