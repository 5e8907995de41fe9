package inventorymock_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/admin"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/calls"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/store"
)

func TestAdminAPIRequiresTheTokenWhenSet(t *testing.T) {
	_, base, _ := startService(t, inventorymock.Config{AdminToken: "s3cret"})
	tests := []struct {
		name          string
		path          string
		authorization string
		wantStatus    int
	}{
		{"admin without token", "/admin/faults", "", 401},
		{"admin with a wrong token", "/admin/faults", "Bearer nope", 401},
		{"admin with another scheme", "/admin/faults", "Basic s3cret", 401},
		{"admin with the token", "/admin/faults", "Bearer s3cret", 200},
		{"the scheme is case-insensitive", "/admin/stats", "bearer s3cret", 200},
		{"the inventory API needs no token", "/containers", "", 200},
		{"health needs no token", "/healthz", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := map[string]string{}
			if tt.authorization != "" {
				header["Authorization"] = tt.authorization
			}
			got := send(t, nil, http.MethodGet, base+tt.path, "", "", header)
			if got.Status != tt.wantStatus {
				t.Fatalf("status %d, want %d (body %v)", got.Status, tt.wantStatus, got.Body)
			}
			if tt.wantStatus == 401 {
				if got.Header.Get("WWW-Authenticate") == "" || got.Body["error"] != "unauthorized" {
					t.Errorf("401 without WWW-Authenticate or JSON error: %v %v", got.Header, got.Body)
				}
			}
		})
	}
	// The typed client carries the token.
	if _, err := admin.New(base, "s3cret").Stats(t.Context()); err != nil {
		t.Errorf("client with token: %v", err)
	}
	if _, err := admin.New(base, "").Stats(t.Context()); !admin.IsStatus(err, 401) {
		t.Errorf("client without token: %v, want a 401 error", err)
	}
}

