package inventorymock_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/admin"
)

// startService runs the mock on a loopback port for the test's duration and
// returns its base URL and an admin client.
func startService(t testing.TB, cfg inventorymock.Config) (*inventorymock.Service, string, *admin.Client) {
	t.Helper()
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	s, err := inventorymock.New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	base := "http://" + s.Addr()
	adm := admin.New(base, cfg.AdminToken)
	adm.HTTP = specCheckingClient(t, nil)
	adm.HTTP.Timeout = 10 * time.Second
	return s, base, adm
}

// answer is an HTTP response as the tests compare it.
type answer struct {
	Status int
	Body   map[string]any
	Header http.Header
}

// send makes one request with a JSON body (when body is not empty) and
// decodes a JSON answer. Every answer is checked against openapi.yaml
// (specCheckingClient), whatever client the test passes.
func send(t testing.TB, client *http.Client, method, url, contentType, body string, header map[string]string) answer {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	checked := specCheckingClient(t, nil)
	if client != nil {
		checked.Transport.(*specTransport).base = client.Transport
		if checked.Transport.(*specTransport).base == nil {
			checked.Transport.(*specTransport).base = http.DefaultTransport
		}
		checked.Timeout = client.Timeout
	}
	resp, err := checked.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read answer of %s %s: %v", method, url, err)
	}
	a := answer{Status: resp.StatusCode, Header: resp.Header}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &a.Body); err != nil {
			t.Fatalf("%s %s answered %d with non-JSON body %q", method, url, resp.StatusCode, data)
		}
	}
	return a
}

// allocate calls PUT /containers/{id}/allocation as reefer-manager does.
func allocate(t testing.TB, client *http.Client, base, container, order string) answer {
	t.Helper()
	return send(t, client, http.MethodPut, base+"/containers/"+container+"/allocation", "application/json",
		`{"orderID":"`+order+`"}`, map[string]string{"Idempotency-Key": order})
}

// withoutTime drops the updatedAt field so that bodies compare by content.
func withoutTime(m map[string]any) map[string]any {
	delete(m, "updatedAt")
	return m
}

// decodeJSON decodes and closes a response body.
func decodeJSON(t testing.TB, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decode answer (status %d): %v", resp.StatusCode, err)
	}
}
