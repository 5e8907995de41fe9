package pipeline

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/tracing"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
)

// scopeName is the instrumentation scope of the domain's spans.
const scopeName = "github.com/reeferdlq/reefer-dlq/pkg/reefer"

// The database steps of one order get a client span each, children of
// the record's consumer span: the reservation (step 2) and the
// compare-and-set to allocated. They wrap the batchers, so a span lasts
// from the call until this order's share of a batched statement is done.

// tracedStore is an allocation.Store whose Allocate runs in a span.
type tracedStore struct {
	next   allocation.Store
	tracer trace.Tracer
	db     attribute.KeyValue
}

func (s tracedStore) Allocate(ctx context.Context, orderID string, quantity int) (string, error) {
	ctx, span := s.tracer.Start(ctx, "reserve reefer", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(s.db, semconv.DBOperationName("allocate")))
	id, err := s.next.Allocate(ctx, orderID, quantity)
	end(span, err, attribute.String("reefer.container_id", id))
	return id, err
}

// tracedLedger is an orders.Ledger whose MarkAllocated runs in a span.
type tracedLedger struct {
	orders.Ledger
	tracer trace.Tracer
	db     attribute.KeyValue
}

func (l tracedLedger) MarkAllocated(ctx context.Context, orderID, containerID string) (bool, error) {
	ctx, span := l.tracer.Start(ctx, "mark order allocated", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(l.db, semconv.DBOperationName("mark_allocated")))
	won, err := l.Ledger.MarkAllocated(ctx, orderID, containerID)
	end(span, err, attribute.Bool("reefer.won", won))
	return won, err
}

func end(span trace.Span, err error, attrs ...attribute.KeyValue) {
	if err != nil {
		span.SetStatus(codes.Error, strings.ToValidUTF8(err.Error(), "\uFFFD"))
	} else {
		span.SetAttributes(attrs...)
	}
	span.End()
}

// dbSystem is db.system.name for a DATABASE_URL.
func dbSystem(databaseURL string) attribute.KeyValue {
	if u := strings.ToLower(databaseURL); strings.HasPrefix(u, "postgres") {
		return semconv.DBSystemNamePostgreSQL
	}
	return semconv.DBSystemNameSQLite
}

// traced returns the store and the ledger, with spans when tp records.
func traced(tp trace.TracerProvider, databaseURL string, store allocation.Store, ledger orders.Ledger) (allocation.Store, orders.Ledger) {
	if tracing.Off(tp) {
		return store, ledger
	}
	t, db := tp.Tracer(scopeName), dbSystem(databaseURL)
	return tracedStore{next: store, tracer: t, db: db}, tracedLedger{Ledger: ledger, tracer: t, db: db}
}
