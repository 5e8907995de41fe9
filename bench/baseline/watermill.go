package baseline

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
)

// WatermillRetry runs each allocation as a watermill handler wrapped in
// watermill's own Retry middleware: the handler gets the order as a
// watermill message, and the middleware calls it again with exponential
// backoff while it returns an error, sleeping in between, as it does inside
// a watermill Router. After Retry.MaxRetries retries it returns the last
// error (the caller dead-letters the order, as watermill's PoisonQueue
// middleware would).
type WatermillRetry struct {
	Next  orders.Allocator
	Retry middleware.Retry
}

var _ orders.Allocator = WatermillRetry{}

// Allocate runs the order through the middleware-wrapped handler.
func (w WatermillRetry) Allocate(ctx context.Context, order events.OrderCreated) (allocation.Result, error) {
	payload, err := json.Marshal(order)
	if err != nil {
		return allocation.Result{}, fmt.Errorf("watermill baseline: encode order %s: %w", order.OrderID, err)
	}
	var res allocation.Result
	handler := w.Retry.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		var o events.OrderCreated
		if err := json.Unmarshal(msg.Payload, &o); err != nil {
			return nil, fmt.Errorf("decode order: %w", err)
		}
		var err error
		res, err = w.Next.Allocate(msg.Context(), o)
		return nil, err
	})
	msg := message.NewMessage(order.OrderID, payload)
	msg.SetContext(ctx)
	_, err = handler(msg)
	return res, err
}
