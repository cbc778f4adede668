package sink_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/bus/bustest"
	"github.com/walsearch/walsearch/internal/esclient"
	"github.com/walsearch/walsearch/internal/eslite"
	"github.com/walsearch/walsearch/sink"
)

type env struct {
	t   *testing.T
	bus *bustest.Bus
	es  *esclient.Client
	pub *bus.DocPublisher
}

// faultyTransport is a fault-injection wrapper around the engine: while
// failing is positive it answers _bulk requests with status (or drops the
// connection when status is 0) and counts down.
type faultyTransport struct {
	next    http.RoundTripper
	failing atomic.Int64
	status  int
	seen    atomic.Int64
}

func (f *faultyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/_bulk") {
		f.seen.Add(1)
		if f.failing.Add(-1) >= 0 {
			if f.status == 0 {
				return nil, fmt.Errorf("fault injection: connection reset")
			}
			return &http.Response{StatusCode: f.status, Header: http.Header{}, Request: r,
				Body: io.NopCloser(strings.NewReader(`{"error":{"type":"es_rejected_execution_exception","reason":"fault injection"},"status":429}`))}, nil
		}
	}
	return f.next.RoundTrip(r)
}

func newEnv(t *testing.T, wrap func(http.RoundTripper) http.RoundTripper) *env {
	t.Helper()
	eng, err := eslite.Open(eslite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	rt := eng.RoundTripper()
	if wrap != nil {
		rt = wrap(rt)
	}
	es, err := esclient.New(esclient.Config{Transport: rt})
	if err != nil {
		t.Fatal(err)
	}
	b := bustest.Open(t)
	pub, err := b.NewDocPublisher()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	return &env{t: t, bus: b, es: es, pub: pub}
}

func (e *env) publish(docs ...*bus.Doc) {
	e.t.Helper()
	ctx := context.Background()
	for _, d := range docs {
		if err := e.pub.Publish(ctx, d); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := e.pub.Flush(ctx); err != nil {
		e.t.Fatal(err)
	}
}

// start runs a sink until the test ends.
func (e *env) start(cfg sink.Config) *sink.Sink {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	src, err := e.bus.NewReader(ctx, bus.ReaderConfig{Stream: bus.DocsStream, Durable: "sink"})
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := sink.New(cfg, src, e.es, e.bus.Bus)
	if err != nil {
		e.t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.Run(ctx); err != nil {
			e.t.Errorf("sink Run: %v", err)
		}
	}()
	e.t.Cleanup(func() { cancel(); wg.Wait() })
	return s
}

func (e *env) get(index, id string) (map[string]any, int64, bool) {
	e.t.Helper()
	res, err := esapi.GetRequest{Index: index, DocumentID: id}.Do(context.Background(), e.es)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var g struct {
		Found   bool           `json:"found"`
		Version int64          `json:"_version"`
		Source  map[string]any `json:"_source"`
	}
	_ = json.NewDecoder(res.Body).Decode(&g)
	return g.Source, g.Version, g.Found
}

func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	// Generous: on a loaded machine an 8 MiB document alone takes seconds
	// through the bus and the engine; a passing test never waits this long.
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a wait for an event
	}
}

func idx(id string, version uint64, src string) *bus.Doc {
	return &bus.Doc{Op: bus.DocIndex, Index: "users", ID: id, Version: version, Source: json.RawMessage(src), Table: "users", Schema: "public"}
}

func del(id string, version uint64) *bus.Doc {
	return &bus.Doc{Op: bus.DocDelete, Index: "users", ID: id, Version: version, Table: "users", Schema: "public"}
}

