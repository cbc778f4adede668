package eslite

import (
	"testing"
	"time"

	"github.com/walsearch/walsearch/internal/eslite/search"
)

func TestPersistenceAcrossCloseAndOpen(t *testing.T) {
	dir := t.TempDir()
	e, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	clock := setClock(e, time.Now())
	do(t, e, "PUT", "/p", `{"settings":{"index":{"refresh_interval":"-1","number_of_replicas":0}},"mappings":{"properties":{"k":{"type":"keyword"}}},"aliases":{"pa":{}}}`).must(t, 200)
	do(t, e, "PUT", "/p/_doc/1?version=7&version_type=external", `{"k":"one"}`).must(t, 201)
	do(t, e, "PUT", "/p/_doc/2", `{"k":"two","n":5}`).must(t, 201)
	do(t, e, "PUT", "/p/_doc/2", `{"k":"two","n":6}`).must(t, 200)
	do(t, e, "PUT", "/p/_doc/3?version=40&version_type=external", `{"k":"three"}`).must(t, 201)
	do(t, e, "DELETE", "/p/_doc/3?version=41&version_type=external", "").must(t, 200)
	// Only part of the writes reach the search index before the restart;
	// the rest must be replayed from the store.
	do(t, e, "POST", "/p/_refresh", "").must(t, 200)
	do(t, e, "PUT", "/p/_doc/4", `{"k":"four"}`).must(t, 201)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	e2 := openTest(t, dir)
	setClock(e2, clock.now())
	g := do(t, e2, "GET", "/p/_doc/1", "").must(t, 200)
	if g.get("_version") != int64(7) || g.get("_source.k") != "one" {
		t.Errorf("doc 1 after restart: %s", g.raw)
	}
	g = do(t, e2, "GET", "/pa/_doc/2", "").must(t, 200)
	if g.get("_version") != int64(2) || g.get("_seq_no") != int64(2) || g.get("_source.n") != int64(6) {
		t.Errorf("doc 2 through the alias after restart: %s", g.raw)
	}
	do(t, e2, "GET", "/p/_doc/3", "").must(t, 404)
	// The tombstone survived: an older external version is still refused.
	r := do(t, e2, "PUT", "/p/_doc/3?version=41&version_type=external", `{"k":"stale"}`).must(t, 409)
	if r.get("error.reason") != "[3]: version conflict, current version [41] is higher or equal to the one provided [41]" {
		t.Errorf("reason = %v", r.get("error.reason"))
	}
	// Sequence numbers continue where they stopped.
	r = do(t, e2, "PUT", "/p/_doc/5", `{"k":"five"}`).must(t, 201)
	if r.get("_seq_no") != int64(6) {
		t.Errorf("_seq_no after restart = %v, want 6", r.get("_seq_no"))
	}
	s := do(t, e2, "GET", "/p/_settings", "").must(t, 200)
	if s.get("p.settings.index.refresh_interval") != "-1" {
		t.Errorf("settings after restart: %s", s.raw)
	}
	m := do(t, e2, "GET", "/p/_mapping", "").must(t, 200)
	if m.get("p.mappings.properties.k.type") != "keyword" || m.get("p.mappings.properties.n.type") != "long" {
		t.Errorf("mapping after restart: %s", m.raw)
	}
	// Replay brought the search index up to date: 1, 2 and 4 are live.
	e2.mu.RLock()
	ix := e2.indices["p"]
	e2.mu.RUnlock()
	if got := ix.search.DocCount(); got != 3 {
		t.Errorf("search index holds %d documents after replay, want 3", got)
	}
	if got := ix.search.Checkpoint(); got != 6 {
		t.Errorf("search checkpoint = %d, want 6", got)
	}
}

func TestDeletedIndexDoesNotComeBack(t *testing.T) {
	dir := t.TempDir()
	e, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	do(t, e, "PUT", "/gone/_doc/1", `{"a":1}`).must(t, 201)
	do(t, e, "DELETE", "/gone", "").must(t, 200)
	do(t, e, "PUT", "/kept/_doc/1", `{"a":1}`).must(t, 201)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e2 := openTest(t, dir)
	do(t, e2, "HEAD", "/gone", "").must(t, 404)
	do(t, e2, "HEAD", "/kept", "").must(t, 200)
	r := do(t, e2, "PUT", "/gone/_doc/1", `{"a":2}`).must(t, 201)
	if r.get("_version") != int64(1) {
		t.Errorf("recreated index kept an old version: %s", r.raw)
	}
}

