package render

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/resolution"
)

// headerInfo labels a header and says how to decode its value.
type headerInfo struct {
	label string
	kind  decodeKind
}

// decodeKind says how a header's value is shown besides its raw bytes.
type decodeKind int

const (
	asIs       decodeKind = iota
	epochMS               // decimal epoch milliseconds: shown as a time
	binInt                // big-endian binary integer (Spring): shown in decimal
	binEpochMS            // big-endian binary epoch milliseconds (Spring): a time
)

// headerInfos covers every header of the contract.
var headerInfos = map[string]headerInfo{
	retrymeta.HeaderAttempt:           {"failed attempts", asIs},
	retrymeta.HeaderDueAt:             {"next attempt due", epochMS},
	retrymeta.HeaderFirstFailureAt:    {"first failure", epochMS},
	retrymeta.HeaderLastFailureAt:     {"last failure", epochMS},
	retrymeta.HeaderErrorClass:        {"error class", asIs},
	retrymeta.HeaderErrorMessage:      {"error message", asIs},
	retrymeta.HeaderOriginalTopic:     {"original topic", asIs},
	retrymeta.HeaderOriginalPartition: {"original partition", asIs},
	retrymeta.HeaderOriginalOffset:    {"original offset", asIs},
	retrymeta.HeaderOriginalTimestamp: {"original timestamp", epochMS},
	retrymeta.HeaderErrorStack:        {"stack trace", asIs},
	retrymeta.HeaderDLQReason:         {"dead-letter reason", asIs},
	retrymeta.HeaderDeadLetteredAt:    {"dead-lettered at", epochMS},
	retrymeta.HeaderRedriveCount:      {"times redriven", asIs},
	retrymeta.HeaderEditedFrom:        {"edited from", asIs},
	retrymeta.HeaderTraceParent:       {"trace context", asIs},

	deadletter.SpringOriginalTopic:         {"original topic", asIs},
	deadletter.SpringOriginalPartition:     {"original partition", binInt},
	deadletter.SpringOriginalOffset:        {"original offset", binInt},
	deadletter.SpringOriginalTimestamp:     {"original timestamp", binEpochMS},
	deadletter.SpringOriginalTimestampType: {"original timestamp type", asIs},
	deadletter.SpringOriginalConsumerGroup: {"consumer group", asIs},
	deadletter.SpringExceptionFQCN:         {"exception class", asIs},
	deadletter.SpringExceptionCauseFQCN:    {"cause class", asIs},
	deadletter.SpringExceptionMessage:      {"error message", asIs},
	deadletter.SpringExceptionStacktrace:   {"stack trace", asIs},
	deadletter.SpringKeyExceptionFQCN:      {"key exception class", asIs},
	deadletter.SpringKeyExceptionMessage:   {"key error message", asIs},
	deadletter.SpringKeyExceptionStack:     {"key stack trace", asIs},
	deadletter.SpringRetryAttempts:         {"attempts", binInt},

	deadletter.ConnectTopic:            {"original topic", asIs},
	deadletter.ConnectPartition:        {"original partition", asIs},
	deadletter.ConnectOffset:           {"original offset", asIs},
	deadletter.ConnectConnectorName:    {"connector", asIs},
	deadletter.ConnectTaskID:           {"task", asIs},
	deadletter.ConnectStage:            {"stage", asIs},
	deadletter.ConnectClassName:        {"failing class", asIs},
	deadletter.ConnectExceptionClass:   {"exception class", asIs},
	deadletter.ConnectExceptionMessage: {"error message", asIs},
	deadletter.ConnectExceptionStack:   {"stack trace", asIs},

	deadletter.StreamsException:  {"exception", asIs},
	deadletter.StreamsMessage:    {"error message", asIs},
	deadletter.StreamsStacktrace: {"stack trace", asIs},
	deadletter.StreamsTopic:      {"original topic", asIs},
	deadletter.StreamsPartition:  {"original partition", asIs},
	deadletter.StreamsOffset:     {"original offset", asIs},

	deadletter.ShareTopic:         {"original topic", asIs},
	deadletter.SharePartition:     {"original partition", asIs},
	deadletter.ShareOffset:        {"original offset", asIs},
	deadletter.ShareGroupID:       {"share group", asIs},
	deadletter.ShareDeliveryCount: {"delivery count", asIs},
	deadletter.ShareMessage:       {"error message", asIs},
}

// stackHeaders hold a stack trace, shown below the headers.
var stackHeaders = map[string]bool{
	retrymeta.HeaderErrorStack:           true,
	deadletter.SpringExceptionStacktrace: true,
	deadletter.SpringKeyExceptionStack:   true,
	deadletter.ConnectExceptionStack:     true,
	deadletter.StreamsStacktrace:         true,
}

