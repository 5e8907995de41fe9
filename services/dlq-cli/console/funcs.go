package console

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/url"
	"strings"
	"time"

	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/render"
)

// funcs are the helpers the templates use. Record contents go through
// render.Clean: html/template escapes markup, Clean removes the control
// characters a hostile record carries.
var funcs = template.FuncMap{
	"clean": render.Clean,
	"line":  render.CleanLine,
	"short": func(s string, n int) string {
		s = render.CleanLine(s)
		if r := []rune(s); len(r) > n {
			return string(r[:n-1]) + "…"
		}
		return s
	},
	"simple": render.SimpleName,
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"bytes": func(text, b64 *string) string {
		switch {
		case text != nil:
			return render.Clean(*text)
		case b64 != nil:
			return "base64:" + *b64
		}
		return "(null)"
	},
	"pretty": func(raw *json.RawMessage) string {
		if raw == nil {
			return ""
		}
		return render.Clean(string(prettyJSON(*raw)))
	},
	"q":  func(q url.Values, key string) string { return q.Get(key) },
	"is": func(q url.Values, key, value string) bool { return q.Get(key) == value },
	"diffClass": func(line string) string {
		switch {
		case strings.HasPrefix(line, "+++"), strings.HasPrefix(line, "---"):
			return "meta"
		case strings.HasPrefix(line, "+"):
			return "add"
		case strings.HasPrefix(line, "-"):
			return "del"
		case strings.HasPrefix(line, "@@"):
			return "hunk"
		}
		return ""
	},
	"deref": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
	"lines": func(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") },
	"pct": func(done int64, total int) int {
		if total == 0 {
			return 100
		}
		return int(done * 100 / int64(total))
	},
}

func prettyJSON(raw []byte) []byte {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return raw
	}
	return b.Bytes()
}
