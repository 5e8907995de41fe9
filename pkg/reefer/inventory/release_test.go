package inventory_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/inventory"
)

// A release is done when the inventory no longer holds the container for
// the order: 2xx, 404 (no such container) and 409 (another order holds
// it) are nil; anything else is classified as Allocate's answers are.
func TestReleaseSucceedsWhenTheInventoryNoLongerHoldsIt(t *testing.T) {
	tests := []struct {
		status int
		class  failure.Class // "" for success
	}{
		{http.StatusOK, ""},
		{http.StatusNoContent, ""},
		{http.StatusNotFound, ""},
		{http.StatusConflict, ""},
		{http.StatusServiceUnavailable, failure.Transient},
		{http.StatusUnauthorized, failure.Config},
		{http.StatusMovedPermanently, failure.Config},
		{http.StatusBadRequest, failure.Permanent},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			srv := newStatusServer(t, tt.status)
			err := newClient(t, inventory.Config{BaseURL: srv.URL}).Release(t.Context(), "C-1", "O-1")
			switch {
			case tt.class == "" && err != nil:
				t.Errorf("Release after %d = %v, want nil", tt.status, err)
			case tt.class != "" && failure.ClassOf(err) != tt.class:
				t.Errorf("Release after %d = %v (class %q), want class %q", tt.status, err, failure.ClassOf(err), tt.class)
			}
		})
	}
}

// The request names the container in the path and the order in the
// query, percent-encoded, with DELETE.
func TestReleaseSendsDeleteForTheOrder(t *testing.T) {
	var mu sync.Mutex
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Clone(r.Context())
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	if err := newClient(t, inventory.Config{BaseURL: srv.URL}).Release(t.Context(), "C 1", "O&1"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got.Method != http.MethodDelete || got.URL.EscapedPath() != "/containers/C%201/allocation" || got.URL.Query().Get("orderID") != "O&1" {
		t.Errorf("request = %s %s, want DELETE /containers/C%%201/allocation?orderID=O%%261", got.Method, got.URL)
	}
	if err := newClient(t, inventory.Config{BaseURL: srv.URL}).Release(t.Context(), "", "O-1"); failure.ClassOf(err) != failure.Permanent {
		t.Errorf("Release without a container = %v, want a permanent error", err)
	}
}
