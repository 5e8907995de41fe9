package inventorymock_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
)

// TestReadyzFailsWhileAnOutageIsInjected: /readyz tells the truth about the
// inventory the mock plays, so that `dlq redrive --when-healthy
// http://inventory:8081/readyz` waits out an injected outage; /healthz and
// the admin API stay up, or nobody could end the outage. An error rate is
// not an outage: the inventory answers, if badly, and stays ready.
func TestReadyzFailsWhileAnOutageIsInjected(t *testing.T) {
	t.Parallel()
	_, base, adm := startService(t, inventorymock.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	expect := func(step, path string, want int) {
		t.Helper()
		if got := send(t, nil, http.MethodGet, base+path, "", "", nil); got.Status != want {
			t.Errorf("%s: GET %s = %d %v, want %d", step, path, got.Status, got.Body, want)
		}
	}

	expect("healthy", "/readyz", 200)
	if _, err := adm.SetFaults(ctx, faults.Profile{ErrorRate: 0.5}); err != nil {
		t.Fatal(err)
	}
	expect("error rate 0.5", "/readyz", 200)

	for _, mode := range []string{faults.OutageStatus, faults.OutageDrop} {
		if _, err := adm.Outage(ctx, faults.Outage{Mode: mode}); err != nil {
			t.Fatalf("start a %s outage: %v", mode, err)
		}
		expect(mode+" outage", "/readyz", 503)
		expect(mode+" outage", "/healthz", 200)
		if _, err := adm.Faults(ctx); err != nil {
			t.Errorf("%s outage: the admin API is down too: %v", mode, err)
		}
		if _, err := adm.Heal(ctx); err != nil {
			t.Fatal(err)
		}
		expect("healed", "/readyz", 200)
	}
	ready := send(t, nil, http.MethodGet, base+"/readyz", "", "", nil)
	if ready.Body["status"] != "ready" {
		t.Errorf("healed: readiness body %v", ready.Body)
	}
}

// TestReadyzComesBackWhenATimedOutageEnds: an outage with an end needs no
// heal; readiness follows the clock the outage is measured on.
func TestReadyzComesBackWhenATimedOutageEnds(t *testing.T) {
	t.Parallel()
	_, base, adm := startService(t, inventorymock.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The loop accepts the outage being over before the first probe (a
	// slow machine); what it proves is that readiness comes back unaided.
	if _, err := adm.Outage(ctx, faults.Outage{For: faults.Duration(300 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	for {
		got := send(t, nil, http.MethodGet, base+"/readyz", "", "", nil)
		if got.Status == 200 {
			return
		}
		if got.Status != 503 {
			t.Fatalf("GET /readyz = %d during a timed outage", got.Status)
		}
		select {
		case <-ctx.Done():
			t.Fatal("/readyz still 503 long after the outage's end")
		case <-time.After(20 * time.Millisecond):
		}
	}
}
