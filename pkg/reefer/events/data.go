package events

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
)

// OrderCreated asks for a reefer container: a customer ships Quantity units
// of a product from PickupCity to DestinationCity.
type OrderCreated struct {
	OrderID         string `json:"orderID"`
	ProductID       string `json:"productID"`
	CustomerID      string `json:"customerID"`
	Quantity        int    `json:"quantity"`
	PickupCity      string `json:"pickupCity"`
	DestinationCity string `json:"destinationCity"`
	// ExpectedDeliveryDate is YYYY-MM-DD or an RFC 3339 timestamp.
	ExpectedDeliveryDate string `json:"expectedDeliveryDate"`
}

// DeliveryDate parses ExpectedDeliveryDate (a date is midnight UTC).
func (o OrderCreated) DeliveryDate() (time.Time, error) {
	return parseDate(o.ExpectedDeliveryDate)
}

// ContainerAllocated says that a reefer was reserved for the order.
type ContainerAllocated struct {
	OrderID     string `json:"orderID"`
	ContainerID string `json:"containerID"`
}

// OrderRejected is a business outcome (for example no reefer has the
// capacity), not an error: it is never retried.
type OrderRejected struct {
	OrderID string `json:"orderID"`
	Reason  string `json:"reason"`
}

// ContainerAssignedToOrder tells the container side that a container now
// serves the order.
type ContainerAssignedToOrder struct {
	ContainerID string `json:"containerID"`
	OrderID     string `json:"orderID"`
}

// Data is the set of event payload types, for DecodeData.
type Data interface {
	OrderCreated | ContainerAllocated | OrderRejected | ContainerAssignedToOrder
}

// DecodeData decodes env.Data as T strictly: env.Type must be T's event
// type, every field must be present with the right JSON type, unknown and
// duplicate fields are rejected, strings must not be blank, and data.orderID
// must equal the subject. OrderCreated also needs quantity > 0 and a valid
// expectedDeliveryDate. Errors are like Decode's.
func DecodeData[T Data](env Envelope) (T, error) {
	var v T
	var err error
	switch p := any(&v).(type) {
	case *OrderCreated:
		err = decodeOrderCreated(env, p)
	case *ContainerAllocated:
		err = decodeContainerAllocated(env, p)
	case *OrderRejected:
		err = decodeOrderRejected(env, p)
	case *ContainerAssignedToOrder:
		err = decodeContainerAssignedToOrder(env, p)
	}
	if err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// DecodeOrderCreated decodes a record value that must be an OrderCreated
// event: Decode followed by DecodeData[OrderCreated]. When only the data is
// bad, the decoded envelope is returned with the error, for logging.
func DecodeOrderCreated(b []byte) (Envelope, OrderCreated, error) {
	env, err := Decode(b)
	if err != nil {
		return Envelope{}, OrderCreated{}, err
	}
	oc, err := DecodeData[OrderCreated](env)
	return env, oc, err
}

// validateData checks that env.Data decodes as env.Type's payload.
func validateData(env Envelope) error {
	var err error
	switch env.Type {
	case TypeOrderCreated:
		_, err = DecodeData[OrderCreated](env)
	case TypeContainerAllocated:
		_, err = DecodeData[ContainerAllocated](env)
	case TypeOrderRejected:
		_, err = DecodeData[OrderRejected](env)
	case TypeContainerAssignedToOrder:
		_, err = DecodeData[ContainerAssignedToOrder](env)
	}
	return err
}

func decodeOrderCreated(env Envelope, o *OrderCreated) error {
	r, err := newFieldReader(env, TypeOrderCreated)
	if err != nil {
		return err
	}
	r.string("orderID", &o.OrderID)
	r.string("productID", &o.ProductID)
	r.string("customerID", &o.CustomerID)
	r.int("quantity", &o.Quantity)
	r.string("pickupCity", &o.PickupCity)
	r.string("destinationCity", &o.DestinationCity)
	r.string("expectedDeliveryDate", &o.ExpectedDeliveryDate)
	if err := r.done(); err != nil {
		return err
	}
	if o.Quantity <= 0 {
		return bad(KindInvalid, "data.quantity", "must be an integer > 0, got %d", o.Quantity)
	}
	if _, err := parseDate(o.ExpectedDeliveryDate); err != nil {
		return bad(KindInvalid, "data.expectedDeliveryDate", "must be a date (YYYY-MM-DD) or an RFC 3339 timestamp, got %q", excerpt([]byte(o.ExpectedDeliveryDate)))
	}
	return subjectIs(env, o.OrderID)
}

func decodeContainerAllocated(env Envelope, c *ContainerAllocated) error {
	r, err := newFieldReader(env, TypeContainerAllocated)
	if err != nil {
		return err
	}
	r.string("orderID", &c.OrderID)
	r.string("containerID", &c.ContainerID)
	if err := r.done(); err != nil {
		return err
	}
	return subjectIs(env, c.OrderID)
}

func decodeOrderRejected(env Envelope, o *OrderRejected) error {
	r, err := newFieldReader(env, TypeOrderRejected)
	if err != nil {
		return err
	}
	r.string("orderID", &o.OrderID)
	r.string("reason", &o.Reason)
	if err := r.done(); err != nil {
		return err
	}
	return subjectIs(env, o.OrderID)
}

func decodeContainerAssignedToOrder(env Envelope, c *ContainerAssignedToOrder) error {
	r, err := newFieldReader(env, TypeContainerAssignedToOrder)
	if err != nil {
		return err
	}
	r.string("containerID", &c.ContainerID)
	r.string("orderID", &c.OrderID)
	if err := r.done(); err != nil {
		return err
	}
	return subjectIs(env, c.OrderID)
}

// subjectIs checks the contract's rule that the subject is the order id.
func subjectIs(env Envelope, orderID string) error {
	if env.Subject != orderID {
		return bad(KindInvalid, "subject", "must equal data.orderID %q, got %q", excerpt([]byte(orderID)), excerpt([]byte(env.Subject)))
	}
	return nil
}

func parseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return parseTimestamp(s)
}