func TestSinkIndexesWithExternalVersionsAndIgnoresStaleReplays(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	s := e.start(sink.DefaultConfig())
	e.publish(idx("1", 100, `{"name":"ann"}`), idx("2", 100, `{"name":"bob"}`), idx("1", 200, `{"name":"ann v2"}`), del("2", 300))
	e.waitFor("documents applied", func() bool {
		src, v, ok := e.get("users", "1")
		_, _, found2 := e.get("users", "2")
		return ok && v == 200 && src["name"] == "ann v2" && !found2
	})
	// Replaying the whole history, older versions included, changes nothing.
	// (Pos differs so that JetStream's duplicate window, which would drop
	// these, does not hide the replay from the sink.)
	replay := []*bus.Doc{idx("1", 100, `{"name":"ann"}`), idx("2", 100, `{"name":"bob"}`), idx("1", 150, `{"name":"stale"}`)}
	for _, d := range replay {
		d.Pos = 99
	}
	e.publish(replay...)
	e.waitFor("replay settled", func() bool { return s.Status().Stale >= 3 })
	if src, v, _ := e.get("users", "1"); v != 200 || src["name"] != "ann v2" {
		t.Fatalf("replay made doc 1 older: v%d %v", v, src)
	}
	if _, _, found := e.get("users", "2"); found {
		t.Fatal("replay resurrected deleted doc 2")
	}
	if st := s.Status(); st.LastVersion != 300 || st.DeadLetters != 0 {
		t.Fatalf("status = %+v", st)
	}
}

func TestSinkKeepsUnchangedToastValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.start(sink.DefaultConfig())
	big := strings.Repeat("x", 100_000)
	e.publish(idx("1", 100, `{"id":1,"status":"new","body":"`+big+`"}`))
	e.waitFor("first version", func() bool { _, v, _ := e.get("users", "1"); return v == 100 })
	upd := idx("1", 200, `{"id":1,"status":"done"}`)
	upd.Unchanged = []string{"body"}
	// Two updates of the same row in one batch: the second takes the value
	// carried forward by the first.
	upd2 := idx("1", 300, `{"id":1,"status":"archived"}`)
	upd2.Unchanged = []string{"body"}
	e.publish(upd, upd2)
	e.waitFor("update applied", func() bool { _, v, _ := e.get("users", "1"); return v == 300 })
	src, _, _ := e.get("users", "1")
	if src["status"] != "archived" || src["body"] != big {
		t.Fatalf("TOAST value lost or placeholder indexed: status=%v body len=%d", src["status"], len(fmt.Sprint(src["body"])))
	}
}

// filterSpy records the filter_path of each _bulk request it passes on.
type filterSpy struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen []string
}

func (f *filterSpy) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/_bulk") {
		f.mu.Lock()
		f.seen = append(f.seen, r.URL.Query().Get("filter_path"))
		f.mu.Unlock()
	}
	return f.next.RoundTrip(r)
}

func TestSinkDeadLettersRejectedDocumentsAndContinues(t *testing.T) {
	t.Parallel()
	spy := &filterSpy{}
	e := newEnv(t, func(rt http.RoundTripper) http.RoundTripper { spy.next = rt; return spy })
	s := e.start(sink.DefaultConfig())
	e.publish(idx("1", 100, `{"age":30}`))
	e.waitFor("mapping established", func() bool { _, v, _ := e.get("users", "1"); return v == 100 })
	e.publish(idx("2", 110, `{"age":"not a number"}`), idx("3", 120, `{"age":31}`))
	e.waitFor("good document after the bad one", func() bool { _, v, _ := e.get("users", "3"); return v == 120 })
	if _, _, found := e.get("users", "2"); found {
		t.Fatal("rejected document was indexed")
	}
	// Documents 2 and 3 may travel in different lanes: document 3 can be
	// searchable before document 2's lane has counted its dead letter.
	e.waitFor("the dead letter counted", func() bool { return s.Status().DeadLetters >= 1 })
	n, err := e.bus.DLQCount(context.Background())
	if err != nil || n != 1 || s.Status().DeadLetters != 1 {
		t.Fatalf("dead letters: stream %d (%v), status %d; want 1", n, err, s.Status().DeadLetters)
	}
	// The rejection was read from an answer filtered to statuses and errors.
	spy.mu.Lock()
	defer spy.mu.Unlock()
	for _, f := range spy.seen {
		if f != "errors,items.*.status,items.*.error" {
			t.Fatalf("bulk requests asked for filter_path %q", spy.seen)
		}
	}
	if len(spy.seen) == 0 {
		t.Fatal("no bulk request seen")
	}
}

