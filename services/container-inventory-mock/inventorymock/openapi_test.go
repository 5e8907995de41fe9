package inventorymock_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock"
)

// specCheckingClient returns an HTTP client whose every answer is checked
// against openapi.yaml (status documented, body and headers matching the
// schema); a mismatch fails t. The tests' own calls and the admin client go
// through it, so each behaviour a test proves is also proven to be the
// documented one.
func specCheckingClient(t testing.TB, base http.RoundTripper) *http.Client {
	t.Helper()
	router, err := specRouter()
	if err != nil {
		t.Fatal(err)
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return &http.Client{Transport: &specTransport{t: t, base: base, router: router}}
}

// specRouter loads the document once per test binary: it is read-only.
var specRouter = sync.OnceValues(func() (routers.Router, error) {
	doc, err := inventorymock.LoadOpenAPI()
	if err != nil {
		return nil, err
	}
	// Match whatever host the test listens on: the document's server is
	// the default port of a deployment.
	doc.Servers = openapi3.Servers{{URL: "/"}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route openapi.yaml: %w", err)
	}
	return router, nil
})

type specTransport struct {
	t      testing.TB
	base   http.RoundTripper
	router routers.Router
}

func (s *specTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	route, params, err := s.router.FindRoute(req)
	if errors.Is(err, routers.ErrPathNotFound) || errors.Is(err, routers.ErrMethodNotAllowed) {
		// Requests off the contract (the 404 and 405 tests) have no
		// documented answer beyond the Error body, checked by those tests.
		return resp, nil
	}
	if err != nil {
		s.t.Errorf("openapi: %s %s: %v", req.Method, req.URL.Path, err)
		return resp, nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		s.t.Errorf("openapi: %s %s answered %d %s, not as openapi.yaml documents it: %v",
			req.Method, req.URL.Path, resp.StatusCode, body, err)
	}
	return resp, nil
}

// TestSpecCheckingClientCatchesAnUndocumentedAnswer proves the check can
// fail: an answer the document does not allow is reported.
func TestSpecCheckingClientCatchesAnUndocumentedAnswer(t *testing.T) {
	_, base, _ := startService(t, inventorymock.Config{})
	rec := &recordingTB{TB: t}
	fake := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		// /healthz documents {"status":"ok"} only.
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(bytes.NewReader([]byte(`{"status":"sleepy"}`))), Request: req}, nil
	})
	client := specCheckingClient(rec, fake)
	resp, err := client.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(rec.errors) == 0 {
		t.Fatal("an undocumented /healthz body passed the spec check")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// recordingTB collects Errorf calls instead of failing the test.
type recordingTB struct {
	testing.TB
	errors []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.errors = append(r.errors, format)
}
