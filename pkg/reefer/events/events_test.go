package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
)

const validOrderCreated = `{
  "specversion": "1.0",
  "id": "7d7a4c1e-1c2b-8a3d-9f00-0123456789ab",
  "source": "/order-service",
  "type": "OrderCreated",
  "time": "2025-03-04T05:06:07.123Z",
  "subject": "order-1",
  "datacontenttype": "application/json",
  "data": {
    "orderID": "order-1", "productID": "P01", "customerID": "C01", "quantity": 10,
    "pickupCity": "Oakland", "destinationCity": "Shanghai", "expectedDeliveryDate": "2025-04-01"
  }
}`

// withData returns validOrderCreated with data replaced.
func withData(data string) string {
	i := strings.Index(validOrderCreated, `"data": {`)
	return validOrderCreated[:i] + `"data": ` + data + "}"
}

// with returns validOrderCreated with one envelope line replaced (old must occur once).
func with(old, new string) string {
	if strings.Count(validOrderCreated, old) != 1 {
		panic("with: " + old + " does not occur exactly once")
	}
	return strings.Replace(validOrderCreated, old, new, 1)
}

const goodData = `{"orderID":"order-1","productID":"P01","customerID":"C01","quantity":10,"pickupCity":"Oakland","destinationCity":"Shanghai","expectedDeliveryDate":"2025-04-01"}`

// checkDecodeError checks that err is a permanent failure with the reason
// of kind, wrapping a DecodeError of kind about field.
func checkDecodeError(t *testing.T, err error, kind events.Kind, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s error on %q", kind, field)
	}
	if !failure.IsPermanent(err) {
		t.Errorf("error %v is not permanent", err)
	}
	wantReason := "decode"
	if kind == events.KindMissing || kind == events.KindUnknownType || kind == events.KindInvalid {
		wantReason = "validation"
	}
	if got := failure.ReasonOf(err); got != wantReason {
		t.Errorf("reason = %q, want %q", got, wantReason)
	}
	de, ok := errors.AsType[*events.DecodeError](err)
	if !ok {
		t.Fatalf("error %v does not wrap a *DecodeError", err)
	}
	if de.Kind != kind || de.Field != field {
		t.Errorf("DecodeError = %s/%q (%q), want %s/%q", de.Kind, de.Field, de.Problem, kind, field)
	}
	if de.Problem == "" {
		t.Error("DecodeError has no problem text")
	}
}

func TestDecodeAcceptsAValidEvent(t *testing.T) {
	env, oc, err := events.DecodeOrderCreated([]byte(validOrderCreated))
	if err != nil {
		t.Fatal(err)
	}
	want := events.Envelope{
		SpecVersion: "1.0", ID: "7d7a4c1e-1c2b-8a3d-9f00-0123456789ab", Source: "/order-service",
		Type: "OrderCreated", Time: time.Date(2025, 3, 4, 5, 6, 7, 123e6, time.UTC), Subject: "order-1",
		DataContentType: "application/json", Data: json.RawMessage(goodData),
	}
	if diff := cmp.Diff(want, env); diff != "" {
		t.Errorf("envelope (-want +got):\n%s", diff)
	}
	wantData := events.OrderCreated{OrderID: "order-1", ProductID: "P01", CustomerID: "C01", Quantity: 10,
		PickupCity: "Oakland", DestinationCity: "Shanghai", ExpectedDeliveryDate: "2025-04-01"}
	if diff := cmp.Diff(wantData, oc); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
	if d, err := oc.DeliveryDate(); err != nil || !d.Equal(time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("DeliveryDate() = %v, %v", d, err)
	}
}

func TestDecodeKeepsExtensionsAndDefaultsNothing(t *testing.T) {
	in := with(`"datacontenttype": "application/json",`,
		`"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "priority": 3, "urgent": true,`)
	env, err := events.Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]json.RawMessage{
		"traceparent": json.RawMessage(`"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"`),
		"priority":    json.RawMessage(`3`),
		"urgent":      json.RawMessage(`true`),
	}
	if diff := cmp.Diff(want, env.Extensions); diff != "" {
		t.Errorf("extensions (-want +got):\n%s", diff)
	}
	if env.DataContentType != "" {
		t.Errorf("absent datacontenttype decoded as %q, want empty (implied application/json)", env.DataContentType)
	}
	out, err := events.Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`"traceparent":"00-4bf92f`)) || bytes.Contains(out, []byte("datacontenttype")) {
		t.Errorf("Encode lost an extension or invented datacontenttype: %s", out)
	}
}

