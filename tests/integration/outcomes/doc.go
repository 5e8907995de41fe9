// Package outcomes is the checker every scenario ends with: it reads the
// four topics of the contract to their end, the reefer database's
// allocations and the inventory's allocated containers, joins them by order
// id and says, per order, where it ended: allocated, rejected,
// dead-lettered (and why) or pending (lost, or still in flight).
//
// Delivery is at least once, so events are counted once per event id
// (ids are derived from the order and the event type) and the duplicates
// are reported, not treated as errors. What must never happen is reported
// by Problems: an order allocated to two reefers, a reefer allocated to two
// orders, success events, database and inventory that disagree, and an
// order in two terminal states (a dead letter nobody redrove next to an
// allocation or a rejection).
//
// The package reads the broker by partition and offset and never joins a
// consumer group, so checking does not disturb the services. Lag and
// GroupState tell a test when the services have finished.
package outcomes
