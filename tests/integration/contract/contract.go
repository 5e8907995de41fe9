package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/segmentio/kafka-go"
	"go.yaml.in/yaml/v3"
)

// Channel ids of docs/asyncapi.yaml, one per topic of the contract.
const (
	Orders          = "orders"
	Containers      = "containers"
	OrderRetries    = "orderRetries"
	OrderDeadLetter = "orderDeadLetter"
	Resolutions     = "orderDeadLetterResolutions"
)

// originalValue is the schema of a value carried byte for byte: anything,
// JSON or not (a poison record's value is whatever arrived).
const originalValue = "#/components/schemas/OriginalValue"

// redriveCount marks a record dlq redrove to its original topic.
const redriveCount = "x-dlq-redrive-count"

// Contract is the loaded document with its message schemas compiled.
type Contract struct {
	// Doc is the document as generic JSON values.
	Doc map[string]any
	// messages maps channel id -> message name -> compiled schemas.
	messages map[string]map[string]*message
}

type message struct {
	name    string
	payload *jsonschema.Schema
	headers *jsonschema.Schema // nil: the message declares none
	opaque  bool               // the payload is the original value, byte for byte
}

// Load reads the AsyncAPI document at path and compiles the payload and
// headers schema of every message of every channel.
func Load(path string) (*Contract, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read contract: %w", err)
	}
	doc, err := toJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("contract %s: %w", path, err)
	}
	const url = "file:///asyncapi.json"
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7) // AsyncAPI schemas are a superset of draft-07
	c.AssertFormat()
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("contract %s: %w", path, err)
	}
	out := &Contract{Doc: doc.(map[string]any), messages: map[string]map[string]*message{}}
	channels, _ := out.Doc["channels"].(map[string]any)
	for id, ch := range channels {
		msgs, _ := ch.(map[string]any)["messages"].(map[string]any)
		out.messages[id] = map[string]*message{}
		for name, ref := range msgs {
			target, _ := ref.(map[string]any)["$ref"].(string)
			if !strings.HasPrefix(target, "#/components/messages/") {
				return nil, fmt.Errorf("channel %s message %s: want a $ref to #/components/messages/, got %q", id, name, target)
			}
			m := &message{name: name}
			body, _ := lookup(out.Doc, target).(map[string]any)
			if body == nil {
				return nil, fmt.Errorf("channel %s message %s: %s does not resolve", id, name, target)
			}
			if p, ok := body["payload"].(map[string]any); ok && p["$ref"] == originalValue {
				m.opaque = true
			}
			if m.payload, err = c.Compile(url + target + "/payload"); err != nil {
				return nil, fmt.Errorf("channel %s message %s payload: %w", id, name, err)
			}
			if _, ok := body["headers"]; ok {
				if m.headers, err = c.Compile(url + target + "/headers"); err != nil {
					return nil, fmt.Errorf("channel %s message %s headers: %w", id, name, err)
				}
			}
			out.messages[id][name] = m
		}
	}
	return out, nil
}

// Check validates one record read from the topic of channel: it picks the
// message (the CloudEvent type for events; the redrive header for a record
// dlq sent back to orders; the only message otherwise) and validates the
// value against its payload schema and the headers, as strings, against
// its headers schema.
func (c *Contract) Check(channel string, m kafka.Message) error {
	msgs, ok := c.messages[channel]
	if !ok {
		return fmt.Errorf("no channel %q in the contract", channel)
	}
	headers := map[string]any{}
	for _, h := range m.Headers {
		if _, dup := headers[h.Key]; dup {
			return fmt.Errorf("header %s appears twice: the contract replaces headers, never appends", h.Key)
		}
		headers[h.Key] = string(h.Value)
	}
	var value any
	valueErr := errors.New("null value (tombstone)")
	if m.Value != nil {
		value, valueErr = jsonschema.UnmarshalJSON(bytes.NewReader(m.Value))
	}

	msg, err := pick(msgs, value, headers)
	if err != nil {
		return err
	}
	switch {
	case msg.opaque:
		// Byte for byte whatever arrived: valid if the schema says so of
		// the decoded value, and any undecodable value is allowed.
		if valueErr == nil {
			if err := msg.payload.Validate(value); err != nil {
				return fmt.Errorf("%s payload: %w", msg.name, err)
			}
		}
	case m.Value == nil:
		if err := msg.payload.Validate(nil); err != nil {
			return fmt.Errorf("%s payload: %w", msg.name, err)
		}
	case valueErr != nil:
		return fmt.Errorf("%s payload is not JSON: %w", msg.name, valueErr)
	default:
		if err := msg.payload.Validate(value); err != nil {
			return fmt.Errorf("%s payload: %w", msg.name, err)
		}
	}
	if msg.headers != nil {
		if err := msg.headers.Validate(headers); err != nil {
			return fmt.Errorf("%s headers: %w", msg.name, err)
		}
	}
	return nil
}

