// Package kafkalog treats a Kafka topic as what it is underneath: a
// numbered log per partition. It reads a partition from one offset to
// another, appends records to a chosen partition and learns the offsets the
// broker gave them, and commits or reads a consumer group's offsets without
// joining the group.
//
// The dead-letter CLI needs exactly this and nothing more. Listing dead
// letters must not change anything, so it must not join a consumer group
// (joining moves the group's offsets and steals partitions from whoever is
// in it). Redriving must know where each record landed, so the resolution
// log can say "redriven to order-retries 3:120", which kafka.Writer does not
// report. Everything goes through one kafka.Client on the Transport that
// kafkaclient builds, so TLS and SASL work the same as in the services.
package kafkalog
