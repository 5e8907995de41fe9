package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/retrymeta"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/resolution"
)

// headerInfo labels a contract header and says how to decode its value.
type headerInfo struct {
	label   string
	epochMS bool
}

// headerInfos covers every header of the contract.
var headerInfos = map[string]headerInfo{
	retrymeta.HeaderAttempt:           {"failed attempts", false},
	retrymeta.HeaderDueAt:             {"next attempt due", true},
	retrymeta.HeaderFirstFailureAt:    {"first failure", true},
	retrymeta.HeaderLastFailureAt:     {"last failure", true},
	retrymeta.HeaderErrorClass:        {"error class", false},
	retrymeta.HeaderErrorMessage:      {"error message", false},
	retrymeta.HeaderOriginalTopic:     {"original topic", false},
	retrymeta.HeaderOriginalPartition: {"original partition", false},
	retrymeta.HeaderOriginalOffset:    {"original offset", false},
	retrymeta.HeaderOriginalTimestamp: {"original timestamp", true},
	retrymeta.HeaderErrorStack:        {"stack trace", false},
	retrymeta.HeaderDLQReason:         {"dead-letter reason", false},
	retrymeta.HeaderDeadLetteredAt:    {"dead-lettered at", true},
	retrymeta.HeaderRedriveCount:      {"times redriven", false},
	retrymeta.HeaderEditedFrom:        {"edited from", false},
	retrymeta.HeaderTraceParent:       {"trace context", false},
}

// HeaderDetail is one header of `dlq show`, labelled and decoded.
type HeaderDetail struct {
	Key   string `json:"key"`
	Label string `json:"label"`
	// Value is the raw value as text (base64 in ValueBase64 when it is not
	// UTF-8).
	Value       *string `json:"value,omitempty"`
	ValueBase64 *string `json:"valueBase64,omitempty"`
	// Decoded is the value made readable: an epoch-ms time in RFC 3339.
	Decoded string `json:"decoded,omitempty"`
}

// Detail is the JSON shape of one dead letter in `dlq show`.
type Detail struct {
	Topic       string            `json:"topic"`
	Partition   int               `json:"partition"`
	Offset      int64             `json:"offset"`
	Timestamp   time.Time         `json:"timestamp"`
	OrderID     string            `json:"orderId"`
	EventType   string            `json:"eventType,omitempty"`
	Status      string            `json:"status"`
	Key         *string           `json:"key"`
	KeyBase64   *string           `json:"keyBase64,omitempty"`
	Headers     []HeaderDetail    `json:"headers"`
	Malformed   string            `json:"malformed,omitempty"`
	ErrorStack  string            `json:"errorStack,omitempty"`
	Value       *json.RawMessage  `json:"value,omitempty"`
	ValueText   *string           `json:"valueText,omitempty"`
	ValueBase64 *string           `json:"valueBase64,omitempty"`
	Resolution  *resolution.Entry `json:"resolution,omitempty"`
}

// NewDetail returns the show shape of it.
func NewDetail(it Item) Detail {
	l := it.Letter
	d := Detail{
		Topic:      l.Coord.Topic,
		Partition:  l.Coord.Partition,
		Offset:     l.Coord.Offset,
		Timestamp:  l.Time.UTC(),
		OrderID:    l.OrderID,
		EventType:  l.EventType,
		Status:     it.Status(),
		Malformed:  l.Malformed,
		Resolution: it.Resolution,
		Headers:    make([]HeaderDetail, len(l.Headers)),
	}
	d.Key, d.KeyBase64 = textOrBase64(l.Key)
	for i, h := range l.Headers {
		hd := HeaderDetail{Key: h.Key, Label: "(not in the contract)"}
		if info, ok := headerInfos[h.Key]; ok {
			hd.Label = info.label
			if info.epochMS {
				hd.Decoded = decodeEpochMS(string(h.Value))
			}
		}
		hd.Value, hd.ValueBase64 = textOrBase64(h.Value)
		if hd.Value == nil && hd.ValueBase64 == nil {
			empty := ""
			hd.Value = &empty
		}
		if h.Key == retrymeta.HeaderErrorStack {
			d.ErrorStack = string(h.Value)
		}
		d.Headers[i] = hd
	}
	switch {
	case l.Value == nil:
	case json.Valid(l.Value):
		v := json.RawMessage(l.Value)
		d.Value = &v
	default:
		d.ValueText, d.ValueBase64 = textOrBase64(l.Value)
	}
	return d
}

