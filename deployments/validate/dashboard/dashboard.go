package dashboard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Dashboard is the part of Grafana's dashboard JSON model this package
// reads. Other fields are allowed and ignored: the model has hundreds.
type Dashboard struct {
	UID           string     `json:"uid"`
	Title         string     `json:"title"`
	SchemaVersion int        `json:"schemaVersion"`
	Panels        []Panel    `json:"panels"`
	Templating    Templating `json:"templating"`
}

// Panel is one panel, or a row holding panels.
type Panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *Datasource `json:"datasource"`
	GridPos    GridPos     `json:"gridPos"`
	Targets    []Target    `json:"targets"`
	Panels     []Panel     `json:"panels"` // a collapsed row's panels
}

// GridPos is a panel's place on the 24-column grid.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// Datasource names a data source by type and uid; the uid may be a
// variable such as ${datasource}.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Target is one query of a panel.
type Target struct {
	RefID      string      `json:"refId"`
	Expr       string      `json:"expr"`
	Datasource *Datasource `json:"datasource"`
}

// Templating holds the dashboard's variables.
type Templating struct {
	List []Variable `json:"list"`
}

// Variable is one dashboard variable.
type Variable struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Query any    `json:"query"`
}

// Load reads and decodes the dashboard JSON at path.
func Load(path string) (Dashboard, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Dashboard{}, fmt.Errorf("read dashboard: %w", err)
	}
	var d Dashboard
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&d); err != nil {
		return Dashboard{}, fmt.Errorf("dashboard %s: %w", path, err)
	}
	if dec.More() {
		return Dashboard{}, fmt.Errorf("dashboard %s: data after the JSON object", path)
	}
	return d, nil
}

// AllPanels returns every panel, rows' nested panels included, rows last.
func (d Dashboard) AllPanels() []Panel {
	var out []Panel
	for _, p := range d.Panels {
		out = append(out, p.Panels...)
		out = append(out, p)
	}
	return out
}

// Query is one query of one panel.
type Query struct {
	Panel Panel
	Target
}

// Queries returns every query with a PromQL expression.
func (d Dashboard) Queries() []Query {
	var out []Query
	for _, p := range d.AllPanels() {
		for _, t := range p.Targets {
			if t.Expr != "" {
				out = append(out, Query{Panel: p, Target: t})
			}
		}
	}
	return out
}

// grafanaVars are Grafana's global variables, with values of the right
// PromQL type for parsing.
var grafanaVars = map[string]string{
	"__rate_interval": "1m",
	"__interval":      "15s",
	"__range":         "15m",
	"__range_s":       "900",
	"__range_ms":      "900000",
	"__interval_ms":   "15000",
}

// variable matches $name, ${name} and ${name:format}.
var variable = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)`)

// Expand replaces Grafana's global variables in expr. Dashboard variables
// it does not know are an error: their values are not known here.
func Expand(expr string) (string, error) {
	var errs []error
	out := variable.ReplaceAllStringFunc(expr, func(m string) string {
		sub := variable.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		if v, ok := grafanaVars[name]; ok {
			return v
		}
		errs = append(errs, fmt.Errorf("variable $%s: no value known for parsing", name))
		return m
	})
	return out, errors.Join(errs...)
}

// MetricNames parses the PromQL expression (after Expand) and returns the
// metric names it selects, sorted and without duplicates. A selector that
// does not name its metric exactly ({__name__=~"..."}) is an error: its
// metrics cannot be checked.
func MetricNames(expr string) ([]string, error) {
	expanded, err := Expand(expr)
	if err != nil {
		return nil, err
	}
	ast, err := parser.NewParser(parser.Options{}).ParseExpr(expanded)
	if err != nil {
		return nil, fmt.Errorf("parse PromQL %q: %w", expr, err)
	}
	var names []string
	for _, matchers := range parser.ExtractSelectors(ast) {
		i := slices.IndexFunc(matchers, func(m *labels.Matcher) bool {
			return m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual
		})
		if i < 0 {
			return nil, fmt.Errorf("PromQL %q: a selector without an exact metric name: %v", expr, matchers)
		}
		names = append(names, matchers[i].Value)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}
