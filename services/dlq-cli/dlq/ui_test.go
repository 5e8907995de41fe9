package dlq_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/dlq"
)

// chromiumPath is where Debian's chromium package puts the browser; .ci/run
// installs it.
const chromiumPath = "/usr/bin/chromium"

var consoleAddr = regexp.MustCompile(`at (http://[^ ]+/) `)

// startConsole runs `dlq ui` against the cluster until the test ends and
// returns its base URL.
func (c *cluster) startConsole(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &lockedBuffer{}
	done := make(chan int, 1)
	env := map[string]string{"KAFKA_BROKERS": c.addr, "DLQ_OPERATOR": "alice"}
	go func() {
		done <- dlq.Run(ctx, append([]string{"ui", "--addr", "127.0.0.1:0"}, args...), dlq.Env{
			Stderr: stderr, Getenv: func(k string) string { return env[k] }, Now: time.Now,
		})
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != dlq.ExitOK {
			t.Errorf("dlq ui exited %d:\n%s", code, stderr.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if m := consoleAddr.FindStringSubmatch(stderr.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-done:
			t.Fatalf("dlq ui exited %d before listening:\n%s", code, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("dlq ui did not print its address:\n%s", stderr.String())
	return ""
}

// browser starts headless Chromium. There is no skip: the console is
// tested in a real browser or the test fails saying what to install.
func browser(t *testing.T, width, height int) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the console's browser test needs Chromium at %s: apt-get install chromium (%v)", chromiumPath, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.WindowSize(width, height),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	// Generous: Chromium's start on a loaded 2-core machine takes seconds.
	ctx, cancelC := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelC(); cancelB(); cancelA() })
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// shot saves a screenshot when DLQ_UI_SCREENSHOTS names a directory (the
// README's pictures are made so), else into the test's temp dir.
func shot(t *testing.T, name string) chromedp.Action {
	dir := os.Getenv("DLQ_UI_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	var buf []byte
	return chromedp.Tasks{
		chromedp.FullScreenshot(&buf, 100), // 100: PNG
		chromedp.ActionFunc(func(context.Context) error {
			return os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644)
		}),
	}
}

func TestConsoleInABrowser(t *testing.T) {
	c := newCluster(t)
	c.ensureTopics("payments")
	c.seed(standardSeed()...)
	c.appendDead(foreignSeed()[0].record(nil))
	base := c.startConsole(t)
	ctx := browser(t, 1280, 860)

	rowCount := func(n *int) chromedp.Action {
		return chromedp.Evaluate(`document.querySelectorAll("#rows tr[data-pos]").length`, n)
	}
	var n int
	var text string

	// Load: every letter, whatever wrote it.
	if err := chromedp.Run(ctx,
		chromedp.Navigate(base),
		chromedp.WaitVisible("#letters"),
		rowCount(&n),
		shot(t, "console-list"),
	); err != nil {
		t.Fatalf("load the list: %v", err)
	}
	if n != 7 {
		t.Fatalf("the list shows %d letters, want 7", n)
	}

	// Filter: a text search, as dlq list --contains.
	if err := chromedp.Run(ctx,
		chromedp.SetValue("#search", "deadline", chromedp.ByID),
		chromedp.Submit("#search", chromedp.ByID),
		chromedp.WaitVisible(`#letters`),
		chromedp.Poll(`location.search.includes("contains=deadline")`, nil),
		rowCount(&n),
		chromedp.Text("#rows", &text, chromedp.ByID),
	); err != nil {
		t.Fatalf("filter: %v", err)
	}
	if n != 1 || !strings.Contains(text, "O-1003") {
		t.Fatalf("filtered by 'deadline': %d rows: %q", n, text)
	}

	// Open a letter: labelled headers, the value, the stack trace.
	if err := chromedp.Run(ctx,
		chromedp.Navigate(base),
		chromedp.WaitVisible(`a[href="/letters/0:1"]`),
		chromedp.Click(`a[href="/letters/0:1"]`),
		chromedp.WaitVisible("#h-headers", chromedp.ByID),
		chromedp.Text("main", &text),
		shot(t, "console-letter"),
	); err != nil {
		t.Fatalf("open a letter: %v", err)
	}
	for _, want := range []string{"validation: data.quantity must be > 0", "dead-letter reason", "Stack trace", `"quantity": -1`} {
		if !strings.Contains(text, want) {
			t.Errorf("the letter page lacks %q", want)
		}
	}

	// Edit the value: the diff first, then save.
	var value string
	if err := chromedp.Run(ctx,
		chromedp.Value("#value-edit", &value, chromedp.ByID),
	); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Run(ctx,
		chromedp.SetValue("#value-edit", strings.Replace(value, `"quantity": -1`, `"quantity": 4`, 1), chromedp.ByID),
		chromedp.Click("#preview-edit", chromedp.ByID),
		chromedp.WaitVisible("#diff", chromedp.ByID),
		chromedp.Text("#diff", &text, chromedp.ByID),
		shot(t, "console-edit"),
	); err != nil {
		t.Fatalf("preview the edit: %v", err)
	}
	if !strings.Contains(text, `-    "quantity": -1,`) || !strings.Contains(text, `+    "quantity": 4,`) {
		t.Errorf("diff:\n%s", text)
	}
	if err := chromedp.Run(ctx,
		chromedp.Click("#save", chromedp.ByID),
		chromedp.WaitVisible(".notice"),
		chromedp.Text(".notice", &text),
	); err != nil {
		t.Fatalf("save the edit: %v", err)
	}
	if !strings.Contains(text, "marked edited") {
		t.Errorf("after saving: %q", text)
	}

	// Select two letters, dry-run, then redrive them with a rate limit.
	var summary, status string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(base+"?status=pending&reason=max-attempts"),
		chromedp.WaitVisible(`input[value="0:0"]`),
		chromedp.Click(`input[value="0:0"]`),
		chromedp.Click(`input[value="1:0"]`),
		chromedp.Click("#preview", chromedp.ByID),
		chromedp.WaitVisible("#plan", chromedp.ByID),
		chromedp.Text("#summary", &summary, chromedp.ByID),
		shot(t, "console-dry-run"),
	); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if !strings.Contains(summary, "Would redrive 2 of 2") {
		t.Fatalf("dry run summary: %q", summary)
	}
	if n := len(c.records(retryTopic)); n != 1 { // the edited copy only
		t.Fatalf("the dry run published: %d records on %s", n, retryTopic)
	}
	if err := chromedp.Run(ctx,
		chromedp.SetValue(`input[name="rate"]`, "50"),
		chromedp.Click("#run", chromedp.ByID),
		chromedp.WaitVisible(`#job[data-finished="true"]`),
		chromedp.Text("#status", &status, chromedp.ByID),
		shot(t, "console-redrive"),
	); err != nil {
		t.Fatalf("redrive: %v", err)
	}
	if !strings.Contains(status, "2 redriven, 0 refused") {
		t.Errorf("redrive status: %q", status)
	}

	// The letters are marked resolved, and the records are on the target.
	if err := chromedp.Run(ctx,
		chromedp.Navigate(base+"?status=resolved"),
		chromedp.WaitVisible("#letters", chromedp.ByID),
		chromedp.Text("#rows", &text, chromedp.ByID),
	); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"0:0", "0:1", "1:0"} {
		if !strings.Contains(text, want) {
			t.Errorf("%s is not listed as resolved: %q", want, text)
		}
	}
	got := map[string]bool{}
	for _, m := range c.records(retryTopic) {
		got[string(m.Key)] = true
	}
	for _, k := range []string{"O-1001", "O-1002", "O-1003"} {
		if !got[k] {
			t.Errorf("%s is not on %s: %v", k, retryTopic, got)
		}
	}

	// Live: a new dead letter shows up without a reload.
	if err := chromedp.Run(ctx, chromedp.Navigate(base), chromedp.WaitVisible("#letters", chromedp.ByID), rowCount(&n)); err != nil {
		t.Fatal(err)
	}
	c.seed(letter{partition: 1, orderID: "O-live", reason: retrymeta.MaxAttempts, class: failure.Transient, attempts: 5, message: "http-503"})
	if err := chromedp.Run(ctx,
		chromedp.Poll(`document.querySelectorAll("#rows tr[data-pos]").length === `+strconv.Itoa(n+1), nil, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Text("#live", &text, chromedp.ByID),
	); err != nil {
		t.Fatalf("the new dead letter did not appear: %v", err)
	}
	if !strings.Contains(text, "New dead letters") {
		t.Errorf("live notice: %q", text)
	}
}

func TestConsoleIsReadableOnANarrowWindow(t *testing.T) {
	c := newCluster(t)
	c.seed(standardSeed()...)
	base := c.startConsole(t)
	ctx := browser(t, 390, 800)
	var overflow bool
	if err := chromedp.Run(ctx,
		chromedp.Navigate(base),
		chromedp.WaitVisible("#letters", chromedp.ByID),
		// The page does not scroll sideways; the table scrolls in its box.
		chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth + 1`, &overflow),
		shot(t, "console-narrow"),
	); err != nil {
		t.Fatal(err)
	}
	if overflow {
		t.Error("the list page scrolls sideways on a narrow window")
	}
}

// TestConsoleRefusesForgedAndForeignRequests drives the console's HTTP
// directly, as another web page or a rebinding DNS name would.
func TestConsoleRefusesForgedAndForeignRequests(t *testing.T) {
	c := newCluster(t)
	c.seed(standardSeed()...)
	base := c.startConsole(t)
	page := get(t, base, nil)
	csrf := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(page)
	if csrf == nil {
		t.Fatal("no CSRF token in the page")
	}
	post := func(form url.Values, hdr map[string]string) int {
		req, _ := http.NewRequest(http.MethodPost, base+"resolve", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		if h := hdr["Host"]; h != "" {
			req.Host = h
		}
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	form := url.Values{"pos": {"0:0"}, "note": {"forged"}}
	if code := post(form, nil); code != http.StatusForbidden {
		t.Errorf("POST without the CSRF token: %d, want 403", code)
	}
	form.Set("csrf", csrf[1])
	if code := post(form, map[string]string{"Sec-Fetch-Site": "cross-site"}); code != http.StatusForbidden {
		t.Errorf("POST from another site: %d, want 403", code)
	}
	if code := post(form, map[string]string{"Origin": "http://evil.example"}); code != http.StatusForbidden {
		t.Errorf("POST with a foreign Origin: %d, want 403", code)
	}
	if code := post(form, map[string]string{"Host": "evil.example"}); code != http.StatusMisdirectedRequest {
		t.Errorf("request through a rebinding name: %d, want 421", code)
	}
	if pos, _ := c.listPositions("--status", "resolved"); len(pos) != 0 {
		t.Fatalf("a refused request resolved %v", pos)
	}
	if code := post(form, nil); code != http.StatusSeeOther {
		t.Errorf("the console's own form: %d, want 303", code)
	}
	if pos, _ := c.listPositions("--status", "resolved"); strings.Join(pos, " ") != "0:0" {
		t.Errorf("resolved after the good request: %v", pos)
	}
}

func TestConsoleOffLoopbackNeedsAToken(t *testing.T) {
	c := newCluster(t)
	if r := c.run("ui", "--addr", "0.0.0.0:0"); r.code != dlq.ExitUsage || !strings.Contains(r.stderr, "DLQ_UI_TOKEN") {
		t.Fatalf("ui off loopback without a token: %s", r)
	}
	base := c.startConsole(t, "--token", "s3cret")
	res, err := noRedirect.Get(base)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("without the token: %d, want 401", res.StatusCode)
	}
	res, err = noRedirect.Get(base + "?token=s3cret")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || len(res.Cookies()) != 1 || !res.Cookies()[0].HttpOnly {
		t.Errorf("?token=: %d, cookies %v; want a redirect setting an HttpOnly cookie", res.StatusCode, res.Cookies())
	}
	if body := get(t, base, map[string]string{"Authorization": "Bearer s3cret"}); !strings.Contains(body, "Dead letters") {
		t.Errorf("with a bearer token: %q", body)
	}
}

var noRedirect = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t testing.TB, u string, hdr map[string]string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, res.StatusCode, b)
	}
	return string(b)
}
