package inventorymock

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/opsserver"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
)

// A held call must outlast the server's read and write timeouts: the write
// deadline, counted from the request's arrival, would lose the answer.
// The server's timeouts must still let a loaded -race run read the
// request (500 ms for a few hundred bytes); the hold is three times them.
func TestAHeldCallOutlastsTheServerTimeouts(t *testing.T) {
	s, err := New(Config{HTTPAddr: "127.0.0.1:0", FaultProfile: faults.Profile{Latency: faults.Duration(1500 * time.Millisecond)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The same routes on a server whose timeouts are shorter than the hold.
	s.srv = opsserver.New(opsserver.Config{
		Addr: "127.0.0.1:0", ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond,
	})
	s.routes(s.srv.Echo())
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})

	req, err := http.NewRequest(http.MethodPut, "http://"+s.Addr()+"/containers/C-1/allocation", strings.NewReader(`{"orderID":"O-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("held call failed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("held call answered %d, want 200", resp.StatusCode)
	}
	if st := s.store.Stats(); st.Allocations != 1 {
		t.Errorf("allocations = %d, want 1: the call was abandoned", st.Allocations)
	}
}