func TestDecodeRejectsEveryKindOfBadInput(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		kind  events.Kind
		field string
	}{
		// Encoding and size.
		{"invalid UTF-8", strings.Replace(validOrderCreated, "Oakland", "Oak\xffland", 1), events.KindEncoding, ""},
		{"oversize payload", withData(`{"pad":"` + strings.Repeat("x", events.MaxSize) + `"}`), events.KindOversize, ""},
		// Bad JSON.
		{"empty", "", events.KindSyntax, ""},
		{"blank", " \n ", events.KindSyntax, ""},
		{"truncated", validOrderCreated[:40], events.KindSyntax, ""},
		{"not JSON", "order-1,P01,10", events.KindSyntax, ""},
		{"trailing comma", `{"specversion":"1.0",}`, events.KindSyntax, ""},
		{"array", `[1,2]`, events.KindSyntax, ""},
		{"string", `"OrderCreated"`, events.KindSyntax, ""},
		{"null", `null`, events.KindSyntax, ""},
		{"two objects", validOrderCreated + "{}", events.KindSyntax, ""},
		{"trailing garbage", validOrderCreated + " x", events.KindSyntax, ""},
		{"duplicate attribute", with(`"subject": "order-1",`, `"subject": "order-1", "subject": "order-2",`), events.KindSyntax, "subject"},
		// Unknown attributes.
		{"unknown attribute", with(`"subject": "order-1",`, `"subject": "order-1", "Subject": "x",`), events.KindUnknownField, "Subject"},
		{"attribute with underscore", with(`"subject": "order-1",`, `"subject": "order-1", "trace_id": "x",`), events.KindUnknownField, "trace_id"},
		{"binary data", with(`"subject": "order-1",`, `"subject": "order-1", "data_base64": "AAAA",`), events.KindUnknownField, "data_base64"},
		{"extension of object type", with(`"subject": "order-1",`, `"subject": "order-1", "ext": {},`), events.KindWrongType, "ext"},
		// Missing required attributes.
		{"missing specversion", with(`"specversion": "1.0",`, ``), events.KindMissing, "specversion"},
		{"missing id", with(`"id": "7d7a4c1e-1c2b-8a3d-9f00-0123456789ab",`, ``), events.KindMissing, "id"},
		{"missing source", with(`"source": "/order-service",`, ``), events.KindMissing, "source"},
		{"missing type", with(`"type": "OrderCreated",`, ``), events.KindMissing, "type"},
		{"missing time", with(`"time": "2025-03-04T05:06:07.123Z",`, ``), events.KindMissing, "time"},
		{"missing subject", with(`"subject": "order-1",`, ``), events.KindMissing, "subject"},
		{"missing data", validOrderCreated[:strings.Index(validOrderCreated, `,
  "data"`)] + "}", events.KindMissing, "data"},
		// Wrong types.
		{"id is a number", with(`"id": "7d7a4c1e-1c2b-8a3d-9f00-0123456789ab"`, `"id": 42`), events.KindWrongType, "id"},
		{"type is null", with(`"type": "OrderCreated"`, `"type": null`), events.KindWrongType, "type"},
		{"time is a number", with(`"time": "2025-03-04T05:06:07.123Z"`, `"time": 1741064767`), events.KindWrongType, "time"},
		{"data is a string", withData(`"{\"orderID\":\"order-1\"}"`), events.KindWrongType, "data"},
		{"data is null", withData(`null`), events.KindWrongType, "data"},
		// Bad values.
		{"unknown type", with(`"type": "OrderCreated"`, `"type": "OrderShipped"`), events.KindUnknownType, "type"},
		{"old specversion", with(`"specversion": "1.0"`, `"specversion": "0.3"`), events.KindInvalid, "specversion"},
		{"empty id", with(`"id": "7d7a4c1e-1c2b-8a3d-9f00-0123456789ab"`, `"id": ""`), events.KindInvalid, "id"},
		{"empty subject", with(`"subject": "order-1"`, `"subject": ""`), events.KindInvalid, "subject"},
		{"source not a URI", with(`"source": "/order-service"`, `"source": "http://[::1"`), events.KindInvalid, "source"},
		{"time not RFC 3339", with(`"time": "2025-03-04T05:06:07.123Z"`, `"time": "04/03/2025 05:06"`), events.KindInvalid, "time"},
		{"time with a one-digit hour", with(`"time": "2025-03-04T05:06:07.123Z"`, `"time": "2025-03-04T5:06:07Z"`), events.KindInvalid, "time"},
		{"time with a comma fraction", with(`"time": "2025-03-04T05:06:07.123Z"`, `"time": "2025-03-04T05:06:07,5Z"`), events.KindInvalid, "time"},
		{"time with hour 24", with(`"time": "2025-03-04T05:06:07.123Z"`, `"time": "2025-03-04T24:00:00Z"`), events.KindInvalid, "time"},
		{"time without zone", with(`"time": "2025-03-04T05:06:07.123Z"`, `"time": "2025-03-04T05:06:07"`), events.KindInvalid, "time"},
		{"xml content type", with(`"datacontenttype": "application/json"`, `"datacontenttype": "application/xml"`), events.KindInvalid, "datacontenttype"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := events.Decode([]byte(tt.in))
			checkDecodeError(t, err, tt.kind, tt.field)
			if diff := cmp.Diff(events.Envelope{}, env); diff != "" {
				t.Errorf("a rejected event returned a partial envelope:\n%s", diff)
			}
		})
	}
}

