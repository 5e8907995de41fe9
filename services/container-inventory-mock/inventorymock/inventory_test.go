package inventorymock_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/calls"
)

type step struct {
	method, path, body string
	header             map[string]string
	wantStatus         int
	wantBody           map[string]any // compared without updatedAt
}

func put(path, order string) step {
	return step{method: http.MethodPut, path: path, body: `{"orderID":"` + order + `"}`, header: map[string]string{"Idempotency-Key": order}}
}

func (s step) want(status int, body map[string]any) step {
	s.wantStatus, s.wantBody = status, body
	return s
}

func container(id, status, order string) map[string]any {
	m := map[string]any{"containerID": id, "status": status}
	if order != "" {
		m["orderID"] = order
	}
	return m
}

func TestInventoryAPI(t *testing.T) {
	get := func(path string) step { return step{method: http.MethodGet, path: path} }
	del := func(path string) step { return step{method: http.MethodDelete, path: path} }
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "an unknown container is created and allocated",
			steps: []step{
				put("/containers/C-1/allocation", "O-1").want(200, container("C-1", "allocated", "O-1")),
				get("/containers/C-1").want(200, container("C-1", "allocated", "O-1")),
			},
		},
		{
			name: "repeating an allocation answers the same with 200",
			steps: []step{
				put("/containers/C-1/allocation", "O-1").want(200, container("C-1", "allocated", "O-1")),
				put("/containers/C-1/allocation", "O-1").want(200, container("C-1", "allocated", "O-1")),
			},
		},
		{
			name: "a container allocated to another order is a conflict",
			steps: []step{
				put("/containers/C-1/allocation", "O-1").want(200, container("C-1", "allocated", "O-1")),
				put("/containers/C-1/allocation", "O-2").want(409, map[string]any{
					"error": "already_allocated", "message": "container C-1 is allocated to order O-1, not O-2",
					"containerID": "C-1", "orderID": "O-2",
				}),
			},
		},
		{
			name: "an unknown container is not found",
			steps: []step{
				get("/containers/C-9").want(404, map[string]any{"error": "container_not_found", "message": "no container C-9", "containerID": "C-9"}),
			},
		},
		{
			name: "listing filters by status",
			steps: []step{
				put("/containers/C-2/allocation", "O-2").want(200, container("C-2", "allocated", "O-2")),
				put("/containers/C-1/allocation", "O-1").want(200, container("C-1", "allocated", "O-1")),
				del("/containers/C-2/allocation?orderID=O-2").want(200, container("C-2", "available", "")),
				get("/containers?status=allocated").want(200, map[string]any{"containers": []any{container("C-1", "allocated", "O-1")}}),
				get("/containers?status=available").want(200, map[string]any{"containers": []any{container("C-2", "available", "")}}),
				get("/containers").want(200, map[string]any{"containers": []any{container("C-1", "allocated", "O-1"), container("C-2", "available", "")}}),
				get("/containers?status=lost").want(400, map[string]any{"error": "invalid_status", "message": `status "lost": want allocated or available`}),
			},
		},
		{
			name: "only the holder releases, and a repeated release succeeds",
			steps: []step{
				put("/containers/C-1/allocation", "O-1").want(200, container("C-1", "allocated", "O-1")),
				del("/containers/C-1/allocation?orderID=O-2").want(409, map[string]any{
					"error": "already_allocated", "message": "container C-1 is allocated to order O-1, not O-2",
					"containerID": "C-1", "orderID": "O-2",
				}),
				del("/containers/C-1/allocation?orderID=O-1").want(200, container("C-1", "available", "")),
				del("/containers/C-1/allocation?orderID=O-1").want(200, container("C-1", "available", "")),
				put("/containers/C-1/allocation", "O-2").want(200, container("C-1", "allocated", "O-2")),
			},
		},
		{
			name: "releasing needs the order and a known container",
			steps: []step{
				del("/containers/C-1/allocation").want(400, map[string]any{
					"error": "missing_order_id", "containerID": "C-1",
					"message": "the orderID query parameter is required: only the order holding a container may release it",
				}),
				del("/containers/C-1/allocation?orderID=O-1").want(404, map[string]any{
					"error": "container_not_found", "message": "no container C-1", "containerID": "C-1", "orderID": "O-1",
				}),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, base, _ := startService(t, inventorymock.Config{})
			for i, st := range tt.steps {
				ct := ""
				if st.body != "" {
					ct = "application/json"
				}
				got := send(t, nil, st.method, base+st.path, ct, st.body, st.header)
				if got.Status != st.wantStatus {
					t.Errorf("step %d %s %s: status %d, want %d (body %v)", i, st.method, st.path, got.Status, st.wantStatus, got.Body)
				}
				if list, ok := got.Body["containers"].([]any); ok {
					for _, c := range list {
						withoutTime(c.(map[string]any))
					}
				}
				if diff := cmp.Diff(st.wantBody, withoutTime(got.Body)); diff != "" {
					t.Errorf("step %d %s %s: body mismatch (-want +got):\n%s", i, st.method, st.path, diff)
				}
			}
		})
	}
}

