package eslite

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// seedDocs indexes n documents {"n": i} into name, refreshed.
func seedDocs(t *testing.T, e *Engine, name string, n int) {
	t.Helper()
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "{\"index\":{\"_id\":\"%d\"}}\n{\"n\":%d}\n", i, i)
	}
	r := do(t, e, "POST", "/"+name+"/_bulk?refresh=true", b.String()).must(t, 200)
	if r.get("errors") != false {
		t.Fatalf("bulk failed: %s", r.raw)
	}
}

func openScrollID(t *testing.T, e *Engine, name, keepAlive string) string {
	t.Helper()
	r := do(t, e, "POST", "/"+name+"/_search?scroll="+keepAlive, `{"size":1,"sort":["_doc"]}`).must(t, 200)
	id, _ := r.get("_scroll_id").(string)
	if id == "" {
		t.Fatalf("no _scroll_id in %s", r.raw)
	}
	return id
}

func TestScrollExpiresAfterKeepAlive(t *testing.T) {
	e := openTest(t, "")
	clock := setClock(e, time.Now())
	seedDocs(t, e, "ka", 5)
	id := openScrollID(t, e, "ka", "30s")
	next := func() reply {
		return do(t, e, "POST", "/_search/scroll", `{"scroll_id":"`+id+`"}`)
	}
	// Every use extends the keep-alive.
	clock.add(20 * time.Second)
	next().must(t, 200)
	clock.add(20 * time.Second)
	next().must(t, 200)
	clock.add(31 * time.Second)
	r := next().must(t, 404)
	if r.get("error.root_cause.0.type") != "search_context_missing_exception" {
		t.Fatalf("want search_context_missing_exception, got %s", r.raw)
	}
	if s, _ := e.openContexts(); s != 0 {
		t.Fatalf("%d scrolls open after expiry, want 0", s)
	}
}

func TestReaperFreesExpiredContexts(t *testing.T) {
	e := openTest(t, "")
	clock := setClock(e, time.Now())
	seedDocs(t, e, "reap", 3)
	openScrollID(t, e, "reap", "1m")
	do(t, e, "POST", "/reap/_pit?keep_alive=2m", "").must(t, 200)
	e.reapExpired()
	if s, p := e.openContexts(); s != 1 || p != 1 {
		t.Fatalf("open contexts %d scrolls, %d pits before expiry, want 1 and 1", s, p)
	}
	clock.add(61 * time.Second)
	e.reapExpired()
	if s, p := e.openContexts(); s != 0 || p != 1 {
		t.Fatalf("open contexts %d scrolls, %d pits after the scroll expired, want 0 and 1", s, p)
	}
	clock.add(2 * time.Minute)
	e.reapExpired()
	if s, p := e.openContexts(); s != 0 || p != 0 {
		t.Fatalf("open contexts %d scrolls, %d pits after both expired, want 0 and 0", s, p)
	}
}

func TestContextLimits(t *testing.T) {
	e := openTest(t, "")
	e.maxScrolls, e.maxPITs = 2, 1
	seedDocs(t, e, "cap", 3)
	first := openScrollID(t, e, "cap", "1m")
	openScrollID(t, e, "cap", "1m")
	r := do(t, e, "POST", "/cap/_search?scroll=1m", `{}`).must(t, 429)
	if r.get("error.type") != "search_phase_execution_exception" || r.get("error.root_cause.0.type") != "too_many_scroll_contexts_exception" {
		t.Fatalf("want too_many_scroll_contexts_exception, got %s", r.raw)
	}
	if !strings.Contains(string(r.raw), "Must be less than or equal to: [2]") {
		t.Fatalf("want the limit in the reason, got %s", r.raw)
	}
	// Freeing one makes room again.
	do(t, e, "DELETE", "/_search/scroll", `{"scroll_id":"`+first+`"}`).must(t, 200)
	openScrollID(t, e, "cap", "1m")

	do(t, e, "POST", "/cap/_pit?keep_alive=1m", "").must(t, 200)
	r = do(t, e, "POST", "/cap/_pit?keep_alive=1m", "").must(t, 429)
	if r.get("error.type") != "es_rejected_execution_exception" {
		t.Fatalf("want es_rejected_execution_exception, got %s", r.raw)
	}
	// Keep-alives past search.max_keep_alive are refused.
	r = do(t, e, "POST", "/_search/scroll?scroll=2d", `{"scroll_id":"`+first+`"}`).must(t, 400)
	if !strings.Contains(string(r.raw), "Keep alive for request (2d) is too large") {
		t.Fatalf("want the max_keep_alive refusal, got %s", r.raw)
	}
}

