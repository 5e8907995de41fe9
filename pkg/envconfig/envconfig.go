package envconfig

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Parse returns a T (a struct with env/v11 tags, nested structs included)
// filled from getenv, with the envDefault of every variable that getenv
// returns empty for. An empty value counts as unset, as in most shells'
// deployment tooling.
//
// The error, when there is one, names every variable whose value does not
// parse, its value and the accepted form.
func Parse[T any](getenv func(string) string) (T, error) {
	var cfg T
	params, err := env.GetFieldParams(&cfg)
	if err != nil {
		return cfg, fmt.Errorf("read configuration: %w", err)
	}
	// env/v11 reads a map, not a function: fill the map with exactly the
	// variables the struct declares.
	environ := make(map[string]string, len(params))
	for _, p := range params {
		if v := getenv(p.Key); v != "" {
			environ[p.Key] = v
		}
	}
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: environ}); err != nil {
		return cfg, fmt.Errorf("read configuration: %w", explain(err, reflect.TypeFor[T](), environ))
	}
	return cfg, nil
}

// explain rewrites env/v11's parse errors, which name the Go field, into
// errors that name the variable and the accepted form.
func explain(err error, t reflect.Type, environ map[string]string) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	keys := fieldKeys(t, nil)
	out := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			out = append(out, e)
			continue
		}
		key := strings.Join(keys[pe.Name], " or ")
		// Two fields may share a Go name (in nested structs); the one the
		// environment sets is the culprit, since defaults always parse.
		for _, k := range keys[pe.Name] {
			if _, ok := environ[k]; ok {
				key = k
				break
			}
		}
		out = append(out, fmt.Errorf("%s=%q: want %s", key, environ[key], AcceptedForm(pe.Type)))
	}
	return errors.Join(out...)
}

// fieldKeys maps each Go field name of t (nested structs included) to the
// environment variables it is read from.
func fieldKeys(t reflect.Type, into map[string][]string) map[string][]string {
	if into == nil {
		into = map[string][]string{}
	}
	for f := range t.Fields() {
		key, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		switch {
		case key == "-":
		case key != "":
			into[f.Name] = append(into[f.Name], key)
		case f.Type.Kind() == reflect.Struct:
			fieldKeys(f.Type, into)
		}
	}
	return into
}

// AcceptedForm describes, for an error message, the values a variable of
// type t accepts. A type can describe itself with a method
// AcceptedForm() string.
func AcceptedForm(t reflect.Type) string {
	if d, ok := reflect.Zero(t).Interface().(interface{ AcceptedForm() string }); ok {
		return d.AcceptedForm()
	}
	switch t {
	case reflect.TypeFor[time.Duration]():
		return "a duration such as 500ms, 2s or 1m"
	case reflect.TypeFor[slog.Level]():
		return "debug, info, warn or error"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float64, reflect.Float32:
		return "a number such as 0.1"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "a comma-separated list, each " + AcceptedForm(t.Elem())
	}
	return fmt.Sprintf("a value of type %s", t)
}

// RedactURL hides the password of a URL (postgres://user:xxxxx@host/db).
// Values that are not URLs with credentials are returned unchanged.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}