func TestBadInputIsRefusedWithAJSONError(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		header      map[string]string
		chunked     bool
		wantStatus  int
		wantCode    string
		wantMessage string // substring
	}{
		{name: "malformed JSON", contentType: "application/json", body: `{"orderID": `, wantStatus: 400, wantCode: "invalid_json", wantMessage: "malformed JSON body"},
		{name: "empty body", contentType: "application/json", wantStatus: 400, wantCode: "invalid_json", wantMessage: "empty body"},
		{name: "trailing data", contentType: "application/json", body: `{"orderID":"O-1"} {}`, wantStatus: 400, wantCode: "invalid_json", wantMessage: "unexpected data after the JSON object"},
		{name: "orderID of the wrong type", contentType: "application/json", body: `{"orderID": 7}`, wantStatus: 400, wantCode: "invalid_json", wantMessage: "cannot unmarshal number"},
		{name: "missing orderID", contentType: "application/json", body: `{"order": "O-1"}`, wantStatus: 400, wantCode: "missing_order_id", wantMessage: "orderID is required"},
		{name: "empty orderID", contentType: "application/json", body: `{"orderID": ""}`, wantStatus: 400, wantCode: "missing_order_id"},
		{name: "orderID with spaces", contentType: "application/json", body: `{"orderID": "O 1"}`, wantStatus: 400, wantCode: "invalid_order_id", wantMessage: "printable characters without spaces"},
		{name: "orderID too long", contentType: "application/json", body: `{"orderID": "` + strings.Repeat("x", 129) + `"}`, wantStatus: 400, wantCode: "invalid_order_id", wantMessage: "at most 128"},
		{name: "idempotency key of another order", contentType: "application/json", body: `{"orderID": "O-1"}`, header: map[string]string{"Idempotency-Key": "O-2"}, wantStatus: 400, wantCode: "idempotency_key_mismatch"},
		{name: "wrong content type", contentType: "text/plain", body: `{"orderID": "O-1"}`, wantStatus: 415, wantCode: "unsupported_media_type", wantMessage: `Content-Type "text/plain": want application/json`},
		{name: "no content type", body: `{"orderID": "O-1"}`, wantStatus: 415, wantCode: "unsupported_media_type"},
		{name: "oversize body with a length", contentType: "application/json", body: `{"orderID": "O-1", "pad": "` + strings.Repeat("x", 70_000) + `"}`, wantStatus: 413, wantCode: "request_entity_too_large"},
		{name: "oversize chunked body", contentType: "application/json", chunked: true, body: `{"orderID": "O-1", "pad": "` + strings.Repeat("x", 70_000) + `"}`, wantStatus: 413, wantCode: "request_entity_too_large", wantMessage: "request body larger than 64K"},
		{name: "JSON with charset is fine", contentType: "application/json; charset=utf-8", body: `{"orderID": "O-1"}`, wantStatus: 200},
	}
	_, base, adm := startService(t, inventorymock.Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := adm.Reset(t.Context()); err != nil {
				t.Fatal(err)
			}
			req, err := http.NewRequest(http.MethodPut, base+"/containers/C-1/allocation", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.chunked {
				req.ContentLength = -1 // unknown length: sent chunked, limited while read
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body struct{ Error, Message string }
			decodeJSON(t, resp, &body)
			if resp.StatusCode != tt.wantStatus || body.Error != tt.wantCode || !strings.Contains(body.Message, tt.wantMessage) {
				t.Errorf("answer %d %q %q, want %d %q containing %q", resp.StatusCode, body.Error, body.Message, tt.wantStatus, tt.wantCode, tt.wantMessage)
			}
			wantAllocated := 0
			if tt.wantStatus == 200 {
				wantAllocated = 1
			}
			st, err := adm.Stats(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if st.Inventory.Allocated != wantAllocated {
				t.Errorf("allocated containers = %d, want %d", st.Inventory.Allocated, wantAllocated)
			}
		})
	}
	if got := send(t, nil, http.MethodGet, base+"/healthz", "", "", nil); got.Status != 200 {
		t.Errorf("after bad input, healthz = %d", got.Status)
	}
}

func TestConcurrentIdenticalAllocationsAllocateOnce(t *testing.T) {
	_, base, adm := startService(t, inventorymock.Config{})
	const n = 100
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	// Connections dialed but never used count as active for 5 s in the
	// server's graceful shutdown: close them first.
	t.Cleanup(client.CloseIdleConnections)
	answers := make([]answer, n)
	var start sync.WaitGroup
	start.Add(1)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			start.Wait() // release all at once
			answers[i] = allocate(t, client, base, "C-42", "O-42")
		})
	}
	start.Done()
	wg.Wait()

	for i, a := range answers {
		if a.Status != http.StatusOK {
			t.Errorf("answer %d: status %d", i, a.Status)
		}
		if diff := cmp.Diff(answers[0].Body, a.Body); diff != "" {
			t.Errorf("answer %d differs from answer 0 (-first +this):\n%s", i, diff)
		}
	}
	st, err := adm.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Inventory.Allocations != 1 || st.Inventory.Replays != n-1 || st.Calls.Calls != n {
		t.Errorf("stats %+v, want 1 allocation, %d replays, %d calls", st, n-1, n)
	}
	logged, err := adm.Calls(t.Context(), calls.Query{OrderID: "O-42"})
	if err != nil {
		t.Fatal(err)
	}
	if len(logged) != n || logged[0].IdempotencyKey != "O-42" {
		t.Errorf("logged %d calls (first %+v), want %d with the idempotency key", len(logged), logged[0], n)
	}
}