func TestNewRefusesAnOpenAdminAPIBeyondLoopback(t *testing.T) {
	tests := []struct {
		addr     string
		token    string
		insecure bool
		wantErr  bool
	}{
		{addr: "127.0.0.1:0"},
		{addr: "[::1]:0"},
		{addr: "localhost:0"},
		{addr: ":0", wantErr: true},
		{addr: "0.0.0.0:0", wantErr: true},
		{addr: ":0", token: "t"},
		{addr: ":0", insecure: true},
	}
	for _, tt := range tests {
		_, err := inventorymock.New(inventorymock.Config{HTTPAddr: tt.addr, AdminToken: tt.token, AdminInsecure: tt.insecure}, nil)
		if (err != nil) != tt.wantErr {
			t.Errorf("New(addr %q, token %q, insecure %t) error = %v, want error %t", tt.addr, tt.token, tt.insecure, err, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "ADMIN_TOKEN") {
			t.Errorf("error %q does not say how to fix it", err)
		}
	}
}

func TestAdminFaultsLifecycle(t *testing.T) {
	_, base, adm := startService(t, inventorymock.Config{FaultProfile: faults.Profile{Seed: new(int64(5))}})
	ctx := t.Context()

	set, err := adm.SetFaults(ctx, faults.Profile{ErrorRate: 0.5, Seed: new(int64(7))})
	if err != nil {
		t.Fatal(err)
	}
	want := faults.Profile{Seed: new(int64(7)), ErrorRate: 0.5, ErrorStatus: 503}
	if diff := cmp.Diff(want, set); diff != "" {
		t.Errorf("PUT answer (-want +got):\n%s", diff)
	}
	got, err := adm.Faults(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET after PUT (-want +got):\n%s", diff)
	}

	patched, err := adm.PatchFaults(ctx, map[string]any{"errorRate": nil, "failFirst": map[string]any{"count": 2}})
	if err != nil {
		t.Fatal(err)
	}
	want = faults.Profile{Seed: new(int64(7)), ErrorStatus: 503, FailFirst: &faults.FailFirst{Count: 2, Status: 503}}
	if diff := cmp.Diff(want, patched); diff != "" {
		t.Errorf("PATCH answer (-want +got):\n%s", diff)
	}

	before := time.Now()
	out, err := adm.Outage(ctx, faults.Outage{For: faults.Duration(time.Minute), Mode: faults.OutageDrop})
	if err != nil {
		t.Fatal(err)
	}
	if o := out.Outage; o == nil || o.Mode != faults.OutageDrop || o.Until == nil || o.Until.Before(before.Add(time.Minute)) {
		t.Errorf("outage = %+v, want drop mode until about a minute from now", o)
	}
	if out.FailFirst == nil {
		t.Error("starting an outage dropped the rest of the profile")
	}

	healed, err := adm.Heal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(faults.Profile{Seed: new(int64(7))}, healed); diff != "" {
		t.Errorf("DELETE answer (-want +got):\n%s", diff)
	}
	if a := allocate(t, nil, base, "C-1", "O-1"); a.Status != http.StatusOK {
		t.Errorf("after heal: allocation %d", a.Status)
	}
}

func TestAdminRefusesBadRequests(t *testing.T) {
	_, base, _ := startService(t, inventorymock.Config{})
	tests := []struct {
		name, method, path, contentType, body string
		wantStatus                            int
		wantCode, wantMessage                 string
	}{
		{"invalid profile names the field", http.MethodPut, "/admin/faults", "application/json", `{"errorRate": 7}`, 400, "invalid_profile", "errorRate 7: want a number from 0 to 1"},
		{"unknown profile field", http.MethodPut, "/admin/faults", "application/json", `{"errorrate": 0.1}`, 400, "invalid_profile", `unknown field "errorrate"`},
		{"profile as text", http.MethodPut, "/admin/faults", "text/plain", `{}`, 415, "unsupported_media_type", "want application/json"},
		{"invalid patch", http.MethodPatch, "/admin/faults", "application/merge-patch+json", `{"latency": "fast"}`, 400, "invalid_profile", `duration "fast"`},
		{"patch as text", http.MethodPatch, "/admin/faults", "text/plain", `{}`, 415, "unsupported_media_type", "application/merge-patch+json or application/json"},
		{"oversize profile", http.MethodPut, "/admin/faults", "application/json", `{"rules": [` + strings.Repeat(`{"orderID": "x", "status": 422},`, 3000) + `{}]}`, 413, "request_entity_too_large", ""},
		{"outage with a bad duration", http.MethodPost, "/admin/outage?for=soon", "", "", 400, "invalid_outage", `for="soon"`},
		{"outage with a bad mode", http.MethodPost, "/admin/outage?mode=boom", "", "", 400, "invalid_outage", `outage.mode "boom"`},
		{"outage with a bad status", http.MethodPost, "/admin/outage?status=200", "", "", 400, "invalid_outage", "outage.status 200"},
		{"calls with a bad limit", http.MethodGet, "/admin/calls?limit=-1", "", "", 400, "invalid_query", "limit"},
		{"calls with a bad cursor", http.MethodGet, "/admin/calls?after=x", "", "", 400, "invalid_query", "after"},
		{"containers with a bad status", http.MethodGet, "/admin/containers?status=x", "", "", 400, "invalid_status", `status "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := send(t, nil, tt.method, base+tt.path, tt.contentType, tt.body, nil)
			msg, _ := got.Body["message"].(string)
			if got.Status != tt.wantStatus || got.Body["error"] != tt.wantCode || !strings.Contains(msg, tt.wantMessage) {
				t.Errorf("answer %d %v, want %d %q with a message containing %q", got.Status, got.Body, tt.wantStatus, tt.wantCode, tt.wantMessage)
			}
		})
	}
	// Nothing of the above changed the profile.
	got := send(t, nil, http.MethodGet, base+"/admin/faults", "", "", nil)
	delete(got.Body, "seed")
	if diff := cmp.Diff(map[string]any{}, got.Body); diff != "" {
		t.Errorf("profile after refused requests (-want +got):\n%s", diff)
	}
}

func TestAdminCallsStatsContainersAndReset(t *testing.T) {
	_, base, adm := startService(t, inventorymock.Config{FaultProfile: faults.Profile{
		Seed: new(int64(11)), FailFirst: &faults.FailFirst{Count: 1},
	}})
	ctx := t.Context()
	allocate(t, nil, base, "C-1", "O-1") // failFirst
	allocate(t, nil, base, "C-1", "O-1") // allocated
	allocate(t, nil, base, "C-2", "O-2") // failFirst
	send(t, nil, http.MethodGet, base+"/containers/C-1", "", "", nil)

	all, err := adm.Calls(ctx, calls.Query{})
	if err != nil {
		t.Fatal(err)
	}
	wantAll := []calls.Call{
		{Seq: 1, Method: "PUT", Route: "allocate", Path: "/containers/C-1/allocation", ContainerID: "C-1", OrderID: "O-1", IdempotencyKey: "O-1", Fault: "failFirst", Status: 503},
		{Seq: 2, Method: "PUT", Route: "allocate", Path: "/containers/C-1/allocation", ContainerID: "C-1", OrderID: "O-1", IdempotencyKey: "O-1", Fault: "none", Status: 200},
		{Seq: 3, Method: "PUT", Route: "allocate", Path: "/containers/C-2/allocation", ContainerID: "C-2", OrderID: "O-2", IdempotencyKey: "O-2", Fault: "failFirst", Status: 503},
		{Seq: 4, Method: "GET", Route: "getContainer", Path: "/containers/C-1", ContainerID: "C-1", Fault: "none", Status: 200},
	}
	ignore := cmpopts.IgnoreFields(calls.Call{}, "Time", "LatencyMs")
	if diff := cmp.Diff(wantAll, all, ignore); diff != "" {
		t.Errorf("call log (-want +got):\n%s", diff)
	}
	for _, c := range all {
		if c.Time.IsZero() || c.LatencyMs < 0 {
			t.Errorf("call %d lacks time or latency: %+v", c.Seq, c)
		}
	}

	filtered, err := adm.Calls(ctx, calls.Query{OrderID: "O-1", After: 1, Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantAll[1:2], filtered, ignore); diff != "" {
		t.Errorf("filtered call log (-want +got):\n%s", diff)
	}

	st, err := adm.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantStats := admin.Stats{
		Calls: calls.Stats{
			Calls:    4,
			ByRoute:  map[string]int64{"allocate": 3, "getContainer": 1},
			ByFault:  map[string]int64{"failFirst": 2, "none": 2},
			ByStatus: map[string]int64{"200": 2, "503": 2},
		},
		Inventory: store.Stats{Containers: 1, Allocated: 1, Allocations: 1},
	}
	if diff := cmp.Diff(wantStats, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}

	// The admin view of the containers works during an outage.
	if _, err := adm.Outage(ctx, faults.Outage{}); err != nil {
		t.Fatal(err)
	}
	if a := send(t, nil, http.MethodGet, base+"/containers", "", "", nil); a.Status != 503 {
		t.Errorf("inventory list during outage: %d, want 503", a.Status)
	}
	cs, err := adm.Containers(ctx, store.Allocated)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].ContainerID != "C-1" || cs[0].OrderID != "O-1" {
		t.Errorf("admin containers = %+v, want C-1 allocated to O-1", cs)
	}
	if _, err := adm.Heal(ctx); err != nil {
		t.Fatal(err)
	}

	// Reset clears everything but the profile and replays its decisions.
	if err := adm.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	st, err = adm.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	empty := admin.Stats{Calls: calls.Stats{ByRoute: map[string]int64{}, ByFault: map[string]int64{}, ByStatus: map[string]int64{}}}
	if diff := cmp.Diff(empty, st); diff != "" {
		t.Errorf("stats after reset (-want +got):\n%s", diff)
	}
	if _, err := adm.SetFaults(ctx, faults.Profile{Seed: new(int64(11)), FailFirst: &faults.FailFirst{Count: 1}}); err != nil {
		t.Fatal(err)
	}
	if a := allocate(t, nil, base, "C-1", "O-1"); a.Status != 503 {
		t.Errorf("first call for O-1 after reset: %d, want 503 (failFirst counts start over)", a.Status)
	}
	if all, _ := adm.Calls(ctx, calls.Query{}); len(all) != 1 || all[0].Seq != 1 {
		t.Errorf("call log after reset = %+v, want one call numbered 1", all)
	}
}

func TestAdminClientReportsErrorsWithTheirCode(t *testing.T) {
	_, base, _ := startService(t, inventorymock.Config{})
	_, err := admin.New(base, "").PatchFaults(t.Context(), json.RawMessage(`{"errorRate": 2}`))
	var e *admin.Error
	if !strings.Contains(err.Error(), "errorRate 2") || !admin.IsStatus(err, 400) {
		t.Fatalf("error = %v, want a 400 naming errorRate", err)
	}
	if !errors.As(err, &e) || e.Code != "invalid_profile" {
		t.Errorf("error = %#v, want code invalid_profile", e)
	}
}