func TestSinkRetriesTransientFailuresWithoutLosingOrAckingEarly(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
	}{{"429", 429}, {"500", 500}, {"dropped connection", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ft := &faultyTransport{status: tc.status}
			ft.failing.Store(3)
			e := newEnv(t, func(rt http.RoundTripper) http.RoundTripper { ft.next = rt; return ft })
			cfg := sink.DefaultConfig()
			cfg.MaxBackoff = 200 * time.Millisecond
			s := e.start(cfg)
			var docs []*bus.Doc
			for i := range 50 {
				docs = append(docs, idx(fmt.Sprint(i), 100, fmt.Sprintf(`{"n":%d}`, i)))
			}
			e.publish(docs...)
			e.waitFor("all documents after the faults", func() bool {
				for i := range 50 {
					if _, _, ok := e.get("users", fmt.Sprint(i)); !ok {
						return false
					}
				}
				return true
			})
			if ft.seen.Load() < 4 || s.Status().Retries < 3 {
				t.Fatalf("faults not exercised: %d bulk requests, %d retries", ft.seen.Load(), s.Status().Retries)
			}
			if n, _ := e.bus.DLQCount(context.Background()); n != 0 {
				t.Fatalf("%d transient failures were dead-lettered", n)
			}
		})
	}
}

func TestSinkTruncateRemovesEarlierDocumentsOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.start(sink.DefaultConfig())
	e.publish(idx("1", 100, `{"a":1}`), idx("2", 100, `{"a":2}`),
		&bus.Doc{Op: bus.DocTruncate, Index: "users", Version: 200, Table: "users", Schema: "public"},
		idx("3", 300, `{"a":3}`))
	e.waitFor("post-truncate insert", func() bool { _, v, _ := e.get("users", "3"); return v == 300 })
	for _, id := range []string{"1", "2"} {
		if _, _, found := e.get("users", id); found {
			t.Fatalf("document %s survived the truncate", id)
		}
	}
}

func TestSinkRecordsWatermarksAfterEarlierWrites(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	s := e.start(sink.DefaultConfig())
	e.publish(idx("1", 100, `{"a":1}`), &bus.Doc{Op: bus.DocWatermark, Index: bus.WatermarkIndex, Version: 150})
	e.waitFor("watermark", func() bool { return s.Status().AppliedLSN == 150 })
	if _, v, ok := e.get("users", "1"); !ok || v != 100 {
		t.Fatalf("watermark recorded before the write before it: found=%v v=%d", ok, v)
	}
	e.publish(&bus.Doc{Op: bus.DocWatermark, Index: bus.WatermarkIndex, Version: 120, Pos: 1})
	e.publish(idx("2", 200, `{"a":2}`))
	e.waitFor("later write", func() bool { _, v, _ := e.get("users", "2"); return v == 200 })
	if got := s.Status().AppliedLSN; got != 150 {
		t.Fatalf("applied LSN went backwards or moved without a watermark: %s", got)
	}
}

// TestSinkSendsASmallBatchAsOneRequest: a batch of a few documents (what
// single-row transactions at a steady rate make) goes out in one bulk
// request, not one per lane; a large one still uses every lane.
func TestSinkSendsASmallBatchAsOneRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	cfg := sink.DefaultConfig()
	cfg.Concurrency = 4
	s := e.start(cfg)
	requests := func() uint64 {
		var n uint64
		for _, c := range s.Status().BulkDocs {
			n += c
		}
		return n
	}
	write := func(first, n int) {
		t.Helper()
		docs := make([]*bus.Doc, n)
		for i := range docs {
			docs[i] = idx("u"+strconv.Itoa(first+i), 100, `{"n":1}`)
		}
		if err := s.Write(context.Background(), docs); err != nil {
			t.Fatal(err)
		}
	}
	write(0, 1) // creates the index
	before := requests()
	write(1, 10)
	if got := requests() - before; got != 1 {
		t.Fatalf("10 documents went out in %d bulk requests, want 1", got)
	}
	before = requests()
	write(100, 1000)
	if got := requests() - before; got < 4 {
		t.Fatalf("1,000 documents went out in %d bulk requests, want one per lane (4)", got)
	}
	if c := e.count("users"); c != 1011 {
		t.Fatalf("%d documents indexed, want 1011", c)
	}
}
