// Package timeline draws the demo's story as a picture: where the orders
// were, second by second, with the phases of the scenario shaded behind.
//
// The top panel stacks every order in its stage (allocated, rejected,
// waiting for a first attempt, in retry, dead-lettered), so its height is
// the number of orders sent and each band shows where they are. The bottom
// panel zooms in on the orders still moving: the retry topic by attempt and
// the pending dead letters, which are too few to see on the top panel's
// scale. Both panels share the time axis. The output is a PNG
// (gonum.org/v1/plot, pure Go).
package timeline