func TestDecodeAcceptsAPayloadOfExactlyMaxSize(t *testing.T) {
	in := withData(`{"pad":""}`)
	in = withData(`{"pad":"` + strings.Repeat("x", events.MaxSize-len(in)) + `"}`)
	if len(in) != events.MaxSize {
		t.Fatalf("test input is %d bytes, want %d", len(in), events.MaxSize)
	}
	if _, err := events.Decode([]byte(in)); err != nil {
		t.Errorf("Decode of exactly MaxSize bytes: %v", err)
	}
}

func TestDecodeOrderCreatedRejectsBadData(t *testing.T) {
	tests := []struct {
		name  string
		data  string
		kind  events.Kind
		field string
	}{
		{"unknown field", strings.Replace(goodData, `"quantity"`, `"qty"`, 1), events.KindUnknownField, "data.qty"},
		{"extra field", strings.Replace(goodData, `}`, `,"discount":5}`, 1), events.KindUnknownField, "data.discount"},
		{"field in another case", strings.Replace(goodData, `"orderID"`, `"OrderID"`, 1), events.KindUnknownField, "data.OrderID"},
		{"duplicate field", strings.Replace(goodData, `}`, `,"quantity":99}`, 1), events.KindSyntax, "data.quantity"},
		{"missing orderID", strings.Replace(goodData, `"orderID":"order-1",`, ``, 1), events.KindMissing, "data.orderID"},
		{"missing quantity", strings.Replace(goodData, `"quantity":10,`, ``, 1), events.KindMissing, "data.quantity"},
		{"missing date", strings.Replace(goodData, `,"expectedDeliveryDate":"2025-04-01"`, ``, 1), events.KindMissing, "data.expectedDeliveryDate"},
		{"quantity as string", strings.Replace(goodData, `10`, `"10"`, 1), events.KindWrongType, "data.quantity"},
		{"quantity fractional", strings.Replace(goodData, `10`, `2.5`, 1), events.KindWrongType, "data.quantity"},
		{"quantity exponent", strings.Replace(goodData, `10`, `1e3`, 1), events.KindWrongType, "data.quantity"},
		{"quantity overflows", strings.Replace(goodData, `10`, `99999999999999999999`, 1), events.KindWrongType, "data.quantity"},
		{"quantity null", strings.Replace(goodData, `10`, `null`, 1), events.KindWrongType, "data.quantity"},
		{"orderID as number", strings.Replace(goodData, `"order-1"`, `1`, 1), events.KindWrongType, "data.orderID"},
		{"productID null", strings.Replace(goodData, `"P01"`, `null`, 1), events.KindWrongType, "data.productID"},
		{"quantity zero", strings.Replace(goodData, `10`, `0`, 1), events.KindInvalid, "data.quantity"},
		{"quantity negative", strings.Replace(goodData, `10`, `-3`, 1), events.KindInvalid, "data.quantity"},
		{"blank customer", strings.Replace(goodData, `"C01"`, `"  "`, 1), events.KindInvalid, "data.customerID"},
		{"bad date", strings.Replace(goodData, `2025-04-01`, `2025-02-30`, 1), events.KindInvalid, "data.expectedDeliveryDate"},
		{"date in words", strings.Replace(goodData, `2025-04-01`, `next week`, 1), events.KindInvalid, "data.expectedDeliveryDate"},
		{"subject is not the order", strings.Replace(goodData, `"order-1"`, `"order-2"`, 1), events.KindInvalid, "subject"},
		{"data has bad JSON inside", `{"orderID": [}`, events.KindSyntax, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, oc, err := events.DecodeOrderCreated([]byte(withData(tt.data)))
			checkDecodeError(t, err, tt.kind, tt.field)
			if oc != (events.OrderCreated{}) {
				t.Errorf("rejected data returned a partial value %+v", oc)
			}
		})
	}
}

