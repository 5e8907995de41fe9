package contract

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/segmentio/kafka-go"
)

const docPath = "../../../docs/asyncapi.yaml"

// asyncAPISchema is the official AsyncAPI 3.0.0 JSON schema, the variant
// without $id (its definitions inlined), from asyncapi/spec-json-schemas
// at commit 7dd3990d9fff9df76e81c8d2ab544e0000f29aff.
const asyncAPISchema = "testdata/asyncapi-3.0.0-without-id.json"

func validateDocument(t *testing.T, yamlDoc []byte) error {
	t.Helper()
	raw, err := os.ReadFile(asyncAPISchema)
	if err != nil {
		t.Fatal(err)
	}
	schemaDoc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("file:///asyncapi-3.0.0.json", schemaDoc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("file:///asyncapi-3.0.0.json")
	if err != nil {
		t.Fatalf("compile the AsyncAPI 3.0.0 schema: %v", err)
	}
	doc, err := toJSON(yamlDoc)
	if err != nil {
		return err
	}
	return sch.Validate(doc)
}

// TestAsyncAPIDocumentIsValid: docs/asyncapi.yaml is an AsyncAPI 3.0.0
// document, by the specification's own JSON schema.
func TestAsyncAPIDocumentIsValid(t *testing.T) {
	raw, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := validateDocument(t, raw); err != nil {
		t.Fatalf("docs/asyncapi.yaml is not a valid AsyncAPI 3.0.0 document:\n%v", err)
	}
	// The schema check can fail: a misspelt operation action is refused.
	bad := bytes.Replace(raw, []byte("action: send"), []byte("action: publish"), 1)
	if err := validateDocument(t, bad); err == nil {
		t.Fatal("a document with action: publish (AsyncAPI 2's verb) passed the 3.0.0 schema")
	}
}

// TestContractNamesEveryTopic: the document has a channel, with partitions,
// for every topic of the contract, the compacted resolution log included.
func TestContractNamesEveryTopic(t *testing.T) {
	c, err := Load(docPath)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{Orders: "orders", Containers: "containers", OrderRetries: "order-retries",
		OrderDeadLetter: "order-dead-letter", Resolutions: "order-dead-letter.resolutions"}
	topics, err := c.Topics()
	if err != nil {
		t.Fatal(err)
	}
	for id, address := range want {
		tp, ok := topics[id]
		if !ok || tp.Address != address || tp.Partitions < 1 {
			t.Errorf("channel %s: %+v, want address %s with partitions", id, tp, address)
		}
	}
	if got := topics[Resolutions].Config["cleanup.policy"]; got != "compact" {
		t.Errorf("resolutions cleanup.policy = %q, want compact", got)
	}
}

func header(kv ...string) []kafka.Header {
	var hs []kafka.Header
	for i := 0; i < len(kv); i += 2 {
		hs = append(hs, kafka.Header{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return hs
}

// TestCheckAcceptsTheContractAndRefusesWhatItIsNot: each rule of the
// document, broken once.
func TestCheckAcceptsTheContractAndRefusesWhatItIsNot(t *testing.T) {
	c, err := Load(docPath)
	if err != nil {
		t.Fatal(err)
	}
	event := func(typ, data string) []byte {
		return []byte(`{"specversion":"1.0","id":"e-1","source":"reefer-manager","type":"` + typ +
			`","time":"2026-01-02T03:04:05Z","subject":"O-1","datacontenttype":"application/json","data":` + data + `}`)
	}
	created := event("OrderCreated", `{"orderID":"O-1","productID":"P","customerID":"C","quantity":1,"pickupCity":"A","destinationCity":"B","expectedDeliveryDate":"2026-02-01"}`)
	retry := header("x-retry-attempt", "1", "x-retry-due-at", "1700000000000", "x-original-topic", "orders",
		"x-original-partition", "2", "x-original-offset", "41", "x-error-class", "transient", "x-error-message", "503")
	dead := append(append([]kafka.Header{}, retry...), header("x-error-stack", "goroutine 1", "x-dlq-reason", "max-attempts", "x-dlq-dead-lettered-at", "1700000000001")...)
	tests := []struct {
		name    string
		channel string
		msg     kafka.Message
		wantErr string // "" when valid
	}{
		{"order created", Orders, kafka.Message{Value: created}, ""},
		{"container allocated", Orders, kafka.Message{Value: event("ContainerAllocated", `{"orderID":"O-1","containerID":"C-1"}`)}, ""},
		{"allocated without container", Orders, kafka.Message{Value: event("ContainerAllocated", `{"orderID":"O-1"}`)}, "containerID"},
		{"unknown event type", Orders, kafka.Message{Value: event("OrderShipped", `{}`)}, "not a message of this channel"},
		{"bad time", Orders, kafka.Message{Value: bytes.Replace(created, []byte("2026-01-02T03:04:05Z"), []byte("yesterday"), 1)}, "date-time"},
		{"assigned on containers", Containers, kafka.Message{Value: event("ContainerAssignedToOrder", `{"orderID":"O-1","containerID":"C-1"}`)}, ""},
		{"retry record", OrderRetries, kafka.Message{Value: created, Headers: retry}, ""},
		{"retry without due-at", OrderRetries, kafka.Message{Value: created, Headers: retry[:1]}, "x-retry-due-at"},
		{"retry attempt not a number", OrderRetries, kafka.Message{Value: created, Headers: header("x-retry-attempt", "one", "x-retry-due-at", "1", "x-original-topic", "orders", "x-original-partition", "0", "x-original-offset", "0")}, "x-retry-attempt"},
		{"duplicate header", OrderRetries, kafka.Message{Value: created, Headers: append(retry, retry[0])}, "twice"},
		{"dead letter", OrderDeadLetter, kafka.Message{Value: created, Headers: dead}, ""},
		{"poison dead letter", OrderDeadLetter, kafka.Message{Value: []byte("not json"), Headers: dead}, ""},
		{"dead letter without reason", OrderDeadLetter, kafka.Message{Value: created, Headers: retry}, "x-dlq-reason"},
		{"dead letter with unknown reason", OrderDeadLetter, kafka.Message{Value: created, Headers: append(retry, header("x-error-stack", "s", "x-dlq-reason", "bored", "x-dlq-dead-lettered-at", "1")...)}, "x-dlq-reason"},
		{"edited and redriven", OrderRetries, kafka.Message{Value: created, Headers: append(retry[:len(retry):len(retry)], header("x-dlq-redrive-count", "1", "x-dlq-edited-from", "order-dead-letter/0/42")...)}, ""},
		{"edited-from without a topic", OrderRetries, kafka.Message{Value: created, Headers: append(retry[:len(retry):len(retry)], header("x-dlq-edited-from", "0:42")...)}, "x-dlq-edited-from"},
		{"redriven to orders", Orders, kafka.Message{Value: created, Headers: header("x-original-topic", "orders", "x-original-partition", "2", "x-original-offset", "41", "x-dlq-redrive-count", "1")}, ""},
		{"resolution", Resolutions, kafka.Message{Key: []byte("0:12"), Value: []byte(`{"deadLetter":{"topic":"order-dead-letter","partition":0,"offset":12},"action":"redriven","at":"2026-01-02T03:04:05Z","by":"ops@host","target":{"topic":"order-retries","partition":1,"offset":3},"redriveCount":1}`)}, ""},
		{"resolution with unknown action", Resolutions, kafka.Message{Value: []byte(`{"deadLetter":{"topic":"d","partition":0,"offset":1},"action":"ignored","at":"2026-01-02T03:04:05Z","by":"x"}`)}, "action"},
		{"reopened (tombstone)", Resolutions, kafka.Message{Key: []byte("0:12")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Check(tt.channel, tt.msg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("want valid, got %v", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("want an error about %q, got none", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("want an error about %q, got %v", tt.wantErr, err)
			}
		})
	}
}
