package envconfig

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"regexp"
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

// RedactURL hides every password a connection string carries, whatever
// its form, so that it can be logged or put in an error:
//
//	postgres://user:secret@host/db          -> postgres://user:xxxxx@host/db
//	postgres://user:p%ss@host/db (unparsable) -> postgres://user:xxxxx@host/db
//	postgres://user:p#ss@host/db (a '#')    -> postgres://user:xxxxx@host/db
//	postgres://host/db?password=secret      -> postgres://host/db?password=xxxxx
//	host=db user=u password='s e c' dbname=x -> host=db user=u password=xxxxx dbname=x
//
// It does not need the string to parse: a URL that fails to parse is the
// one most likely to be printed in an error. The userinfo password runs
// from the first ':' after "://" to the last '@' (a password may hold
// '#', '?' or '/'); a rare '@' later in the string makes it hide more
// than the password, never less. Strings without credentials are
// returned unchanged. Use it for every DATABASE_URL (and any other
// URL-valued setting) that reaches a log line or an error; [RedactText]
// cleans a text, such as a driver's error, that may echo one.
func RedactURL(s string) string {
	out, _ := redact(s)
	return out
}

// RedactText returns text with connURL, and every password connURL
// carries (as written and percent-decoded), replaced by their redacted
// form: for an error message of a driver that echoes the connection
// string it was given. A password shorter than 4 characters is only
// hidden as part of the URL, since replacing, say, every "pw" in a
// message would garble it without protecting much.
func RedactText(text, connURL string) string {
	if connURL == "" {
		return text
	}
	redacted, secrets := redact(connURL)
	text = strings.ReplaceAll(text, connURL, redacted)
	for _, secret := range secrets {
		variants := []string{secret}
		if v, err := url.PathUnescape(secret); err == nil {
			variants = append(variants, v)
		}
		if v, err := url.QueryUnescape(secret); err == nil {
			variants = append(variants, v)
		}
		for _, v := range variants {
			if len(v) >= 4 {
				text = strings.ReplaceAll(text, v, redactedMask)
			}
		}
	}
	// A driver may also echo the settings it parsed (password=...).
	return passwordParam.ReplaceAllString(text, "${1}"+redactedMask)
}

// redactedMask replaces a password, as url.URL.Redacted does.
const redactedMask = "xxxxx"

// passwordParam finds password=value in a query string or a key=value
// connection string; the value may be single-quoted (libpq's form).
var passwordParam = regexp.MustCompile(`(?i)(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]*)`)

// redact returns s with its passwords masked, and the passwords it found.
func redact(s string) (string, []string) {
	var secrets []string
	out := s
	if i := strings.Index(out, "://"); i >= 0 {
		rest := out[i+3:]
		if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			userinfo := rest[:at]
			if c := strings.IndexByte(userinfo, ':'); c >= 0 && c+1 < len(userinfo) {
				secrets = append(secrets, userinfo[c+1:])
				out = out[:i+3] + userinfo[:c+1] + redactedMask + rest[at:]
			}
		}
	}
	out = passwordParam.ReplaceAllStringFunc(out, func(m string) string {
		sub := passwordParam.FindStringSubmatch(m)
		if sub[2] == "" {
			return m
		}
		secrets = append(secrets, strings.Trim(sub[2], "'"))
		return sub[1] + redactedMask
	})
	return out, secrets
}

// Var is one environment variable a configuration struct reads.
type Var struct {
	Name    string
	Default string
	// HasDefault tells an empty default ("") from none.
	HasDefault bool
}

// Vars lists the variables that Parse[T] reads, in the order of T's
// fields, with their defaults: for a service's --help.
func Vars[T any]() ([]Var, error) {
	var cfg T
	params, err := env.GetFieldParams(&cfg)
	if err != nil {
		return nil, fmt.Errorf("list configuration variables: %w", err)
	}
	vars := make([]Var, 0, len(params))
	for _, p := range params {
		vars = append(vars, Var{Name: p.Key, Default: p.DefaultValue, HasDefault: p.HasDefaultValue})
	}
	return vars, nil
}
