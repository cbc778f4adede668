package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/walsearch/walsearch/internal/config"
)

// Environment of the browser test.
const (
	// RequireBrowserEnv set to 1 makes the browser test fail, instead of
	// skip, when no Chromium is installed (CI sets it).
	RequireBrowserEnv = "WALSEARCH_REQUIRE_BROWSER"
	// ArtifactsEnv names the directory the browser test saves its
	// screenshots to (default: a temporary directory, removed afterwards).
	ArtifactsEnv = "WALSEARCH_TEST_ARTIFACTS"
)

// chromiumPath finds a Chromium (or Chrome) to drive, or skips the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium found (looked for chromium, chromium-browser, google-chrome): install Debian's chromium package (apt-get install -y chromium) to run the web console's browser test"
	if os.Getenv(RequireBrowserEnv) == "1" {
		t.Fatal(msg + "; " + RequireBrowserEnv + "=1 requires it")
	}
	t.Skip(msg)
	return ""
}

// browser is one headless Chromium tab.
type browser struct {
	t         *testing.T
	ctx       context.Context
	artifacts string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath(t)
	dir := os.Getenv(ArtifactsEnv)
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root in containers has no user namespaces for Chromium's sandbox
		chromedp.DisableGPU,
		chromedp.WindowSize(1400, 1000),
		// Chromium makes temporary directories of its own, which outlive it:
		// they go into the test's.
		chromedp.Env("TMPDIR="+t.TempDir()),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return &browser{t: t, ctx: ctx, artifacts: dir}
}

// do runs actions, failing the test with what was being done.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("browser: %s: %v\npage:\n%s", what, err, b.pageText())
	}
}

// waitFor polls a JavaScript predicate in the page until it is true.
func (b *browser) waitFor(what, predicate string, within time.Duration) {
	b.t.Helper()
	_, err := chromedp.Run(b.ctx, chromedp.Poll[chromedp.Void](predicate,
		chromedp.WithPollingTimeout(within), chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil {
		b.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("browser: %s not within %s: %v\npage:\n%s", what, within, err, b.pageText())
	}
}

// eval returns the value of a JavaScript expression in the page.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("browser: evaluate %s: %v", expr, err)
	}
	return v
}

// fill sets form fields by CSS selector, as typing would, and checks that
// each took its value (a select only takes one of its options).
func (b *browser) fill(what string, values map[string]string) {
	b.t.Helper()
	arg, err := json.Marshal(values)
	if err != nil {
		b.t.Fatal(err)
	}
	bad := eval[[]string](b, `((values) => {
		const bad = [];
		for (const [sel, v] of Object.entries(values)) {
			const e = document.querySelector(sel);
			if (!e) { bad.push(sel + ": missing"); continue; }
			e.value = v;
			e.dispatchEvent(new Event("input", {bubbles: true}));
			if (e.value !== v) bad.push(sel + ": has " + JSON.stringify(e.value));
		}
		return bad;
	})(`+string(arg)+`)`)
	if len(bad) > 0 {
		b.t.Fatalf("browser: %s: %v\npage:\n%s", what, bad, b.pageText())
	}
}

// pageText is the page's visible text, for failure messages.
func (b *browser) pageText() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return s
}

// screenshot saves the whole page as name.png in the artefacts directory.
func (b *browser) screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(b.artifacts, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
	return path
}

