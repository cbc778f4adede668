package sink_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/sink"
)

// moved is the insert of a row whose key an UPDATE changed from `from`,
// leaving its TOASTed body unchanged.
func moved(id, from string, version uint64, src string) *bus.Doc {
	d := idx(id, version, src)
	d.Unchanged, d.From = []string{"body"}, from
	return d
}

func body(tag string) string { return strings.Repeat(tag+" ", 20_000) }

// TestSinkCarriesUnchangedValuesToAMovedDocument: an UPDATE that changes a
// row's key arrives as a delete of the old key and an insert of the new one
// whose TOASTed values were not sent. They must come from the old key's
// document — not be left out, and not be taken from a document that held
// the new key before (a row deleted in the same transaction).
func TestSinkCarriesUnchangedValuesToAMovedDocument(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	s := e.start(sink.DefaultConfig())
	ctx := context.Background()
	write := func(docs ...*bus.Doc) {
		t.Helper()
		if err := s.Write(ctx, docs); err != nil {
			t.Fatal(err)
		}
	}
	write(idx("1", 100, `{"id":1,"body":"`+body("one")+`"}`),
		idx("2", 100, `{"id":2,"body":"`+body("two")+`"}`),
		idx("3", 100, `{"id":3,"body":"`+body("three")+`"}`))

	// UPDATE … SET id = 11 WHERE id = 1.
	write(del("1", 200), moved("11", "1", 200, `{"id":11,"title":"moved"}`))
	// DELETE … WHERE id = 2; UPDATE … SET id = 2 WHERE id = 3 (one transaction).
	write(del("2", 300), del("3", 300), moved("2", "3", 300, `{"id":2,"title":"took 2"}`))

	for _, c := range []struct{ id, want string }{{"11", body("one")}, {"2", body("three")}} {
		src, _, found := e.get("users", c.id)
		if got, _ := src["body"].(string); !found || got != c.want {
			t.Errorf("document %s: found %v, body %.20q… (%d bytes), want %.20q… (%d bytes)", c.id, found, got, len(got), c.want, len(c.want))
		}
	}
	for _, id := range []string{"1", "3"} {
		if _, _, found := e.get("users", id); found {
			t.Errorf("document %s was moved away but is still indexed", id)
		}
	}

	// A replay after the move was applied (a crash before the ack): the
	// document it moved from is gone, the write is the same.
	write(del("2", 300), del("3", 300), moved("2", "3", 300, `{"id":2,"title":"took 2"}`))
	if src, _, _ := e.get("users", "2"); src["body"] != body("three") || src["title"] != "took 2" {
		t.Errorf("replayed move: document 2 = title %v, body of %d bytes; want the moved row's body", src["title"], len(fmt.Sprint(src["body"])))
	}
}

// failMoves is a fault-injection transport: it fails every _bulk request
// that writes a moved document (one whose id starts with "new-"), counting
// the failures, and passes everything else.
type failMoves struct {
	next   http.RoundTripper
	failed atomic.Int64
	on     atomic.Bool
}

func (f *failMoves) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.on.Load() && strings.HasSuffix(r.URL.Path, "/_bulk") && r.Body != nil {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		if strings.Contains(string(b), `"_id":"new-`) {
			f.failed.Add(1)
			return nil, fmt.Errorf("fault injection: connection reset")
		}
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		r.ContentLength = int64(len(b))
	}
	return f.next.RoundTrip(r)
}

// TestSinkDeletesAMovedDocumentsOriginOnlyAfterItIsWritten: when the write
// of moved documents fails and the process stops (a crash), the documents
// they moved from must still be indexed, so that the replay finds their
// unchanged values. One document per bulk request, in one lane: each
// request either is applied or fails, in the batch's order.
func TestSinkDeletesAMovedDocumentsOriginOnlyAfterItIsWritten(t *testing.T) {
	t.Parallel()
	var fault *failMoves
	e := newEnv(t, func(rt http.RoundTripper) http.RoundTripper { fault = &failMoves{next: rt}; return fault })
	cfg := sink.DefaultConfig()
	cfg.Concurrency, cfg.MaxBatchSize = 1, 1
	s := e.start(cfg)
	const n = 4
	var first, move []*bus.Doc
	for i := range n {
		first = append(first, idx(fmt.Sprint("old-", i), 100, fmt.Sprintf(`{"id":%d,"body":"%s"}`, i, body(fmt.Sprint("row", i)))))
		move = append(move, del(fmt.Sprint("old-", i), 200), moved(fmt.Sprint("new-", i), fmt.Sprint("old-", i), 200, fmt.Sprintf(`{"id":%d,"title":"moved"}`, i)))
	}
	if err := s.Write(context.Background(), first); err != nil {
		t.Fatal(err)
	}

	fault.on.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Write(ctx, move) }()
	// The moves are retried; once they failed a few times, "crash".
	e.waitFor("moves failing", func() bool { return fault.failed.Load() >= 3 })
	cancel()
	if err := <-done; err == nil {
		t.Fatal("Write succeeded while every move failed")
	}
	for i := range n {
		if _, _, found := e.get("users", fmt.Sprint("old-", i)); !found {
			t.Fatalf("document old-%d was deleted before the document that moved from it was written", i)
		}
	}

	fault.on.Store(false)
	if err := s.Write(context.Background(), move); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		src, _, found := e.get("users", fmt.Sprint("new-", i))
		if want := body(fmt.Sprint("row", i)); !found || src["body"] != want {
			t.Fatalf("document new-%d after the replay: found %v, body of %d bytes, want %d", i, found, len(fmt.Sprint(src["body"])), len(want))
		}
		if _, _, found := e.get("users", fmt.Sprint("old-", i)); found {
			t.Fatalf("document old-%d still indexed after the move was replayed", i)
		}
	}
}

// TestSinkAppliesATruncateOnce: a TRUNCATE delivered again after a crash —
// behind the documents written after it the first time, which come again
// too — must not empty the index again: the replayed documents would then
// be refused (the delete leaves a tombstone above their version) and lost.
func TestSinkAppliesATruncateOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	cfg := sink.DefaultConfig()
	cfg.Control = e.bus.State()
	s := e.start(cfg)
	ctx := context.Background()
	truncate := &bus.Doc{Op: bus.DocTruncate, Index: "users", Version: 200, Table: "users", Schema: "public"}
	round := []*bus.Doc{idx("1", 100, `{"n":1}`), truncate, idx("2", 300, `{"n":2}`), idx("3", 300, `{"n":3}`)}
	for attempt := range 2 { // the second is the replay
		if err := s.Write(ctx, round); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"2", "3"} {
			if _, v, found := e.get("users", id); !found || v != 300 {
				t.Fatalf("write %d: document %s found %v at version %d, want version 300", attempt+1, id, found, v)
			}
		}
		if _, _, found := e.get("users", "1"); found {
			t.Fatalf("write %d: document 1, written before the truncate, is indexed", attempt+1)
		}
	}
	// A later truncate still empties the index.
	if err := s.Write(ctx, []*bus.Doc{{Op: bus.DocTruncate, Index: "users", Version: 400, Table: "users", Schema: "public"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, found := e.get("users", "2"); found {
		t.Fatal("a later truncate did not empty the index")
	}
}