// decodeEpochMS renders an epoch-ms header as RFC 3339, or says it is not
// one.
func decodeEpochMS(v string) string {
	ms, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return "malformed: not epoch milliseconds"
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// Show prints every detail of each dead letter.
func (p Printer) Show(items []Item) error {
	if done, err := writeShapes(p, items, NewDetail); done {
		return err
	}
	var b strings.Builder
	for i, it := range items {
		if i > 0 {
			b.WriteString("\n")
		}
		p.showText(&b, NewDetail(it))
	}
	_, err := fmt.Fprint(p.W, b.String())
	return err
}

func (p Printer) showText(b *strings.Builder, d Detail) {
	title := func(s string) { b.WriteString(paint(s, bold, p.Color) + "\n") }
	field := func(label, value string) { fmt.Fprintf(b, "  %-20s %s\n", label, value) }

	status := paint(d.Status, yellow, p.Color)
	if d.Status == "resolved" {
		status = paint(d.Status, green, p.Color)
	}
	title(fmt.Sprintf("Dead letter %s %d:%d", d.Topic, d.Partition, d.Offset))
	field("status", status)
	field("order", orDash(d.OrderID))
	field("event type", orDash(d.EventType))
	field("key", displayBytes(d.Key, d.KeyBase64))
	field("record timestamp", d.Timestamp.Format("2006-01-02T15:04:05.000Z07:00"))
	if d.Malformed != "" {
		field("malformed", paint(d.Malformed, red, p.Color))
	}
	if r := d.Resolution; r != nil {
		field("resolution", describeResolution(*r))
	}

	b.WriteString("\n")
	title("Headers")
	t := table{header: []string{"  HEADER", "MEANING", "VALUE"}}
	for _, h := range d.Headers {
		v := displayBytes(h.Value, h.ValueBase64)
		if h.Key == retrymeta.HeaderErrorStack {
			v = fmt.Sprintf("(%d bytes, below)", len(d.ErrorStack))
		} else if h.Decoded != "" {
			v += " (" + h.Decoded + ")"
		}
		t.add(cell{"  " + h.Key, plain}, cell{h.Label, faint}, cell{v, plain})
	}
	var tb strings.Builder
	_ = t.write(&tb, p.Color)
	b.WriteString(tb.String())

	b.WriteString("\n")
	title("Payload")
	switch {
	case d.Value != nil:
		b.WriteString(indent(prettyJSON(*d.Value), "  "))
	case d.ValueText != nil:
		b.WriteString(paint("  (not JSON)", faint, p.Color) + "\n")
		b.WriteString(indent(*d.ValueText, "  "))
	case d.ValueBase64 != nil:
		b.WriteString(paint("  (binary, base64)", faint, p.Color) + "\n")
		b.WriteString(indent(*d.ValueBase64, "  "))
	default:
		b.WriteString("  (null)\n")
	}

	if d.ErrorStack != "" {
		b.WriteString("\n")
		title("Stack trace")
		b.WriteString(indent(d.ErrorStack, "  "))
	}
}

// describeResolution says in one line how a dead letter was dealt with.
func describeResolution(e resolution.Entry) string {
	if e.Action == resolution.BelowGroupOffset {
		return "resolved: below the offset of the redrive group (no entry in the resolution log)"
	}
	s := string(e.Action)
	if e.Target != nil {
		s += fmt.Sprintf(" to %s %d:%d", e.Target.Topic, e.Target.Partition, e.Target.Offset)
	}
	if !e.At.IsZero() {
		s += " at " + e.At.UTC().Format(timeLayout)
	}
	if e.By != "" {
		s += " by " + e.By
	}
	if e.Note != "" {
		s += fmt.Sprintf(": %q", e.Note)
	}
	return s
}

func displayBytes(text, b64 *string) string {
	switch {
	case text != nil:
		return *text
	case b64 != nil:
		return "base64:" + *b64
	}
	return "(null)"
}

func prettyJSON(raw []byte) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}

// indent prefixes every line of s and ends it with a newline.
func indent(s, prefix string) string {
	s = strings.TrimRight(s, "\n")
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix) + "\n"
}
