// Package pipeline is what every stage of the order pipeline shares: its
// settings ([Stage], declared, defaulted and checked once) and its wiring
// ([Run], which starts the store, the inventory client, the Kafka writers
// and reader, the ops server and the consumer in that order, and stops
// them in reverse, each within SHUTDOWN_TIMEOUT). A service passes what is
// its own as a [Service]: the topic it reads, its consumer settings (the
// due-time scheduler for order-retry, per-key lanes for reefer-manager),
// how it reads a record's retry headers, and its metrics and logs. So the
// diff between the two services' Run is the lesson, and nothing else.
//
// # Stages
//
// An order passes through two services that run the same allocation step
// and hand its outcome off the same way: reefer-manager makes the first
// attempt, order-retry the later ones. Both talk to the same broker, the
// same reefer database and the same legacy inventory, write to the same
// topics and must agree on the retry policy: a record that reefer-manager
// hands off with attempt 1 is retried by order-retry under the same
// RETRY_MAX_ATTEMPTS and back-off. That shared part is [Stage]; each
// service embeds it in its own Config and adds only what is its own (its
// consumer group, HTTP address, concurrency bounds):
//
//	type Config struct {
//		pipeline.Stage
//		ConsumerGroup string `env:"CONSUMER_GROUP" envDefault:"reefer-manager"`
//	}
//
// Embedding keeps the fields promoted (cfg.DatabaseURL, cfg.RetryTopic),
// and envconfig.Parse reads the embedded struct's variables like the
// service's own.
//
// # Validation
//
// [Stage.Validate] reports every bad shared setting, each naming its
// variable and the accepted form; a service's Validate adds its own
// problems to those and reports them together, so an operator fixes a
// broken deployment in one round.
package pipeline
