package inventory_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/inventory"
)

// A redirect is not an allocation. The server answers the allocation PUT
// with a 3xx whose Location is a page that answers 200 to anything: a
// client that follows it (turning the PUT into a GET for 301/302, or
// replaying it for 307/308) would count that 200 as success although the
// inventory recorded nothing. 304 to a write is no success either.
func TestRedirectsAndNotModifiedAreConfigFailuresAndNotFollowed(t *testing.T) {
	for _, status := range []int{
		http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusNotModified,
	} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			var landed atomic.Int32
			mux := http.NewServeMux()
			mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
				landed.Add(1)
				_, _ = io.Copy(io.Discard, r.Body)
				_, _ = io.WriteString(w, "<html>login page</html>")
			})
			mux.HandleFunc("/containers/", func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				if status != http.StatusNotModified {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(status)
			})
			srv := httptest.NewServer(mux)
			defer srv.Close()
			// Also with a caller's own client, whose default policy follows.
			for _, hc := range []*http.Client{nil, {}} {
				c := newClient(t, inventory.Config{BaseURL: srv.URL, HTTPClient: hc})
				err := c.Allocate(t.Context(), "C-0042", "O-1")
				if err == nil {
					t.Fatalf("Allocate after a %d succeeded, want a config failure", status)
				}
				if got := failure.ClassOf(err); got != failure.Config {
					t.Errorf("class of %v = %q, want config", err, got)
				}
			}
			if n := landed.Load(); n != 0 {
				t.Errorf("the redirect was followed %d times", n)
			}
		})
	}
}

// 401 and 403 (and a redirect) fail every call until an operator acts;
// they must open the breaker, not count as the inventory working.
func TestConfigAnswersOpenTheBreaker(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusFound} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			srv := newStatusServer(t, status)
			c := newClient(t, inventory.Config{
				BaseURL: srv.URL,
				Breaker: inventory.BreakerConfig{MaxFailures: 3, OpenTimeout: time.Minute},
			})
			for range 3 {
				err := c.Allocate(t.Context(), "C-0001", "O-1")
				if got := failure.ClassOf(err); got != failure.Config {
					t.Fatalf("class of %v = %q, want config", err, got)
				}
			}
			if got := c.BreakerState(); got != inventory.StateOpen {
				t.Errorf("BreakerState after 3 answers %d = %q, want open", status, got)
			}
			err := c.Allocate(t.Context(), "C-0001", "O-1")
			if failure.ReasonOf(err) != "circuit-open" || srv.hits.Load() != 3 {
				t.Errorf("the open breaker let a call through: %v, hits %d", err, srv.hits.Load())
			}
		})
	}
}