func TestDecodeOrderCreatedAcceptsAnRFC3339DeliveryDate(t *testing.T) {
	in := withData(strings.Replace(goodData, `2025-04-01`, `2025-04-01T12:00:00+02:00`, 1))
	_, oc, err := events.DecodeOrderCreated([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := oc.DeliveryDate(); !d.Equal(time.Date(2025, 4, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("DeliveryDate() = %v", d)
	}
}

func TestDecodeDataChecksTheEventType(t *testing.T) {
	env, err := events.Decode([]byte(validOrderCreated))
	if err != nil {
		t.Fatal(err)
	}
	_, err = events.DecodeData[events.ContainerAllocated](env)
	checkDecodeError(t, err, events.KindInvalid, "type")
}

func TestNewBuildsEventsThatDecodeBackForEveryType(t *testing.T) {
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		eventType string
		subject   string
		data      any
		decode    func(events.Envelope) (any, error)
	}{
		{events.TypeOrderCreated, "order-1", events.OrderCreated{OrderID: "order-1", ProductID: "P01", CustomerID: "C01", Quantity: 3,
			PickupCity: "Oakland", DestinationCity: "Shanghai", ExpectedDeliveryDate: "2025-04-01"},
			func(e events.Envelope) (any, error) { return events.DecodeData[events.OrderCreated](e) }},
		{events.TypeContainerAllocated, "order-1", events.ContainerAllocated{OrderID: "order-1", ContainerID: "C-42"},
			func(e events.Envelope) (any, error) { return events.DecodeData[events.ContainerAllocated](e) }},
		{events.TypeOrderRejected, "order-1", events.OrderRejected{OrderID: "order-1", Reason: "no reefer with capacity 30"},
			func(e events.Envelope) (any, error) { return events.DecodeData[events.OrderRejected](e) }},
		{events.TypeContainerAssignedToOrder, "order-1", events.ContainerAssignedToOrder{ContainerID: "C-42", OrderID: "order-1"},
			func(e events.Envelope) (any, error) { return events.DecodeData[events.ContainerAssignedToOrder](e) }},
	}
	for _, tt := range tests {
		t.Run(tt.eventType, func(t *testing.T) {
			env, err := events.New("/reefer-manager", tt.eventType, tt.subject, tt.data, at)
			if err != nil {
				t.Fatal(err)
			}
			if env.ID != events.ID(tt.subject, tt.eventType) || env.Time.Location() != time.UTC || env.DataContentType != events.ContentType {
				t.Errorf("New() = %+v: want deterministic id, UTC time and datacontenttype", env)
			}
			b, err := events.Encode(env)
			if err != nil {
				t.Fatal(err)
			}
			got, err := events.Decode(b)
			if err != nil {
				t.Fatalf("Decode(Encode(New())) = %v\n%s", err, b)
			}
			if diff := cmp.Diff(env, got); diff != "" {
				t.Errorf("round trip (-new +decoded):\n%s", diff)
			}
			data, err := tt.decode(got)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.data, data); diff != "" {
				t.Errorf("data round trip (-sent +decoded):\n%s", diff)
			}
		})
	}
}

func TestNewRefusesEventsConsumersWouldReject(t *testing.T) {
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	tests := []struct {
		name      string
		source    string
		eventType string
		subject   string
		data      any
		kind      events.Kind
	}{
		{"unknown type", "/m", "OrderShipped", "o-1", events.OrderRejected{OrderID: "o-1", Reason: "x"}, events.KindUnknownType},
		{"empty subject", "/m", events.TypeOrderRejected, "", events.OrderRejected{OrderID: "", Reason: "x"}, events.KindInvalid},
		{"empty source", "", events.TypeOrderRejected, "o-1", events.OrderRejected{OrderID: "o-1", Reason: "x"}, events.KindInvalid},
		{"zero quantity", "/m", events.TypeOrderCreated, "o-1", events.OrderCreated{OrderID: "o-1", ProductID: "p", CustomerID: "c",
			PickupCity: "a", DestinationCity: "b", ExpectedDeliveryDate: "2025-01-01"}, events.KindInvalid},
		{"subject is not the order", "/m", events.TypeContainerAllocated, "o-2", events.ContainerAllocated{OrderID: "o-1", ContainerID: "c"}, events.KindInvalid},
		{"data of another type", "/m", events.TypeContainerAllocated, "o-1", events.OrderRejected{OrderID: "o-1", Reason: "x"}, events.KindUnknownField},
		{"data not an object", "/m", events.TypeOrderRejected, "o-1", "just text", events.KindWrongType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := events.New(tt.source, tt.eventType, tt.subject, tt.data, at)
			de, ok := errors.AsType[*events.DecodeError](err)
			if !ok || de.Kind != tt.kind {
				t.Errorf("New() error = %v, want a %s DecodeError", err, tt.kind)
			}
		})
	}
	if _, err := events.New("/m", events.TypeOrderRejected, "o-1", events.OrderRejected{OrderID: "o-1", Reason: "x"}, time.Time{}); err == nil {
		t.Error("New() with a zero time succeeded")
	}
}