// fieldReader reads the members of a data object one by one, remembering
// the first problem, so each decoder reads like a list of its fields.
type fieldReader struct {
	eventType string
	fields    map[string]json.RawMessage
	read      []string
	err       error
}

func newFieldReader(env Envelope, eventType string) (*fieldReader, error) {
	if env.Type != eventType {
		return nil, bad(KindInvalid, "type", "is %q, want %q", excerpt([]byte(env.Type)), eventType)
	}
	fields, _, err := objectFields(env.Data, "data")
	if err != nil {
		return nil, err
	}
	return &fieldReader{eventType: eventType, fields: fields, read: make([]string, 0, len(fields))}, nil
}

// raw returns the member name, recording a problem when it is absent.
func (r *fieldReader) raw(name string) (json.RawMessage, bool) {
	r.read = append(r.read, name)
	raw, ok := r.fields[name]
	if !ok && r.err == nil {
		r.err = bad(KindMissing, "data."+name, "required field is missing")
	}
	return raw, ok && r.err == nil
}

// string reads a non-blank string.
func (r *fieldReader) string(name string, dst *string) {
	raw, ok := r.raw(name)
	if !ok {
		return
	}
	if str, plain := unquote(raw); plain {
		*dst = str // what decodeString gives, without building the field path
	} else if err := decodeString(raw, "data."+name, dst); err != nil {
		r.err = err
		return
	}
	if strings.TrimSpace(*dst) == "" {
		r.err = bad(KindInvalid, "data."+name, "must not be blank")
	}
}

// int reads an integer: no fraction, no exponent, within int's range.
func (r *fieldReader) int(name string, dst *int) {
	raw, ok := r.raw(name)
	if !ok {
		return
	}
	if k := jsonKind(raw); k != "number" {
		r.err = bad(KindWrongType, "data."+name, "must be an integer, got %s %s", k, excerpt(raw))
		return
	}
	if n, ok := plainInt(raw); ok {
		*dst = n
		return
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		r.err = bad(KindWrongType, "data."+name, "must be an integer, got %s", excerpt(raw))
	}
}

// plainInt reads a JSON number that is an optional minus and digits and
// fits an int, the way json.Unmarshal into an int does. ok is false for
// anything else (a fraction, an exponent, too many digits); the caller
// then lets encoding/json decide, so both ways agree.
func plainInt(raw []byte) (int, bool) {
	digits := raw
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(raw), 10, strconv.IntSize)
	if err != nil {
		return 0, false
	}
	return int(n), true
}

// done reports unknown fields first (a misspelt field also shows up as a
// missing one, and the unknown name is the better hint), then the first
// problem met while reading.
func (r *fieldReader) done() error {
	var unknown []string
	for name := range r.fields {
		if !slices.Contains(r.read, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return bad(KindUnknownField, "data."+unknown[0], "unknown field: %s data has %s", r.eventType, strings.Join(r.read, ", "))
	}
	return r.err
}
