// Package tracker follows every order of the demo through the topics, the way
// an outside observer would: it reads orders, containers, order-retries and
// order-dead-letter, and from what it sees computes where each order is.
//
// It never asks a service how it is doing. The services' own counters could
// be wrong in exactly the ways the demo must catch (an order lost between
// two hops, or allocated twice); the records on the topics are the truth the
// rest of the world acts on.
//
// # Where an order is
//
// The four topics are read independently, so the records of one order do
// not arrive in the order they were written: the dead letter of an order can
// be read before the retry record that preceded it. Every record therefore
// says how far the order had come when it was written, as a hop:
//
//	(redrive count, failed attempts, kind)   kind: created < retry < dead letter
//
// and the order is where its furthest hop says. A redrive resets the attempts
// to 0 but raises the redrive count, so it moves the order forward again.
// ContainerAllocated and OrderRejected end the order, whatever is read after.
//
// # Reading from now on
//
// Start reads the end of every partition first and consumes from there, with
// plain partition readers (no consumer group, nothing committed): the tracker
// sees exactly the records written after it started, on a fresh embedded
// broker or on a shared one with history.
package tracker