// searchTotalAs runs a search with key and returns its total_records.
func (lp *livePipeline) searchTotalAs(key, body string) (int, error) {
	r, err := lp.requestAs(key, "POST", "/search", body)
	if err != nil {
		return 0, err
	}
	var sr struct {
		Meta struct {
			Total int `json:"total_records"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(r, &sr); err != nil {
		return 0, err
	}
	return sr.Meta.Total, nil
}

// TestConsoleInBrowser drives the web console in headless Chromium against
// a running pipeline whose API needs a key: the console asks for the key,
// shows the users table's snapshot reaching 100% with its document count,
// shows a dead letter from a script that throws for one row, replays it
// after the script is fixed and sees it gone and the row searchable, and
// runs searches in the playground. It saves a screenshot of each step.
func TestConsoleInBrowser(t *testing.T) {
	t.Parallel()
	b := newBrowser(t)
	const key = "console-test-key-0123456789"
	const rows = 2000
	lp := startLivePipelineWith(t, rows, liveOpts{
		scripts: map[string]string{
			"users": `function transform(doc) { if (doc.name === "poison") { throw new Error("poison row refused"); } return doc; }`,
		},
		cfg: func(c *config.Config) { c.API.Keys = []config.APIKey{{Key: key}} },
		// The console is loaded while the snapshot may still run: it is
		// the console that has to show it finish.
		ready: func(lp *livePipeline) error {
			_, err := lp.requestAs(key, "GET", "/status", "")
			return err
		},
	})
	within := 120 * time.Second

	b.do("open the console", chromedp.Navigate(lp.base+"/ui"), chromedp.WaitVisible(chromedp.CSS("#key-input")))
	b.do("enter the API key",
		chromedp.SendKeys(chromedp.CSS("#key-input"), key),
		chromedp.Click(chromedp.CSS(`#key-form button[type="submit"]`)))

	// The users table: snapshot done, every row read searchable.
	b.waitFor("users snapshot at 100%", fmt.Sprintf(`(() => {
		const q = (s) => document.querySelector(s);
		return q('[data-snapshot="users"]')?.textContent === "done" &&
			q('[data-progress="users"]')?.textContent === "100%%" &&
			q('[data-documents="users"]')?.textContent === %q &&
			q('#key-panel').hidden;
	})()`, "2,000"), within)
	// The indices list comes from GET /engine: it can show a refresh
	// older than the table's line did.
	b.waitFor("users_v1 with its documents in the indices", `(() => {
		const cells = document.querySelectorAll('[data-engine-index="users"] td');
		return cells.length === 3 && cells[1].textContent === "users_v1" && cells[2].textContent === "2,000";
	})()`, within)
	if got := eval[string](b, `document.getElementById("breaker").textContent`); got != "circuit breaker: closed" {
		t.Errorf("breaker badge %q, want closed", got)
	}
	if got := eval[string](b, `document.querySelector('[data-component="elasticsearch"] .badge').textContent`); got != "ok" {
		t.Errorf("health: elasticsearch %q, want ok", got)
	}
	b.screenshot("console-progress")

	// A row the script throws for: a dead letter, shown with its error.
	ctx := context.Background()
	if _, err := lp.conn.Exec(ctx, `INSERT INTO users (id, name, status) VALUES (100001, 'poison', 'active')`); err != nil {
		t.Fatal(err)
	}
	b.waitFor("the dead letter listed", `(() => {
		const rows = document.querySelectorAll('#dlq tbody tr[data-seq]');
		return rows.length === 1 && rows[0].textContent.includes("poison row refused") &&
			rows[0].textContent.includes("public.users") &&
			document.querySelector('[data-dlq="users"]')?.textContent === "1";
	})()`, within)
	seq := eval[string](b, `document.querySelector('#dlq tbody tr[data-seq]').dataset.seq`)
	b.do("open the dead letter", chromedp.Click(chromedp.CSS(`#dlq tr[data-seq="`+seq+`"] summary`)))
	b.screenshot("console-dead-letter")

	// Fix the script; a probe row shows when the new script runs.
	fixed := `function transform(doc) { doc.status = "fixed"; return doc; }`
	lp.writeScript(t, "users", fixed)
	if _, err := lp.conn.Exec(ctx, `INSERT INTO users (id, name, status) VALUES (100002, 'probe', 'active')`); err != nil {
		t.Fatal(err)
	}
	lp.waitFor(t, within, func(lp *livePipeline) error {
		lp.touch(t, 100002)
		n, err := lp.searchTotalAs(key, `{"index":"users","query_fields":{"id":100002,"status":"fixed"}}`)
		if err == nil && n != 1 {
			err = fmt.Errorf("%d documents", n)
		}
		return err
	})

	b.do("click replay", chromedp.Click(chromedp.CSS(`button[data-replay="`+seq+`"]`)))
	b.waitFor("the dead letter gone and its row searchable", fmt.Sprintf(`(() => {
		const q = (s) => document.querySelector(s);
		return document.querySelectorAll('#dlq tbody tr[data-seq]').length === 0 &&
			!q('#dlq-empty').hidden && q('[data-dlq="users"]')?.textContent === "0" &&
			q('[data-documents="users"]')?.textContent === %q;
	})()`, "2,002"), within)
	if n, err := lp.searchTotalAs(key, `{"index":"users","query_fields":{"id":100001,"status":"fixed"}}`); err != nil || n != 1 {
		t.Errorf("replayed row: %d documents (%v), want it indexed by the fixed script", n, err)
	}
	b.screenshot("console-replayed")

	// The search playground: full text, then filters, sort and paging.
	b.waitFor("the index picker", `document.querySelector('#s-index option[value="users"]') !== null &&
		document.querySelector('#s-sort option[value="age"]') !== null`, within)
	b.fill("search for poison", map[string]string{"#s-index": "users", "#s-q": "poison", "#s-fields": "id,name,status"})
	b.do("search for poison", chromedp.Click(chromedp.CSS("#s-run")))
	b.waitFor("one result", `document.getElementById("s-meta").dataset.total === "1" &&
		document.querySelector("#s-results tbody").textContent.includes("poison")`, within)
	curl := eval[string](b, `document.getElementById("s-curl").textContent`)
	for _, want := range []string{"curl -sS '" + lp.base + "/search'", `Authorization: Bearer $WALSEARCH_API_KEY`, `"q":"poison"`, `"fields":["id","name","status"]`} {
		if !strings.Contains(curl, want) {
			t.Errorf("curl command lacks %s:\n%s", want, curl)
		}
	}
	if strings.Contains(curl, key) {
		t.Errorf("curl command shows the API key:\n%s", curl)
	}
	b.fill("filter, sort and page", map[string]string{"#s-q": "", "#s-fields": "id,name,status,age",
		"#s-filters": `{"status": "active", "age": {"gte": 60}}`, "#s-sort": "id", "#s-order": "desc", "#s-size": "5", "#s-page": "1"})
	b.do("filter, sort and page", chromedp.Click(chromedp.CSS("#s-run")))
	// Active users are the even ids; age is 20 + id % 50, so age ≥ 60
	// holds for ids ending in 40..48 of every 50: 5 of each 50 ids, 200 of
	// the 2000 rows.
	want, err := lp.searchTotalAs(key, `{"index":"users","query_fields":{"status":"active","age":{"gte":60}}}`)
	if err != nil || want != 200 {
		t.Fatalf("API: %d active users aged 60 or more (%v), want 200", want, err)
	}
	b.waitFor("the filtered first page", `document.getElementById("s-meta").textContent === "200 results · page 1 of 40" &&
		document.querySelector("#s-results tbody tr td").textContent === "1998"`, within)
	b.do("next page", chromedp.Click(chromedp.CSS("#s-next")))
	b.waitFor("the second page", `document.getElementById("s-meta").textContent === "200 results · page 2 of 40" &&
		document.querySelector("#s-results tbody tr td").textContent === "1948" && !document.getElementById("s-prev").disabled`, within)
	b.screenshot("console-search")
}

// TestConsoleInBrowserWithoutKeys opens the console of an API without keys
// (loopback only): it never asks for a key and shows the pipeline at once.
func TestConsoleInBrowserWithoutKeys(t *testing.T) {
	t.Parallel()
	b := newBrowser(t)
	lp := startLivePipeline(t, 40)
	within := 120 * time.Second
	b.do("open the console", chromedp.Navigate(lp.base+"/ui"))
	b.waitFor("users at 100% without a key", `(() => {
		const q = (s) => document.querySelector(s);
		return q('[data-progress="users"]')?.textContent === "100%" &&
			q('[data-documents="users"]')?.textContent === "40" &&
			q('[data-engine-index="users"]') !== null && q('#updated').dataset.ok === "1" &&
			q('#key-panel').hidden && q('#error').hidden && q('#s-index option[value="users"]') !== null;
	})()`, within)
	b.fill("search", map[string]string{"#s-index": "users", "#s-filters": `{"status": "active"}`})
	b.do("search", chromedp.Click(chromedp.CSS("#s-run")))
	b.waitFor("20 active users", `document.getElementById("s-meta").dataset.total === "20"`, within)
	if curl := eval[string](b, `document.getElementById("s-curl").textContent`); strings.Contains(curl, "Authorization") {
		t.Errorf("curl command without keys sends a key:\n%s", curl)
	}
}