// decode renders a header value as its kind says; "" when it is shown as
// it is.
func decode(kind decodeKind, v []byte) string {
	switch kind {
	case epochMS:
		return decodeEpochMS(string(v))
	case binInt, binEpochMS:
		if len(v) != 4 && len(v) != 8 {
			return ""
		}
		var n int64
		if len(v) == 4 {
			n = int64(int32(binary.BigEndian.Uint32(v)))
		} else {
			n = int64(binary.BigEndian.Uint64(v))
		}
		if kind == binEpochMS {
			return time.UnixMilli(n).UTC().Format("2006-01-02T15:04:05.000Z07:00")
		}
		return strconv.FormatInt(n, 10)
	}
	return ""
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
	OrderID     string            `json:"orderID"`
	EventType   string            `json:"eventType,omitempty"`
	Status      string            `json:"status"`
	Dialect     string            `json:"dialect"`
	ErrorClass  string            `json:"errorClass,omitempty"`
	ErrorType   string            `json:"errorType,omitempty"`
	Message     string            `json:"errorMessage,omitempty"`
	Attempts    int               `json:"attempts,omitempty"`
	Redrives    int               `json:"redriveCount"`
	Original    *Origin           `json:"original,omitempty"`
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
		Dialect:    string(l.Dialect),
		ErrorClass: string(l.Meta.ErrorClass),
		ErrorType:  l.ErrorType,
		Message:    l.Meta.ErrorMessage,
		Attempts:   l.Meta.Attempt,
		Redrives:   l.Meta.RedriveCount,
		Original:   OriginOf(l),
		ErrorStack: l.Meta.ErrorStack,
		Malformed:  l.Malformed,
		Resolution: it.Resolution,
		Headers:    make([]HeaderDetail, len(l.Headers)),
	}
	d.Key, d.KeyBase64 = textOrBase64(l.Key)
	for i, h := range l.Headers {
		hd := HeaderDetail{Key: h.Key, Label: "(not in the contract)"}
		if info, ok := headerInfos[h.Key]; ok {
			hd.Label = info.label
			hd.Decoded = decode(info.kind, h.Value)
		}
		hd.Value, hd.ValueBase64 = textOrBase64(h.Value)
		if info, ok := headerInfos[h.Key]; ok && (info.kind == binInt || info.kind == binEpochMS) && hd.Decoded != "" {
			// A binary number may happen to be valid UTF-8 (0x00 0x00 0x00
			// 0x02): it is bytes, not text.
			b64 := base64.StdEncoding.EncodeToString(h.Value)
			hd.Value, hd.ValueBase64 = nil, &b64
		}
		if hd.Value == nil && hd.ValueBase64 == nil {
			empty := ""
			hd.Value = &empty
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
	field("dialect", d.Dialect)
	field("order", CleanLine(orDash(d.OrderID)))
	field("event type", CleanLine(orDash(d.EventType)))
	field("key", CleanLine(displayBytes(d.Key, d.KeyBase64)))
	if o := d.Original; o != nil {
		field("original", CleanLine(fmt.Sprintf("%s %d:%d", o.Topic, o.Partition, o.Offset)))
	}
	if d.ErrorType != "" {
		field("exception", CleanLine(d.ErrorType))
	}
	field("record timestamp", d.Timestamp.Format("2006-01-02T15:04:05.000Z07:00"))
	if d.Malformed != "" {
		field("malformed", paint(CleanLine(d.Malformed), red, p.Color))
	}
	if r := d.Resolution; r != nil {
		field("resolution", CleanLine(describeResolution(*r)))
	}

	b.WriteString("\n")
	title("Headers")
	t := table{header: []string{"  HEADER", "MEANING", "VALUE"}}
	for _, h := range d.Headers {
		v := displayBytes(h.Value, h.ValueBase64)
		if stackHeaders[h.Key] && h.Value != nil {
			v = fmt.Sprintf("(%d bytes, below)", len(*h.Value))
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
		b.WriteString(indent(Clean(prettyJSON(*d.Value)), "  "))
	case d.ValueText != nil:
		b.WriteString(paint("  (not JSON)", faint, p.Color) + "\n")
		b.WriteString(indent(Clean(*d.ValueText), "  "))
	case d.ValueBase64 != nil:
		b.WriteString(paint("  (binary, base64)", faint, p.Color) + "\n")
		b.WriteString(indent(*d.ValueBase64, "  "))
	default:
		b.WriteString("  (null)\n")
	}

	if d.ErrorStack != "" {
		b.WriteString("\n")
		title("Stack trace")
		b.WriteString(indent(Clean(d.ErrorStack), "  "))
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
