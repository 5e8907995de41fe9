package orders_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff/handofftest"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/inventory"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
)

// A credential the inventory refuses (401, 403), or a redirect, is the
// deployment's fault, the same for every order: the order is retried with
// back-off (class config), never dead-lettered at its first attempt; only
// when its attempts run out is it dead-lettered, as max-attempts. The
// inventory is a real HTTP server behind the real client.
func TestConfigFailuresAreRetriedNotDeadLettered(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusFound} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Location", "/login")
				w.WriteHeader(status)
			}))
			defer srv.Close()
			inv, err := inventory.New(inventory.Config{BaseURL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			w := &handofftest.Writer{}
			p := &orders.Processor{
				Allocator: allocation.Service{
					Store:     storeFunc(func(context.Context, string, int) (string, error) { return "C-0003", nil }),
					Inventory: inv,
				},
				Router: newRouter(w),
			}

			d, err := p.Process(context.Background(), orderRecord(t, "O-1"), retrymeta.Meta{})
			if err != nil {
				t.Fatal(err)
			}
			if d.Route != handoff.RouteRetry || failure.ClassOf(d.Err) != failure.Config {
				t.Fatalf("first attempt: route %s, class %q (%v); want retry, config", d.Route, failure.ClassOf(d.Err), d.Err)
			}
			retry := w.Only(t)[0]
			// order-retry must be able to read what reefer-manager wrote.
			meta, err := retrymeta.ParseRetry(retry.Headers)
			if err != nil {
				t.Fatalf("the retry record's headers do not parse: %v", err)
			}
			if meta.ErrorClass != failure.Config {
				t.Errorf("x-error-class = %q, want config", meta.ErrorClass)
			}

			// The last attempt: dead-lettered for running out, not as permanent.
			meta.Attempt = p.Router.MaxAttempts - 1
			d, err = p.Process(context.Background(), retry, meta)
			if err != nil {
				t.Fatal(err)
			}
			if d.Route != handoff.RouteDeadLetter || d.Reason != retrymeta.MaxAttempts {
				t.Errorf("last attempt: %s/%s, want dead-letter/max-attempts", d.Route, d.Reason)
			}
		})
	}
}

// The Router itself: a config failure goes to the retry topic whatever the
// attempt, until MaxAttempts.
func TestFailRetriesConfigFailures(t *testing.T) {
	r := newRouter(&handofftest.Writer{})
	err := failure.NewConfig("database-auth", errors.New("password authentication failed"))
	for attempt := range r.MaxAttempts - 1 {
		d, herr := r.Fail(context.Background(), orderRecord(t, "O-1"), retrymeta.Meta{Attempt: attempt}, err)
		if herr != nil || d.Route != handoff.RouteRetry {
			t.Errorf("attempt %d: %s, %v; want retry", attempt+1, d.Route, herr)
		}
	}
}