func TestTombstonesArePrunedAfterRefresh(t *testing.T) {
	dir := t.TempDir()
	e := openTest(t, dir)
	clock := setClock(e, time.Now())
	do(t, e, "PUT", "/t", `{"settings":{"index":{"gc_deletes":"1s","refresh_interval":"-1"}}}`).must(t, 200)
	do(t, e, "DELETE", "/t/_doc/1?version=5&version_type=external", "").must(t, 404)
	clock.add(2 * time.Second)
	do(t, e, "POST", "/t/_refresh", "").must(t, 200)
	e.mu.RLock()
	ix := e.indices["t"]
	e.mu.RUnlock()
	ix.mu.RLock()
	_, kept := ix.docs["1"]
	ix.mu.RUnlock()
	if kept {
		t.Fatal("tombstone older than gc_deletes survived a refresh")
	}
	n := 0
	if _, err := e.store.loadDocs(ix.uuid, func(string, *docEntry) { n++ }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("store still holds %d entries", n)
	}
}

// A crash can lose the search index's last batches after the store already
// pruned a tombstone those batches were deleting; reopening must not leave
// the deleted document searchable.
func TestReopenDropsGhostsOfPrunedTombstones(t *testing.T) {
	dir := t.TempDir()
	e, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	clock := setClock(e, time.Now())
	do(t, e, "PUT", "/g", `{"settings":{"index":{"refresh_interval":"-1","gc_deletes":"0s"}}}`).must(t, 200)
	do(t, e, "PUT", "/g/_doc/1?refresh=true", `{"a":1}`).must(t, 201)
	do(t, e, "PUT", "/g/_doc/2?refresh=true", `{"a":2}`).must(t, 201)
	ix := lookup(e, "g")
	// Simulate the lost batch: the store records the delete and prunes its
	// tombstone, but the search index never applies it.
	do(t, e, "DELETE", "/g/_doc/1", "").must(t, 200)
	ix.mu.Lock()
	ix.pending = map[string]search.Op{}
	ix.mu.Unlock()
	clock.add(time.Second)
	if err := e.pruneTombstones(ix, ix.seqNo, 0); err != nil {
		t.Fatal(err)
	}
	if d, _ := ix.get("1"); d != nil || ix.docs["1"] != nil {
		t.Fatal("the tombstone was not pruned; the test would prove nothing")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e2 := openTest(t, dir)
	if n := searchCount(e2, "g"); n != 1 {
		t.Fatalf("search index holds %d documents after reopen, want 1", n)
	}
}

// TestSourcesLiveInTheStore checks that with a data directory the realtime
// document map keeps no _source, before and after a restart, and that GET,
// _mget, _source and partial updates read it back from the store.
func TestSourcesLiveInTheStore(t *testing.T) {
	dir := t.TempDir()
	noSources := func(e *Engine) {
		t.Helper()
		ix := lookup(e, "src")
		ix.mu.RLock()
		defer ix.mu.RUnlock()
		for id, d := range ix.docs {
			if d.source != nil {
				t.Fatalf("document %q keeps its _source in memory", id)
			}
		}
	}
	e := openTest(t, dir)
	do(t, e, "PUT", "/src/_doc/1", `{"a":1,"b":"x"}`).must(t, 201)
	do(t, e, "POST", "/src/_bulk", "{\"index\":{\"_id\":\"2\"}}\n{\"a\":2}\n{\"update\":{\"_id\":\"1\"}}\n{\"doc\":{\"b\":\"y\"}}\n").must(t, 200)
	noSources(e)
	check := func(e *Engine) {
		t.Helper()
		if g := do(t, e, "GET", "/src/_doc/1", "").must(t, 200); g.get("_source.b") != "y" || g.get("_source.a") != int64(1) || g.get("_version") != int64(2) {
			t.Fatalf("GET: %s", g.raw)
		}
		if s := do(t, e, "GET", "/src/_source/2", "").must(t, 200); string(s.raw) != `{"a":2}` {
			t.Fatalf("_source: %s", s.raw)
		}
		if m := do(t, e, "POST", "/_mget", `{"docs":[{"_index":"src","_id":"2"}]}`).must(t, 200); m.get("docs.0._source.a") != int64(2) {
			t.Fatalf("_mget: %s", m.raw)
		}
	}
	check(e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e2 := openTest(t, dir)
	noSources(e2)
	check(e2)
	// detect_noop compares against the stored source.
	if r := do(t, e2, "POST", "/src/_update/1", `{"doc":{"b":"y"}}`).must(t, 200); r.get("result") != "noop" {
		t.Fatalf("update with the same values: %s", r.raw)
	}
	noSources(e2)
}
