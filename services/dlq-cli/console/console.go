package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/filter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/redrive"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/render"
)

//go:embed templates/*.html assets/*
var files embed.FS

// Backend is what the console asks of dlq. Every method opens what it
// needs and reads the resolution log afresh, so a page shows what another
// person did a second ago.
type Backend interface {
	// List returns the letters f selects.
	List(ctx context.Context, f filter.Filter) ([]render.Item, error)
	// Letter returns one letter and its history.
	Letter(ctx context.Context, pos deadletter.Position) (render.Item, []Event, error)
	// Plan is the dry run of a redrive of the pending letters at positions.
	Plan(ctx context.Context, positions []deadletter.Position, to redrive.Target, maxRedrives int) ([]render.PlanRow, error)
	// Redrive redrives the pending letters at positions, rate records per
	// second at most (0: no limit), reporting each outcome.
	Redrive(ctx context.Context, positions []deadletter.Position, to redrive.Target, maxRedrives int, rate float64, onResult func(redrive.Result)) (redrive.Report, error)
	// Resolve marks the pending letters at positions resolved with note.
	Resolve(ctx context.Context, positions []deadletter.Position, note string) (int, error)
	// EditPreview validates a new value for the letter at pos and returns
	// the diff.
	EditPreview(ctx context.Context, pos deadletter.Position, value []byte) (string, error)
	// Edit publishes the corrected copy and marks the letter edited.
	Edit(ctx context.Context, pos deadletter.Position, value []byte, to redrive.Target) (redrive.Result, error)
	// Watermark changes whenever a dead letter arrives (the sum of the
	// topic's end offsets): the list page polls it.
	Watermark(ctx context.Context) (int64, error)
	// Topic names the dead-letter topic.
	Topic() string
}

// Event is one line of a letter's history.
type Event struct {
	At   time.Time
	What string
	// Link is the position of a related dead letter, if any.
	Link string
}

// Config configures a Server.
type Config struct {
	Backend Backend
	// Token, if set, is required on every request.
	Token string
	// Loopback says the server listens on a loopback address only: the
	// Host header must then name one.
	Loopback bool
	// Log receives one line per action; nil discards.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server serves the console.
type Server struct {
	cfg  Config
	csrf string
	tmpl *template.Template
	mux  *http.ServeMux
	// base outlives requests: redrive jobs run in it.
	base context.Context

	mu     sync.Mutex
	jobs   map[string]*job
	nextID int
}

// New returns a Server; ctx bounds the redrive jobs it starts.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("csrf token: %w", err)
	}
	tmpl, err := template.New("").Funcs(funcs).ParseFS(files, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("parse templates: %w", err)
	}
	s := &Server{cfg: cfg, csrf: hex.EncodeToString(b), tmpl: tmpl, base: ctx, jobs: map[string]*job{}}
	assets, _ := fs.Sub(files, "assets")
	mux := http.NewServeMux()
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(assets)))
	mux.HandleFunc("GET /{$}", s.list)
	mux.HandleFunc("GET /rows", s.rows)
	mux.HandleFunc("GET /watermark", s.watermark)
	mux.HandleFunc("GET /letters/{pos}", s.letter)
	mux.HandleFunc("POST /letters/{pos}/edit", s.edit)
	mux.HandleFunc("POST /redrive/preview", s.preview)
	mux.HandleFunc("POST /redrive/run", s.run)
	mux.HandleFunc("GET /jobs/{id}", s.jobPage)
	mux.HandleFunc("GET /jobs/{id}/progress", s.jobProgress)
	mux.HandleFunc("POST /resolve", s.resolve)
	s.mux = mux
	return s, nil
}

