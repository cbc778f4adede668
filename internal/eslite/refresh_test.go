package eslite

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func lookup(e *Engine, name string) *index {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.indices[name]
}

func searchCount(e *Engine, name string) uint64 { return lookup(e, name).search.DocCount() }

func TestRefreshPolicies(t *testing.T) {
	e := openTest(t, "")
	do(t, e, "PUT", "/r", `{"settings":{"refresh_interval":"-1"}}`).must(t, 200)
	do(t, e, "PUT", "/r/_doc/1", `{"a":1}`).must(t, 201)
	if n := searchCount(e, "r"); n != 0 {
		t.Fatalf("a write without refresh is visible to search with refresh_interval -1 (%d docs)", n)
	}
	// GET is realtime regardless.
	do(t, e, "GET", "/r/_doc/1", "").must(t, 200)

	r := do(t, e, "PUT", "/r/_doc/2?refresh=true", `{"a":2}`).must(t, 201)
	if r.get("forced_refresh") != true {
		t.Errorf("refresh=true without forced_refresh: %s", r.raw)
	}
	if n := searchCount(e, "r"); n != 2 {
		t.Fatalf("after refresh=true search holds %d docs, want 2", n)
	}

	// wait_for returns only after a refresh made the write visible.
	done := make(chan reply, 1)
	go func() { done <- do(t, e, "PUT", "/r/_doc/3?refresh=wait_for", `{"a":3}`) }()
	eventually(t, 5*time.Second, "the write to be stored", func() bool { d, _ := lookup(e, "r").get("3"); return d != nil })
	select {
	case r := <-done:
		t.Fatalf("wait_for returned before any refresh: %s", r.raw)
	default:
	}
	do(t, e, "POST", "/r/_refresh", "").must(t, 200)
	select {
	case r := <-done:
		r.must(t, 201)
		if _, forced := r.body["forced_refresh"]; forced {
			t.Errorf("wait_for reported forced_refresh: %s", r.raw)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wait_for did not return after _refresh")
	}
	if n := searchCount(e, "r"); n != 3 {
		t.Fatalf("search holds %d docs, want 3", n)
	}
}

func TestBackgroundRefreshHonoursInterval(t *testing.T) {
	e := openTest(t, "")
	do(t, e, "PUT", "/bg", `{"settings":{"refresh_interval":"100ms"}}`).must(t, 200)
	do(t, e, "PUT", "/bg/_doc/1", `{"a":1}`).must(t, 201)
	eventually(t, 5*time.Second, "the background refresh", func() bool { return searchCount(e, "bg") == 1 })

	// Turning refresh off stops it; turning it on again resumes.
	do(t, e, "PUT", "/bg/_settings", `{"index":{"refresh_interval":"-1"}}`).must(t, 200)
	do(t, e, "PUT", "/bg/_doc/2", `{"a":2}`).must(t, 201)
	e.mu.RLock()
	due := e.indices["bg"].needsRefresh(time.Now().Add(time.Hour))
	e.mu.RUnlock()
	if due {
		t.Fatal("an index with refresh_interval -1 is due for a background refresh")
	}
	do(t, e, "PUT", "/bg/_settings", `{"index":{"refresh_interval":"50ms"}}`).must(t, 200)
	eventually(t, 5*time.Second, "refresh after re-enabling", func() bool { return searchCount(e, "bg") == 2 })
}

func TestWaitForHonoursContext(t *testing.T) {
	e := openTest(t, "")
	do(t, e, "PUT", "/w", `{"settings":{"refresh_interval":"-1"}}`).must(t, 200)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "PUT", "http://x/w/_doc/1?refresh=wait_for", strings.NewReader(`{"a":1}`))
	req.Header.Set("Content-Type", "application/json")
	errc := make(chan error, 1)
	go func() {
		resp, err := e.RoundTripper().RoundTrip(req)
		if resp != nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	eventually(t, 5*time.Second, "the write to be stored", func() bool { d, _ := lookup(e, "w").get("1"); return d != nil })
	cancel()
	select {
	case err := <-errc:
		if err != context.Canceled {
			t.Fatalf("RoundTrip error = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RoundTrip did not return after cancel")
	}
}

// TestStagedWritesStayInvisible fills the queue of unrefreshed writes past
// the staging threshold: the writer indexes them, yet search sees none of
// them until a refresh, and then all of them.
func TestStagedWritesStayInvisible(t *testing.T) {
	e := openTest(t, t.TempDir())
	e.stageAt = 100
	do(t, e, "PUT", "/s", `{"settings":{"refresh_interval":"-1"}}`).must(t, 200)
	do(t, e, "PUT", "/s/_doc/first?refresh=true", `{"n":0}`).must(t, 201)
	var b strings.Builder
	n := e.stageAt + 10
	for i := range n {
		fmt.Fprintf(&b, "{\"index\":{\"_id\":\"%d\"}}\n{\"n\":%d}\n", i, i)
	}
	do(t, e, "POST", "/s/_bulk", b.String()).must(t, 200)
	ix := lookup(e, "s")
	ix.mu.RLock()
	queued, staged := len(ix.pending), ix.staged
	ix.mu.RUnlock()
	if !staged || queued >= e.stageAt {
		t.Fatalf("after %d writes: staged=%v, %d still queued", n, staged, queued)
	}
	if got := searchCount(e, "s"); got != 1 {
		t.Fatalf("staged writes are visible: search holds %d docs, want 1", got)
	}
	r := do(t, e, "POST", "/s/_search", `{"query":{"range":{"n":{"gte":0}}},"size":0}`).must(t, 200)
	if got := fmt.Sprint(r.get("hits.total.value")); got != "1" {
		t.Fatalf("search before refresh: total %v, want 1", got)
	}
	do(t, e, "POST", "/s/_refresh", "").must(t, 200)
	if got := searchCount(e, "s"); got != uint64(n+1) {
		t.Fatalf("after refresh search holds %d docs, want %d", got, n+1)
	}
}

// TestRefresherIndexesWaitingWritesAhead: writes far fewer than the staging
// threshold, but at least stageMin, are indexed by the refresher once they
// have waited a quarter of the refresh interval, invisible to search until
// the refresh, which then has little left to index.
func TestRefresherIndexesWaitingWritesAhead(t *testing.T) {
	e := openTest(t, t.TempDir())
	const interval = 4 * time.Second
	do(t, e, "PUT", "/w", `{"settings":{"refresh_interval":"4s"}}`).must(t, 200)
	do(t, e, "PUT", "/w/_doc/first", `{"n":0}`).must(t, 201)
	eventually(t, 10*time.Second, "the first refresh", func() bool { return searchCount(e, "w") == 1 })
	ix := lookup(e, "w")
	ix.visMu.Lock()
	refreshed := ix.lastRefresh
	ix.visMu.Unlock()

	var b strings.Builder
	for i := range stageMin {
		fmt.Fprintf(&b, "{\"index\":{\"_id\":\"%d\"}}\n{\"n\":%d}\n", i, i+1)
	}
	before := time.Now() // the writes are queued after this
	do(t, e, "POST", "/w/_bulk", b.String()).must(t, 200)
	written := time.Now()
	staged := func() bool {
		ix.mu.RLock()
		defer ix.mu.RUnlock()
		return ix.staged && len(ix.pending) == 0
	}
	for !staged() {
		ix.visMu.Lock()
		again := ix.lastRefresh != refreshed
		ix.visMu.Unlock()
		if again {
			t.Fatalf("the writes waited %s and were refreshed without being indexed ahead of the refresh", time.Since(written))
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
	if waited := time.Since(before); waited < stageDelay(interval) {
		t.Fatalf("the writes were indexed ahead after %s, before they waited %s", waited, stageDelay(interval))
	}
	if got := searchCount(e, "w"); got != 1 {
		t.Fatalf("writes indexed ahead are visible before the refresh: search holds %d docs, want 1", got)
	}
	eventually(t, 3*interval, "the refresh after indexing ahead", func() bool { return searchCount(e, "w") == 1+stageMin })
}

// TestRefresherLeavesFewWritesToTheRefresh: fewer than stageMin waiting
// writes are not indexed ahead as soon as they waited stageDelay (each
// such step would make a tiny segment for bleve to merge again), but once,
// when the refresh is due within stageLead; the refresh publishes them.
func TestRefresherLeavesFewWritesToTheRefresh(t *testing.T) {
	e := openTest(t, t.TempDir())
	const interval = 4 * time.Second
	do(t, e, "PUT", "/f", `{"settings":{"refresh_interval":"4s"}}`).must(t, 200)
	do(t, e, "PUT", "/f/_doc/first", `{"n":0}`).must(t, 201)
	eventually(t, 10*time.Second, "the first refresh", func() bool { return searchCount(e, "f") == 1 })
	ix := lookup(e, "f")
	ix.visMu.Lock()
	refreshed := ix.lastRefresh
	ix.visMu.Unlock()

	do(t, e, "PUT", "/f/_doc/second", `{"n":1}`).must(t, 201)
	stagedAhead := false
	for {
		ix.mu.RLock()
		staged := ix.staged
		ix.mu.RUnlock()
		if staged && !stagedAhead {
			stagedAhead = true
			if since := time.Since(refreshed); since < interval-stageLead(interval) {
				t.Fatalf("a single waiting write was indexed ahead %s after the last refresh, before the next was due within %s", since, stageLead(interval))
			}
		}
		ix.visMu.Lock()
		again := ix.lastRefresh != refreshed
		ix.visMu.Unlock()
		if again {
			break
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
	if !stagedAhead {
		t.Error("the write was not indexed ahead of the refresh it waited for")
	}
	eventually(t, 3*interval, "the refresh", func() bool { return searchCount(e, "f") == 2 })
}

// TestRefresherIndexesAheadOnceBeforeTheRefresh: a slow, steady stream of
// writes is indexed ahead once before each refresh, not a few writes at a
// time on every tick once the refresh is due within stageLead.
func TestRefresherIndexesAheadOnceBeforeTheRefresh(t *testing.T) {
	e := openTest(t, t.TempDir())
	const interval = 2 * time.Second
	do(t, e, "PUT", "/s", `{"settings":{"refresh_interval":"2s"}}`).must(t, 200)
	do(t, e, "PUT", "/s/_doc/first", `{"n":0}`).must(t, 201)
	eventually(t, 10*time.Second, "the first refresh", func() bool { return searchCount(e, "s") == 1 })
	ix := lookup(e, "s")
	ix.visMu.Lock()
	refreshed := ix.lastRefresh
	ix.visMu.Unlock()
	ix.mu.RLock()
	steps := ix.stageSteps
	ix.mu.RUnlock()

	// A write every 20 ms (far fewer than stageMin in an interval) until
	// the next refresh.
	for i := 1; ; i++ {
		do(t, e, "PUT", fmt.Sprintf("/s/_doc/%d", i), fmt.Sprintf(`{"n":%d}`, i)).must(t, 201)
		ix.visMu.Lock()
		again := ix.lastRefresh != refreshed
		ix.visMu.Unlock()
		if again {
			break
		}
		if time.Since(refreshed) > 3*interval {
			t.Fatal("no refresh within three intervals")
		}
		time.Sleep(20 * time.Millisecond) // pacing the writes
	}
	ix.mu.RLock()
	steps = ix.stageSteps - steps
	ix.mu.RUnlock()
	if steps > 2 {
		t.Fatalf("%d indexing steps ahead of one refresh, want 1 (2 if the refresh came while the first ran)", steps)
	}
}
