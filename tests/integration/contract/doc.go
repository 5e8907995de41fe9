// Package contract checks Kafka records against the suite's published
// contract, docs/asyncapi.yaml: each record's value against the payload
// schema of its message and its headers against the message's headers
// schema, with a JSON Schema validator (santhosh-tekuri/jsonschema).
//
// The integration harness runs it on every record a scenario's services
// wrote to the four topics, so a service that emits an event or a header
// the document does not describe fails the suite, and a document edited
// away from what the services do fails it too. The package's own tests
// validate the document itself against the AsyncAPI 3.0.0 JSON schema,
// vendored in testdata (asyncapi/spec-json-schemas, Apache-2.0; no network
// is needed).
package contract