func TestClearAllScrollsLeavesPITs(t *testing.T) {
	e := openTest(t, "")
	seedDocs(t, e, "all", 3)
	openScrollID(t, e, "all", "1m")
	openScrollID(t, e, "all", "1m")
	do(t, e, "POST", "/all/_pit?keep_alive=1m", "").must(t, 200)
	r := do(t, e, "DELETE", "/_search/scroll/_all", "").must(t, 200)
	if r.get("num_freed") != int64(2) {
		t.Fatalf("num_freed = %v, want 2: %s", r.get("num_freed"), r.raw)
	}
	if s, p := e.openContexts(); s != 0 || p != 1 {
		t.Fatalf("after clearing all scrolls: %d scrolls, %d pits; want 0 and 1", s, p)
	}
	do(t, e, "DELETE", "/_search/scroll/_all", "").must(t, 404)
}

func TestUpdateByQueryRefusesScripts(t *testing.T) {
	e := openTest(t, "")
	seedDocs(t, e, "ubqs", 2)
	for _, tc := range []struct{ body, lang string }{
		{`{"script":{"source":"ctx._source.n++"}}`, "painless"},
		{`{"script":{"source":"1","lang":"expression"}}`, "expression"},
		{`{"script":"ctx._source.n++"}`, "painless"},
	} {
		r := do(t, e, "POST", "/ubqs/_update_by_query", tc.body).must(t, 400)
		if r.get("error.type") != "illegal_argument_exception" || r.get("error.reason") != "script_lang not supported ["+tc.lang+"]" {
			t.Errorf("%s: got %s", tc.body, r.raw)
		}
	}
	// Nothing was written.
	if v := do(t, e, "GET", "/ubqs/_doc/0", "").must(t, 200).get("_version"); v != int64(1) {
		t.Fatalf("_version = %v after refused scripts, want 1", v)
	}
}

// TestScrollWhileWriting pages through a scroll while other goroutines
// write, refresh and open and close points in time on the same index: the
// scroll sees exactly the documents it opened on, and the race detector
// sees no race.
func TestScrollWhileWriting(t *testing.T) {
	e := openTest(t, "")
	const n = 300
	seedDocs(t, e, "busy", n)
	r := do(t, e, "POST", "/busy/_search?scroll=1m", `{"size":7}`).must(t, 200)
	id := r.get("_scroll_id").(string)
	seen := map[any]bool{}
	for _, h := range r.get("hits.hits").([]any) {
		seen[h.(map[string]any)["_id"]] = true
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if r := do(t, e, "PUT", fmt.Sprintf("/busy/_doc/new-%d?refresh=true", i), `{"n":-1}`); r.status != 201 {
				t.Errorf("index: %d %s", r.status, r.raw)
				return
			}
			do(t, e, "DELETE", fmt.Sprintf("/busy/_doc/%d", i%n), "")
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			p := do(t, e, "POST", "/busy/_pit?keep_alive=1m", "")
			pit, _ := p.get("id").(string)
			s := do(t, e, "POST", "/_search", `{"pit":{"id":"`+pit+`"},"size":3,"sort":[{"n":"asc"}]}`)
			c := do(t, e, "DELETE", "/_pit", `{"id":"`+pit+`"}`)
			if p.status != 200 || s.status != 200 || c.status != 200 {
				t.Errorf("point in time: open %d, search %d %s, close %d", p.status, s.status, s.raw, c.status)
				return
			}
		}
	}()
	for page := 0; page < 1000; page++ {
		r := do(t, e, "POST", "/_search/scroll", `{"scroll":"1m","scroll_id":"`+id+`"}`).must(t, 200)
		hits := r.get("hits.hits").([]any)
		if len(hits) == 0 {
			break
		}
		for _, h := range hits {
			hid := h.(map[string]any)["_id"]
			if seen[hid] {
				t.Errorf("scroll returned %v twice", hid)
			}
			seen[hid] = true
		}
	}
	close(stop)
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("scroll returned %d documents, want the %d it opened on", len(seen), n)
	}
	for id := range seen {
		if s, _ := id.(string); strings.HasPrefix(s, "new-") {
			t.Fatalf("scroll returned %s, written after it opened", s)
		}
	}
}
