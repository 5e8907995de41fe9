package inventorymock

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"
	"go.yaml.in/yaml/v3"

	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
)

// openAPIDoc is the part of the OpenAPI document these tests read.
type openAPIDoc struct {
	Paths      map[string]map[string]any `yaml:"paths"`
	Components struct {
		Schemas map[string]struct {
			Enum []string `yaml:"enum"`
		} `yaml:"schemas"`
	} `yaml:"components"`
}

func readOpenAPI(t *testing.T) (openAPIDoc, []byte) {
	t.Helper()
	raw, err := os.ReadFile("../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse openapi.yaml: %v", err)
	}
	return doc, raw
}

var httpMethods = []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}

// TestOpenAPIDocumentsExactlyTheServedRoutes fails when a route is served
// that the document lacks, or documented but not served.
func TestOpenAPIDocumentsExactlyTheServedRoutes(t *testing.T) {
	doc, _ := readOpenAPI(t)
	var documented []string
	for path, item := range doc.Paths {
		for key := range item {
			if slices.Contains(httpMethods, key) {
				documented = append(documented, strings.ToUpper(key)+" "+path)
			}
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
	doc, _ := readOpenAPI(t)
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
		if diff := cmp.Diff(tt.want, doc.Components.Schemas[tt.schema].Enum); diff != "" {
			t.Errorf("schema %s enum (-code +document):\n%s", tt.schema, diff)
		}
	}
}

// TestOpenAPIReferencesResolve catches a $ref to a component that does not exist.
func TestOpenAPIReferencesResolve(t *testing.T) {
	_, raw := readOpenAPI(t)
	var tree map[string]any
	if err := yaml.Unmarshal(raw, &tree); err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\$ref: '#/([^']+)'`).FindAllStringSubmatch(string(raw), -1) {
		var node any = tree
		for _, part := range strings.Split(m[1], "/") {
			obj, ok := node.(map[string]any)
			if !ok {
				node = nil
				break
			}
			node = obj[part]
		}
		if node == nil {
			t.Errorf("$ref #/%s does not resolve", m[1])
		}
	}
}