// ServeHTTP checks the host, the token and, for actions, the CSRF token,
// then serves the page.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if s.cfg.Loopback && !loopbackHost(r.Host) {
		http.Error(w, "this console answers on a loopback address only (Host "+r.Host+" refused)", http.StatusMisdirectedRequest)
		return
	}
	if s.cfg.Token != "" && !s.authorised(w, r) {
		return
	}
	if r.Method == http.MethodPost {
		if err := s.checkCSRF(r); err != nil {
			s.cfg.Log.Warn("refused a request", "path", r.URL.Path, "err", err)
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// CSRF returns the token forms must carry (tests and tools posting
// directly read it from a page).
func (s *Server) CSRF() string { return s.csrf }

func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

const tokenCookie = "dlq_console_token"

// authorised checks the token: a bearer header, the cookie, or ?token=
// once (which sets the cookie and redirects to the URL without it, so the
// token does not stay in the address bar or the history).
func (s *Server) authorised(w http.ResponseWriter, r *http.Request) bool {
	eq := func(v string) bool { return subtle.ConstantTimeCompare([]byte(v), []byte(s.cfg.Token)) == 1 }
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && eq(v) {
		return true
	}
	if c, err := r.Cookie(tokenCookie); err == nil && eq(c.Value) {
		return true
	}
	if q := r.URL.Query(); q.Has("token") && eq(q.Get("token")) && r.Method == http.MethodGet {
		http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: s.cfg.Token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		q.Del("token")
		u := *r.URL
		u.RawQuery = q.Encode()
		http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
		return false
	}
	http.Error(w, "a token is required: open the console with ?token=... once, or send Authorization: Bearer ...", http.StatusUnauthorized)
	return false
}

func (s *Server) checkCSRF(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return fmt.Errorf("refused: the request comes from another site (Sec-Fetch-Site %s)", site)
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return fmt.Errorf("refused: Origin %s is not this console", o)
		}
	}
	if err := r.ParseForm(); err != nil {
		return fmt.Errorf("bad form: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(s.csrf)) != 1 {
		return errors.New("refused: the form's CSRF token is missing or stale; reload the page")
	}
	return nil
}

// page is what every template gets.
type page struct {
	Title  string
	Topic  string
	CSRF   string
	Query  url.Values
	Error  string
	Notice string
	Data   any
}

func (s *Server) render(w http.ResponseWriter, status int, name string, p page) {
	p.Topic, p.CSRF = s.cfg.Backend.Topic(), s.csrf
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := s.tmpl.ExecuteTemplate(w, name, p); err != nil {
		s.cfg.Log.Error("render", "template", name, "err", err)
	}
}

func (s *Server) fail(w http.ResponseWriter, status int, title string, err error) {
	s.render(w, status, "error.html", page{Title: title, Error: err.Error()})
}

// listData is the list page's data.
type listData struct {
	Items     []render.Item
	Watermark int64
	Limit     int
	Dialects  []deadletter.Dialect
}

// defaultLimit bounds the rows of one page: a browser table of 100,000
// rows helps nobody; filters narrow it.
const defaultLimit = 500

func (s *Server) listItems(r *http.Request) ([]render.Item, filter.Filter, error) {
	f, err := parseFilter(r.URL.Query(), s.cfg.Now())
	if err != nil {
		return nil, f, err
	}
	items, err := s.cfg.Backend.List(r.Context(), f)
	return items, f, err
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	wm, _ := s.cfg.Backend.Watermark(r.Context())
	items, f, err := s.listItems(r)
	p := page{Title: "Dead letters", Query: r.URL.Query(), Data: listData{Items: items, Watermark: wm, Limit: f.Limit, Dialects: deadletter.Dialects}}
	if err != nil {
		p.Error = err.Error()
	}
	p.Notice = r.URL.Query().Get("notice")
	s.render(w, http.StatusOK, "list.html", p)
}

// rows serves the table body alone, for the live update.
func (s *Server) rows(w http.ResponseWriter, r *http.Request) {
	items, f, err := s.listItems(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.render(w, http.StatusOK, "rows", page{Query: r.URL.Query(), Data: listData{Items: items, Limit: f.Limit}})
}

func (s *Server) watermark(w http.ResponseWriter, r *http.Request) {
	wm, err := s.cfg.Backend.Watermark(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]int64{"watermark": wm})
}

// parseFilter reads the list filters from a query, as `dlq list` reads its
// flags.
func parseFilter(q url.Values, now time.Time) (filter.Filter, error) {
	f := filter.New()
	var err error
	if v := q.Get("status"); v != "" {
		if f.Status, err = filter.ParseStatus(v); err != nil {
			return f, err
		}
	}
	if v := q.Get("reason"); v != "" {
		if f.Reason, err = filter.ParseReason(v); err != nil {
			return f, err
		}
	}
	if v := q.Get("error-class"); v != "" {
		f.SetErrorClass(v)
	}
	if v := q.Get("written-by"); v != "" {
		if f.Dialect, err = deadletter.ParseDialect(v); err != nil {
			return f, err
		}
	}
	f.OriginalTopic = strings.TrimSpace(q.Get("original-topic"))
	f.Contains = q.Get("contains")
	f.OrderID = strings.TrimSpace(q.Get("order-id"))
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := strings.TrimSpace(q.Get(name)); v != "" {
			if *dst, err = filter.ParseTime(v, now); err != nil {
				return f, fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	f.Limit = defaultLimit
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 {
			return f, fmt.Errorf("limit %q: want a number >= 1", v)
		}
	}
	return f, f.Validate()
}

func parsePos(s string) (deadletter.Position, error) { return deadletter.ParsePosition(s) }

// letterData is the detail page's data.
type letterData struct {
	Item    render.Item
	Detail  render.Detail
	History []Event
	// Value is the value as the edit box shows it: indented JSON, or text.
	Value string
	Diff  string
	// Edited is the value a preview validated, for the confirm form.
	Edited string
}

// loadLetter reads the letter the path names; false when it answered
// with an error page.
func (s *Server) loadLetter(w http.ResponseWriter, r *http.Request) (deadletter.Position, render.Item, []Event, bool) {
	pos, err := parsePos(r.PathValue("pos"))
	if err != nil {
		s.fail(w, http.StatusBadRequest, "Bad position", err)
		return pos, render.Item{}, nil, false
	}
	it, hist, err := s.cfg.Backend.Letter(r.Context(), pos)
	if err != nil {
		s.fail(w, http.StatusNotFound, "No such dead letter", err)
		return pos, it, nil, false
	}
	return pos, it, hist, true
}

func (s *Server) letter(w http.ResponseWriter, r *http.Request) {
	pos, it, hist, ok := s.loadLetter(w, r)
	if !ok {
		return
	}
	p := page{Title: "Dead letter " + pos.String(), Data: letterData{Item: it, Detail: render.NewDetail(it), History: hist, Value: editable(it.Letter.Value)}}
	p.Notice = r.URL.Query().Get("notice")
	s.render(w, http.StatusOK, "letter.html", p)
}

// edit previews (step=preview) or applies (step=save) a new value.
func (s *Server) edit(w http.ResponseWriter, r *http.Request) {
	pos, it, hist, ok := s.loadLetter(w, r)
	if !ok {
		return
	}
	value := []byte(r.PostForm.Get("value"))
	d := letterData{Item: it, Detail: render.NewDetail(it), History: hist, Value: string(value)}
	p := page{Title: "Dead letter " + pos.String()}
	if r.PostForm.Get("step") == "save" {
		to, terr := redrive.ParseTarget(r.PostForm.Get("to"))
		if terr != nil {
			to = redrive.ToRetry
		}
		res, err := s.cfg.Backend.Edit(r.Context(), pos, value, to)
		if err != nil {
			p.Error = "not saved: " + err.Error()
			p.Data = d
			s.render(w, http.StatusUnprocessableEntity, "letter.html", p)
			return
		}
		s.cfg.Log.Info("edited", "position", pos.String(), "target", fmt.Sprintf("%s %d:%d", res.Target.Topic, res.Target.Partition, res.Target.Offset))
		notice := fmt.Sprintf("The corrected copy went to %s %d:%d; %s is marked edited.", res.Target.Topic, res.Target.Partition, res.Target.Offset, pos)
		http.Redirect(w, r, "/letters/"+pos.String()+"?notice="+url.QueryEscape(notice), http.StatusSeeOther)
		return
	}
	diff, err := s.cfg.Backend.EditPreview(r.Context(), pos, value)
	if err != nil {
		p.Error = err.Error()
	} else {
		d.Diff, d.Edited = diff, string(value)
	}
	p.Data = d
	s.render(w, http.StatusOK, "letter.html", p)
}

// selection reads the positions and the redrive settings of a form.
type selection struct {
	Positions   []deadletter.Position
	To          redrive.Target
	MaxRedrives int
	Rate        float64
}

func parseSelection(form url.Values) (selection, error) {
	sel := selection{To: redrive.ToRetry, MaxRedrives: redrive.DefaultMaxRedrives}
	// pos: one field per ticked box; positions: one comma-separated field
	// (what the dry-run page posts back: a form of more than 10,000 fields
	// is refused by net/http).
	list := form["pos"]
	for _, v := range form["positions"] {
		if v != "" {
			list = append(list, strings.Split(v, ",")...)
		}
	}
	for _, v := range list {
		p, err := parsePos(strings.TrimSpace(v))
		if err != nil {
			return sel, err
		}
		sel.Positions = append(sel.Positions, p)
	}
	if len(sel.Positions) == 0 {
		return sel, errors.New("nothing selected: tick the dead letters to act on")
	}
	var err error
	if v := form.Get("to"); v != "" {
		if sel.To, err = redrive.ParseTarget(v); err != nil {
			return sel, err
		}
	}
	if v := form.Get("max-redrives"); v != "" {
		if sel.MaxRedrives, err = strconv.Atoi(v); err != nil || sel.MaxRedrives < 1 {
			return sel, fmt.Errorf("max redrives %q: want 1 or more", v)
		}
	}
	if v := form.Get("rate"); v != "" {
		if sel.Rate, err = strconv.ParseFloat(v, 64); err != nil || sel.Rate < 0 {
			return sel, fmt.Errorf("rate %q: want 0 (no limit) or more records per second", v)
		}
	}
	return sel, nil
}

// planData is the dry-run page's data.
type planData struct {
	Sel     selection
	Rows    []render.PlanRow
	Movable int
	Refused int
	// Positions are the letters the run would move, comma-separated.
	Positions string
}

func (s *Server) preview(w http.ResponseWriter, r *http.Request) {
	sel, err := parseSelection(r.PostForm)
	if err != nil {
		s.fail(w, http.StatusBadRequest, "Cannot preview", err)
		return
	}
	rows, err := s.cfg.Backend.Plan(r.Context(), sel.Positions, sel.To, sel.MaxRedrives)
	if err != nil {
		s.fail(w, http.StatusBadGateway, "Cannot preview", err)
		return
	}
	d := planData{Sel: sel, Rows: rows}
	var movable []string
	for _, row := range rows {
		if row.Action == "refuse" {
			d.Refused++
		} else {
			d.Movable++
			movable = append(movable, fmt.Sprintf("%d:%d", row.Partition, row.Offset))
		}
	}
	d.Positions = strings.Join(movable, ",")
	s.render(w, http.StatusOK, "plan.html", page{Title: "Redrive: dry run", Data: d})
}

// job is one redrive started from the console.
type job struct {
	ID       string
	Total    int
	Sel      selection
	Started  time.Time
	done     atomic.Int64
	redriven atomic.Int64
	refused  atomic.Int64
	mu       sync.Mutex
	finished bool
	err      string
	ended    time.Time
}

// Progress is the JSON of a job's state.
type Progress struct {
	Total    int     `json:"total"`
	Done     int64   `json:"done"`
	Redriven int64   `json:"redriven"`
	Refused  int64   `json:"refused"`
	Finished bool    `json:"finished"`
	Error    string  `json:"error,omitempty"`
	Rate     float64 `json:"recordsPerSecond"`
}

func (j *job) progress(now time.Time) Progress {
	j.mu.Lock()
	defer j.mu.Unlock()
	p := Progress{Total: j.Total, Done: j.done.Load(), Redriven: j.redriven.Load(), Refused: j.refused.Load(), Finished: j.finished, Error: j.err}
	end := now
	if j.finished {
		end = j.ended
	}
	if el := end.Sub(j.Started).Seconds(); el > 0 {
		p.Rate = float64(p.Redriven) / el
	}
	return p
}

func (s *Server) run(w http.ResponseWriter, r *http.Request) {
	sel, err := parseSelection(r.PostForm)
	if err != nil {
		s.fail(w, http.StatusBadRequest, "Cannot redrive", err)
		return
	}
	s.mu.Lock()
	s.nextID++
	j := &job{ID: strconv.Itoa(s.nextID), Total: len(sel.Positions), Sel: sel, Started: s.cfg.Now()}
	s.jobs[j.ID] = j
	s.mu.Unlock()
	s.cfg.Log.Info("redrive started", "job", j.ID, "letters", j.Total, "to", sel.To, "rate", sel.Rate)
	go func() {
		rep, err := s.cfg.Backend.Redrive(s.base, sel.Positions, sel.To, sel.MaxRedrives, sel.Rate, func(res redrive.Result) {
			j.done.Add(1)
			if res.Outcome == redrive.Refused {
				j.refused.Add(1)
			} else {
				j.redriven.Add(1)
			}
		})
		j.mu.Lock()
		j.finished, j.ended = true, s.cfg.Now()
		if err != nil {
			j.err = err.Error()
		}
		j.mu.Unlock()
		s.cfg.Log.Info("redrive finished", "job", j.ID, "redriven", rep.Redriven, "refused", rep.Refused, "err", err)
	}()
	http.Redirect(w, r, "/jobs/"+j.ID, http.StatusSeeOther)
}

func (s *Server) job(id string) *job {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jobs[id]
}

func (s *Server) jobPage(w http.ResponseWriter, r *http.Request) {
	j := s.job(r.PathValue("id"))
	if j == nil {
		s.fail(w, http.StatusNotFound, "No such redrive", errors.New("no redrive with this id (the console keeps them until it stops)"))
		return
	}
	s.render(w, http.StatusOK, "job.html", page{Title: "Redrive " + j.ID, Data: struct {
		Job      *job
		Progress Progress
	}{j, j.progress(s.cfg.Now())}})
}

func (s *Server) jobProgress(w http.ResponseWriter, r *http.Request) {
	j := s.job(r.PathValue("id"))
	if j == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(j.progress(s.cfg.Now()))
}

func (s *Server) resolve(w http.ResponseWriter, r *http.Request) {
	sel, err := parseSelection(r.PostForm)
	if err != nil {
		s.fail(w, http.StatusBadRequest, "Cannot resolve", err)
		return
	}
	note := strings.TrimSpace(r.PostForm.Get("note"))
	if note == "" {
		s.fail(w, http.StatusBadRequest, "Cannot resolve", errors.New("a note is required: say why, for whoever reads the resolution log next"))
		return
	}
	n, err := s.cfg.Backend.Resolve(r.Context(), sel.Positions, note)
	if err != nil {
		s.fail(w, http.StatusBadGateway, "Resolve failed", fmt.Errorf("resolved %d: %w", n, err))
		return
	}
	s.cfg.Log.Info("resolved", "letters", n, "note", note)
	back := r.PostForm.Get("back")
	if !strings.HasPrefix(back, "/") || strings.HasPrefix(back, "//") {
		back = "/"
	}
	sep := "?"
	if strings.Contains(back, "?") {
		sep = "&"
	}
	http.Redirect(w, r, back+sep+"notice="+url.QueryEscape(fmt.Sprintf("Marked %d dead letters resolved.", n)), http.StatusSeeOther)
}

// editable is the value as the edit box shows it: indented when JSON.
func editable(v []byte) string {
	if json.Valid(v) {
		return string(prettyJSON(v))
	}
	return string(v)
}