func TestEncodeRefusesInvalidEnvelopes(t *testing.T) {
	good, err := events.Decode([]byte(validOrderCreated))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(*events.Envelope)
	}{
		{"wrong specversion", func(e *events.Envelope) { e.SpecVersion = "" }},
		{"invalid UTF-8 subject", func(e *events.Envelope) { e.Subject = "o\xff" }},
		{"year beyond 9999", func(e *events.Envelope) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"data not JSON", func(e *events.Envelope) { e.Data = json.RawMessage(`{"a":`) }},
		{"data an array", func(e *events.Envelope) { e.Data = json.RawMessage(`[]`) }},
		{"extension with a bad name", func(e *events.Envelope) { e.Extensions = map[string]json.RawMessage{"Trace": json.RawMessage(`"x"`)} }},
		{"extension shadowing an attribute", func(e *events.Envelope) { e.Extensions = map[string]json.RawMessage{"id": json.RawMessage(`"x"`)} }},
		{"extension not a scalar", func(e *events.Envelope) { e.Extensions = map[string]json.RawMessage{"x": json.RawMessage(`[1]`)} }},
		{"oversize", func(e *events.Envelope) {
			e.Data = json.RawMessage(`{"pad":"` + strings.Repeat("x", events.MaxSize) + `"}`)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := good
			tt.mutate(&env)
			if b, err := events.Encode(env); err == nil {
				t.Errorf("Encode() = %s, want an error", b)
			} else if !failure.IsPermanent(err) {
				t.Errorf("Encode() error %v is not permanent", err)
			}
		})
	}
}

func TestEncodeEscapesOnlyWhatJSONRequires(t *testing.T) {
	env, err := events.New("/m", events.TypeOrderRejected, "o<1>&\"\\\n\x01\u2028é",
		events.OrderRejected{OrderID: "o<1>&\"\\\n\x01\u2028é", Reason: "x"}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	b, err := events.Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"subject":"o<1>&\"\\\n\u0001` + "\u2028é" + `"`; !bytes.Contains(b, []byte(want)) {
		t.Errorf("Encode() = %s, want it to contain %s", b, want)
	}
	got, err := events.Decode(b)
	if err != nil || got.Subject != env.Subject {
		t.Errorf("Decode(Encode()) subject = %q, %v; want %q", got.Subject, err, env.Subject)
	}
}

func TestJSONMarshalAndUnmarshalUseTheStrictCodec(t *testing.T) {
	var env events.Envelope
	if err := json.Unmarshal([]byte(validOrderCreated), &env); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte(`{"specversion":"1.0","id":`)) {
		t.Errorf("json.Marshal() = %s", b)
	}
	if err := json.Unmarshal([]byte(with(`"type": "OrderCreated"`, `"type": "Nope"`)), &env); !failure.IsPermanent(err) {
		t.Errorf("json.Unmarshal of an unknown type = %v, want a permanent error", err)
	}
}

func TestIDIsADeterministicUUIDPerSubjectAndType(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a := events.ID("order-1", events.TypeOrderCreated)
	if !uuid.MatchString(a) {
		t.Errorf("ID() = %q, not a version 8 UUID", a)
	}
	if b := events.ID("order-1", events.TypeOrderCreated); a != b {
		t.Errorf("ID() not deterministic: %q then %q", a, b)
	}
	seen := map[string]string{}
	for _, subject := range []string{"order-1", "order-2", "", "ab", "a"} {
		for _, typ := range append(events.Types(), "b", "") {
			id := events.ID(subject, typ)
			key := subject + "|" + typ
			if other, dup := seen[id]; dup {
				t.Errorf("ID collision between %q and %q", key, other)
			}
			seen[id] = key
		}
	}
}

func BenchmarkDecodeOrderCreated(b *testing.B) {
	in := []byte(validOrderCreated)
	for b.Loop() {
		if _, _, err := events.DecodeOrderCreated(in); err != nil {
			b.Fatal(err)
		}
	}
}