func pick(msgs map[string]*message, value any, headers map[string]any) (*message, error) {
	if len(msgs) == 1 {
		for _, m := range msgs {
			return m, nil
		}
	}
	if _, ok := headers[redriveCount]; ok {
		for _, m := range msgs {
			if m.opaque {
				return m, nil
			}
		}
	}
	if value == nil {
		if m, ok := msgs["Reopened"]; ok {
			return m, nil
		}
	}
	if obj, ok := value.(map[string]any); ok {
		if t, ok := obj["type"].(string); ok {
			if m, ok := msgs[t]; ok {
				return m, nil
			}
			return nil, fmt.Errorf("event type %q is not a message of this channel", t)
		}
		if _, ok := obj["action"]; ok {
			if m, ok := msgs["Resolution"]; ok {
				return m, nil
			}
		}
	}
	return nil, errors.New("the record matches no message of this channel (not an event of the contract)")
}

// toJSON decodes YAML into the values encoding/json produces, which is
// what the validator expects (json.Number for numbers).
func toJSON(raw []byte) (any, error) {
	var v any
	if err := yaml.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("convert to JSON: %w", err)
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(j))
}

// lookup resolves a local JSON pointer ("#/a/b") in doc.
func lookup(doc any, ptr string) any {
	node := doc
	for _, part := range strings.Split(strings.TrimPrefix(ptr, "#/"), "/") {
		obj, ok := node.(map[string]any)
		if !ok {
			return nil
		}
		node = obj[strings.NewReplacer("~1", "/", "~0", "~").Replace(part)]
	}
	return node
}

// Topic is a channel's Kafka topic as the document's kafka bindings
// describe it.
type Topic struct {
	Address    string
	Partitions int
	// Config is the binding's topicConfiguration as Kafka topic configs
	// (cleanup.policy joined with commas, numbers in decimal).
	Config map[string]string
}

// Topics returns the topic of every channel, keyed by channel id. A
// channel without a kafka binding with partitions is an error: the
// deployments read the counts from here.
func (c *Contract) Topics() (map[string]Topic, error) {
	out := map[string]Topic{}
	channels, _ := c.Doc["channels"].(map[string]any)
	for id, ch := range channels {
		obj, _ := ch.(map[string]any)
		address, _ := obj["address"].(string)
		kb, _ := lookup(obj, "#/bindings/kafka").(map[string]any)
		n, _ := kb["partitions"].(json.Number)
		parts, err := n.Int64()
		if err != nil {
			return nil, fmt.Errorf("channel %s: no kafka binding with partitions", id)
		}
		tp := Topic{Address: address, Partitions: int(parts), Config: map[string]string{}}
		cfg, _ := kb["topicConfiguration"].(map[string]any)
		for k, v := range cfg {
			switch v := v.(type) {
			case []any:
				var parts []string
				for _, p := range v {
					parts = append(parts, fmt.Sprint(p))
				}
				tp.Config[k] = strings.Join(parts, ",")
			default:
				tp.Config[k] = fmt.Sprint(v)
			}
		}
		out[id] = tp
	}
	return out, nil
}
