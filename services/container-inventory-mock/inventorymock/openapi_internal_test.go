package inventorymock

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"

	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
)

// OpenAPIPath is the mock's published contract, relative to this package.
const OpenAPIPath = "../openapi.yaml"

// LoadOpenAPI loads openapi.yaml with kin-openapi and validates it as an
// OpenAPI 3.0 document (YAML syntax, schema keywords, $refs, examples), so
// a malformed spec fails `make test`. Exported for the package's external
// tests, which validate every answer they get against it.
func LoadOpenAPI() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromFile(OpenAPIPath)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", OpenAPIPath, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("%s is not a valid OpenAPI document: %w", OpenAPIPath, err)
	}
	return doc, nil
}

func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := LoadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestOpenAPIIsValid: the document parses and validates. It failed on the
// unquoted flow scalars whose commas turned half a sentence into a key
// (`description: What is wrong, for a human.`).
func TestOpenAPIIsValid(t *testing.T) {
	doc := loadOpenAPI(t)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3", doc.OpenAPI)
	}
}

// TestOpenAPIDocumentsExactlyTheServedRoutes fails when a route is served
// that the document lacks, or documented but not served.
func TestOpenAPIDocumentsExactlyTheServedRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}

	s, err := New(Config{HTTPAddr: "127.0.0.1:0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`:(\w+)`)
	var served []string
	for _, r := range s.srv.Echo().Routes() {
		if r.Method == echo.RouteNotFound {
			continue // the catch-all a group adds so its middleware sees 404s
		}
		served = append(served, r.Method+" "+param.ReplaceAllString(r.Path, "{$1}"))
	}
	slices.Sort(documented)
	slices.Sort(served)
	if diff := cmp.Diff(documented, served); diff != "" {
		t.Errorf("openapi.yaml (-) and served routes (+) differ:\n%s", diff)
	}
}

// TestOpenAPIEnumsMatchTheCode keeps the names a client filters on in step.
func TestOpenAPIEnumsMatchTheCode(t *testing.T) {
	doc := loadOpenAPI(t)
	kinds := []string{}
	for _, k := range []faults.Kind{faults.None, faults.KindOutage, faults.KindRule, faults.KindFailFirst, faults.KindTimeout, faults.KindError} {
		kinds = append(kinds, string(k))
	}
	tests := []struct {
		schema string
		want   []string
	}{
		{"Route", faults.Routes},
		{"FaultKind", kinds},
	}
	for _, tt := range tests {
		ref, ok := doc.Components.Schemas[tt.schema]
		if !ok {
			t.Errorf("schema %s is missing", tt.schema)
			continue
		}
		var got []string
		for _, v := range ref.Value.Enum {
			got = append(got, strings.TrimSpace(v.(string)))
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("schema %s enum (-code +document):\n%s", tt.schema, diff)
		}
	}
}
