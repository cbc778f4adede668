package sink_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
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
	"github.com/walsearch/walsearch/internal/faultes"
	"github.com/walsearch/walsearch/sink"
)

// newHTTPEnv runs the engine behind a fault-injection server on a real
// socket and points the client at it.
func newHTTPEnv(t *testing.T, timeout time.Duration) (*env, *faultes.Server) {
	t.Helper()
	eng, err := eslite.Open(eslite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	srv := faultes.Start(eng)
	t.Cleanup(srv.Close)
	es, err := esclient.New(esclient.Config{URL: srv.URL, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	b := bustest.Open(t)
	pub, err := b.NewDocPublisher()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	return &env{t: t, bus: b, es: es, pub: pub}, srv
}

// history is a stream of writes to n documents: every document indexed at
// version 100, every third updated at 200, every fifth deleted at 300.
func history(n int) []*bus.Doc {
	var docs []*bus.Doc
	for i := range n {
		docs = append(docs, idx(strconv.Itoa(i), 100, fmt.Sprintf(`{"n":%d,"name":"doc %d"}`, i, i)))
	}
	for i := 0; i < n; i += 3 {
		d := idx(strconv.Itoa(i), 200, fmt.Sprintf(`{"n":%d,"name":"doc %d v2"}`, i*10, i))
		d.Pos = 1
		docs = append(docs, d)
	}
	for i := 0; i < n; i += 5 {
		d := del(strconv.Itoa(i), 300)
		d.Pos = 2
		docs = append(docs, d)
	}
	return docs
}

// expected is the state history(n) leaves: id → version (absent = deleted).
func expected(n int) map[string]int64 {
	want := map[string]int64{}
	for i := range n {
		switch {
		case i%5 == 0:
		case i%3 == 0:
			want[strconv.Itoa(i)] = 200
		default:
			want[strconv.Itoa(i)] = 100
		}
	}
	return want
}

// state reads every document of index: id → version, after a refresh, and
// checks that the search count agrees (no duplicates, nothing extra).
func (e *env) state(index string, n int) (map[string]int64, int64) {
	e.t.Helper()
	ctx := context.Background()
	ids := make([]string, n)
	for i := range n {
		ids[i] = strconv.Itoa(i)
	}
	got := map[string]int64{}
	for start := 0; start < n; start += 5000 {
		body, _ := json.Marshal(map[string]any{"ids": ids[start:min(n, start+5000)]})
		res, err := esapi.MgetRequest{Index: index, Body: bytes.NewReader(body)}.Do(ctx, e.es)
		if err != nil {
			e.t.Fatal(err)
		}
		var mr struct {
			Docs []struct {
				ID      string `json:"_id"`
				Found   bool   `json:"found"`
				Version int64  `json:"_version"`
			} `json:"docs"`
		}
		err = json.NewDecoder(res.Body).Decode(&mr)
		res.Body.Close()
		if err != nil {
			e.t.Fatal(err)
		}
		for _, d := range mr.Docs {
			if d.Found {
				got[d.ID] = d.Version
			}
		}
	}
	return got, e.count(index)
}

func (e *env) count(index string) int64 {
	e.t.Helper()
	ctx := context.Background()
	res, err := esapi.IndicesRefreshRequest{Index: []string{index}}.Do(ctx, e.es)
	if err != nil {
		e.t.Fatal(err)
	}
	res.Body.Close()
	res, err = esapi.CountRequest{Index: []string{index}}.Do(ctx, e.es)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var c struct {
		Count int64 `json:"count"`
	}
	_ = json.NewDecoder(res.Body).Decode(&c)
	return c.Count
}

func sameState(got, want map[string]int64) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d documents, want %d", len(got), len(want))
	}
	for id, v := range want {
		if got[id] != v {
			return fmt.Sprintf("document %s at version %d, want %d", id, got[id], v)
		}
	}
	return ""
}

// consumerState reports the sink consumer's ack floor (stream sequence) and
// how many messages are not yet acknowledged.
func (e *env) consumerState() (ackFloor uint64, unacked uint64) {
	e.t.Helper()
	ctx := context.Background()
	c, err := e.bus.JetStream().Consumer(ctx, bus.DocsStream, "sink")
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return info.AckFloor.Stream, info.NumPending + uint64(info.NumAckPending)
}

func TestSinkFaultsLoseNothingDuplicateNothingAndAckNothingEarly(t *testing.T) {
	const n = 300
	for _, tc := range []struct {
		name  string
		fault faultes.Fault
	}{
		{"429", faultes.Fault{Status: 429}},
		{"500", faultes.Fault{Status: 500}},
		{"503 on everything", faultes.Fault{Status: 503, All: true}},
		{"items 429 inside a 200", faultes.Fault{ItemStatus: 429}},
		{"items 500 inside a 200", faultes.Fault{ItemStatus: 500}},
		{"dropped connections", faultes.Fault{Drop: true}},
		{"slower than the client timeout", faultes.Fault{Delay: 700 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, srv := newHTTPEnv(t, 300*time.Millisecond)
			// Create the index before the faults, so that every fault hits
			// the documents themselves.
			e.publish(idx("warmup", 1, `{"n":0}`))
			cfg := sink.DefaultConfig()
			cfg.MaxBackoff = 200 * time.Millisecond
			cfg.MaxBatchSize = 50
			s := e.start(cfg)
			e.waitFor("warm-up document", func() bool { _, _, ok := e.get("users", "warmup"); return ok })
			e.waitFor("warm-up acknowledged", func() bool { _, un := e.consumerState(); return un == 0 })
			floor0, _ := e.consumerState()

			srv.Inject(tc.fault)
			e.publish(history(n)...)
			e.waitFor("faults exercised", func() bool { return srv.Faulted() >= 5 && s.Status().Retries >= 3 })
			// While every request fails, no message may be acknowledged.
			if floor, unacked := e.consumerState(); floor != floor0 || unacked != uint64(len(history(n))) {
				t.Fatalf("acknowledged during the fault: ack floor %d (was %d), %d unacked of %d", floor, floor0, unacked, len(history(n)))
			}
			if st := s.Status(); st.LastError == "" {
				t.Fatalf("status shows no error during the fault: %+v", st)
			}

			srv.Clear()
			want := expected(n)
			want["warmup"] = 1
			e.waitFor("backlog drained", func() bool { _, un := e.consumerState(); return un == 0 })
			got, count := e.state("users", n)
			if _, _, ok := e.get("users", "warmup"); ok {
				got["warmup"] = 1
			}
			if msg := sameState(got, want); msg != "" || count != int64(len(want)) {
				t.Fatalf("after recovery: %s; search count %d, want %d", msg, count, len(want))
			}
			if n, _ := e.bus.DLQCount(context.Background()); n != 0 {
				t.Fatalf("%d transient failures dead-lettered", n)
			}
			if st := s.Status(); st.InFlight != 0 || st.LastError != "" {
				t.Fatalf("status after recovery: %+v", st)
			}
		})
	}
}

func TestSinkDeadLettersPoisonWithReasonAndIsolatesIt(t *testing.T) {
	t.Parallel()
	e, srv := newHTTPEnv(t, 5*time.Second)
	srv.SetMaxContentLength(64 << 10)
	cfg := sink.DefaultConfig()
	cfg.MaxBackoff = 200 * time.Millisecond
	s := e.start(cfg)
	e.publish(idx("0", 100, `{"age":30}`))
	e.waitFor("mapping established", func() bool { _, _, ok := e.get("users", "0"); return ok })
	big := `{"age":1,"body":"` + strings.Repeat("x", 100<<10) + `"}`
	var docs []*bus.Doc
	for i := 1; i <= 40; i++ {
		src := fmt.Sprintf(`{"age":%d}`, i)
		switch i {
		case 7:
			src = `{"age":"seven"}` // mapper_parsing_exception / document_parsing_exception
		case 23:
			src = big // larger than the whole request limit on its own
		}
		docs = append(docs, idx(strconv.Itoa(i), 100, src))
	}
	e.publish(docs...)
	e.waitFor("everything settled", func() bool { _, un := e.consumerState(); return un == 0 })
	for i := 1; i <= 40; i++ {
		_, _, ok := e.get("users", strconv.Itoa(i))
		if ok == (i == 7 || i == 23) {
			t.Fatalf("document %d indexed = %v", i, ok)
		}
	}
	reasons := e.deadLetterReasons(2)
	joined := strings.Join(reasons, "\n")
	if s.Status().DeadLetters != 2 || !strings.Contains(joined, "parsing_exception") || !strings.Contains(joined, "413") {
		t.Fatalf("dead letters: %d, reasons:\n%s", s.Status().DeadLetters, joined)
	}
}

// deadLetterReasons reads the first n dead letters' errors.
func (e *env) deadLetterReasons(n int) []string {
	e.t.Helper()
	ctx := context.Background()
	st, err := e.bus.JetStream().Stream(ctx, bus.DLQStream)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for seq := uint64(1); len(out) < n && seq < 100; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		var dl bus.DeadLetter
		if json.Unmarshal(m.Data, &dl) == nil {
			out = append(out, dl.Error)
		}
	}
	return out
}

func TestSinkReplayOfAnyPartOfTheStreamChangesNothing(t *testing.T) {
	t.Parallel()
	const n = 200
	e := newEnv(t, nil)
	s := e.start(sink.DefaultConfig())
	h := history(n)
	e.publish(h...)
	e.waitFor("history applied", func() bool { _, un := e.consumerState(); return un == 0 })
	before, count := e.state("users", n)
	if msg := sameState(before, expected(n)); msg != "" {
		t.Fatalf("before replay: %s", msg)
	}
	// Replays: the whole history, a middle slice, the tail, and the first
	// write of each document alone (older than everything indexed).
	stale0 := s.Status().Stale
	parts := [][]*bus.Doc{h, h[n/2 : n+n/4], h[len(h)-n/5:], h[:n]}
	var total int
	for round, part := range parts {
		var replay []*bus.Doc
		for _, d := range part {
			cp := *d
			cp.Pos = uint64(10 + round) // a distinct message id, or JetStream's duplicate window drops it
			replay = append(replay, &cp)
		}
		total += len(replay)
		e.publish(replay...)
	}
	e.waitFor("replays settled", func() bool { _, un := e.consumerState(); return un == 0 })
	after, count2 := e.state("users", n)
	if msg := sameState(after, before); msg != "" || count2 != count {
		t.Fatalf("replay changed the index: %s; count %d → %d", msg, count, count2)
	}
	if s.Status().Stale == stale0 {
		t.Fatal("replays were not refused as stale")
	}
	t.Logf("%d replayed writes, %d refused as stale", total, s.Status().Stale-stale0)
}

func TestSinkTruncateIsABarrierAcrossLanes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	cfg := sink.DefaultConfig()
	cfg.Concurrency, cfg.MaxBatchSize = 8, 20
	e.start(cfg)
	var docs []*bus.Doc
	for i := range 400 {
		docs = append(docs, idx("a"+strconv.Itoa(i), 100, `{"before":true}`))
	}
	docs = append(docs, &bus.Doc{Op: bus.DocTruncate, Index: "users", Version: 200, Table: "users", Schema: "public"})
	for i := range 400 {
		d := idx("b"+strconv.Itoa(i), 300, `{"before":false}`)
		if i%2 == 0 {
			d.ID = "a" + strconv.Itoa(i) // rows re-inserted after the truncate
		}
		docs = append(docs, d)
	}
	e.publish(docs...)
	e.waitFor("everything applied", func() bool { _, un := e.consumerState(); return un == 0 })
	if c := e.count("users"); c != 400 {
		t.Fatalf("%d documents after truncate + 400 inserts, want 400", c)
	}
	for i := 1; i < 400; i += 2 {
		if _, _, found := e.get("users", "a"+strconv.Itoa(i)); found {
			t.Fatalf("document a%d survived the truncate", i)
		}
	}
}

func TestSinkAdaptsBatchSizeToPushback(t *testing.T) {
	t.Parallel()
	e, srv := newHTTPEnv(t, 5*time.Second)
	cfg := sink.DefaultConfig()
	cfg.MaxBatchSize, cfg.MaxBackoff = 400, 100*time.Millisecond
	s := e.start(cfg)
	srv.Inject(faultes.Fault{Status: 429, Count: 4})
	e.publish(history(100)...)
	e.waitFor("pushback seen", func() bool { return srv.Faulted() >= 4 })
	e.waitFor("settled", func() bool { _, un := e.consumerState(); return un == 0 })
	// Four 429s halve the size at least four times before it regrows by
	// 1/16 of the maximum per fast request.
	if b := s.Status().BatchSize; b >= 400 {
		t.Fatalf("batch size %d after four 429s, want less than 400", b)
	}
	e.publish(history(2000)[:2000]...)
	e.waitFor("fast requests again", func() bool { _, un := e.consumerState(); return un == 0 && s.Status().BatchSize == 400 })
}

// TestSinkOutage: the search engine is down while documents pile up; memory
// stays bounded (the backlog is on disk, in JetStream) and when it returns
// the backlog drains into an exact index. WALSEARCH_TEST_OUTAGE_DOCS sets
// the size (default 10000; 200000 for the full run).
func TestSinkOutage(t *testing.T) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("WALSEARCH_TEST_OUTAGE_DOCS")); err == nil && v > 0 {
		n = v
	}
	e, srv := newHTTPEnv(t, 2*time.Second)
	cfg := sink.DefaultConfig()
	cfg.MaxBackoff = 300 * time.Millisecond
	s := e.start(cfg)
	e.publish(idx("warmup", 1, `{}`))
	e.waitFor("warm-up", func() bool { _, un := e.consumerState(); return un == 0 })
	srv.Inject(faultes.Fault{Status: 503, All: true})

	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	start := time.Now()
	ctx := context.Background()
	for i := range n {
		if err := e.pub.Publish(ctx, idx(strconv.Itoa(i), 100, fmt.Sprintf(`{"n":%d,"text":"row %d of the outage backlog"}`, i, i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.pub.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// The server's pending count can trail the messages just stored by a
	// moment: wait for it to show them all. A sink that acknowledged any
	// during the outage keeps it short for good.
	for waited := time.Now(); ; {
		_, un := e.consumerState()
		if un == uint64(n) {
			break
		}
		if time.Since(waited) > 30*time.Second {
			t.Fatalf("%d unacknowledged during the outage, want %d", un, n)
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	if st := s.Status(); st.Indexed != 1 || st.DeadLetters != 0 {
		t.Fatalf("during the outage %d documents indexed (want only the warm-up) and %d dead-lettered", st.Indexed, st.DeadLetters)
	}
	downPeak := peak.Load()
	srv.Clear()
	recovered := time.Now()
	deadline := recovered.Add(30*time.Second + time.Duration(n)*time.Millisecond) // 1,000 docs/s at least
	for _, un := e.consumerState(); un != 0; _, un = e.consumerState() {
		if time.Now().After(deadline) {
			t.Fatalf("backlog not drained: %d left after %s", un, time.Since(recovered))
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	drained := time.Since(recovered)
	close(stop)
	wg.Wait()
	if c := e.count("users"); c != int64(n)+1 {
		t.Fatalf("%d documents after the outage, want %d", c, n+1)
	}
	t.Logf("outage: %d documents queued in %s; heap in use peaked at %d MiB while down, %d MiB overall; drained in %s (%.0f docs/s); batch size %d",
		n, recovered.Sub(start).Round(time.Millisecond), downPeak>>20, peak.Load()>>20, drained.Round(time.Millisecond), float64(n)/drained.Seconds(), s.Status().BatchSize)
	// While the engine is down the backlog must stay on disk. (After it
	// returns, the heap also holds the embedded engine's copy of every
	// document — eslite keeps sources in memory — and the test's bus.)
	if limit := uint64(256 << 20); downPeak > limit {
		t.Fatalf("heap peaked at %d MiB during the outage, over %d MiB", downPeak>>20, limit>>20)
	}
}

// TestSinkDeadLettersDocumentsOverTheRequestSizeLimitBeforeSending: with
// max_content_length set (small here), a document whose bulk item alone is
// larger is dead-lettered with the reason without ever being sent, no bulk
// request exceeds the limit, and everything around it — a later, smaller
// write of the same document included — is indexed. A document so large
// that its dead letter would exceed the bus's message size is dead-lettered
// without its event.
func TestSinkDeadLettersDocumentsOverTheRequestSizeLimitBeforeSending(t *testing.T) {
	t.Parallel()
	const limit = 4096
	e, srv := newHTTPEnv(t, 5*time.Second)
	cfg := sink.DefaultConfig()
	cfg.MaxContentLength = limit
	s := e.start(cfg)
	e.publish(idx("0", 100, `{"n":0}`))
	e.waitFor("index created", func() bool { _, _, ok := e.get("users", "0"); return ok })

	text := func(n int) string { return `{"n":1,"text":"` + strings.Repeat("x", n) + `"}` }
	var docs []*bus.Doc
	for i := 1; i <= 40; i++ {
		src := fmt.Sprintf(`{"n":%d,"text":"%s"}`, i, strings.Repeat("y", 300))
		switch i {
		case 10:
			src = text(8 << 10) // over the limit on its own
		case 20:
			src = text(limit - 300) // just under it, with its action line
		}
		docs = append(docs, idx(strconv.Itoa(i), 100, src))
	}
	// The biggest document the bus carries (8 MiB messages): its dead
	// letter, with the reason, would not fit.
	docs = append(docs, idx("huge", 100, text(8<<20-400)))
	later := idx("10", 200, `{"n":10,"text":"short now"}`)
	docs = append(docs, later)
	e.publish(docs...)
	e.waitFor("everything settled", func() bool { _, un := e.consumerState(); return un == 0 })

	for i := 0; i <= 40; i++ {
		if _, _, ok := e.get("users", strconv.Itoa(i)); !ok {
			t.Fatalf("document %d not indexed", i)
		}
	}
	if src, v, _ := e.get("users", "10"); v != 200 || src["text"] != "short now" {
		t.Fatalf("the later write of document 10: version %d, %v", v, src)
	}
	if _, _, ok := e.get("users", "huge"); ok {
		t.Fatal("the huge document was indexed")
	}
	if got := srv.LargestBulk(); got > limit {
		t.Fatalf("a bulk request of %d bytes was sent, over the %d-byte limit", got, limit)
	}
	reasons := e.deadLetterReasons(2)
	if st := s.Status(); st.DeadLetters != 2 || len(reasons) != 2 {
		t.Fatalf("dead letters: %d, reasons %q", st.DeadLetters, reasons)
	}
	for _, r := range reasons {
		if !strings.Contains(r, "sink.max_content_length") || !strings.Contains(r, "over the search engine's request size limit of 4096 bytes") {
			t.Fatalf("dead letter reason does not say what to do: %s", r)
		}
	}
	if !strings.Contains(reasons[0], "users/10 is 8") || !strings.Contains(reasons[1], "users/huge") || !strings.Contains(reasons[1], "is not kept") {
		t.Fatalf("dead letter reasons: %q", reasons)
	}
}

// TestSinkSaysWhatToFixWhenCredentialsAreRefused: while Elasticsearch
// answers 401 (index creation and bulk requests alike), nothing is
// acknowledged or dead-lettered and the status says which settings to fix;
// once it accepts the requests again, everything is indexed.
func TestSinkSaysWhatToFixWhenCredentialsAreRefused(t *testing.T) {
	t.Parallel()
	e, srv := newHTTPEnv(t, 5*time.Second)
	cfg := sink.DefaultConfig()
	cfg.MaxBackoff = 200 * time.Millisecond
	srv.Inject(faultes.Fault{Status: http.StatusUnauthorized, All: true})
	s := e.start(cfg)
	e.publish(history(50)...)
	e.waitFor("the refusal reported", func() bool { return srv.Faulted() >= 3 && s.Status().LastError != "" })
	st := s.Status()
	if !strings.Contains(st.LastError, "HTTP 401") || !strings.Contains(st.LastError, "set elasticsearch.username and elasticsearch.password") {
		t.Fatalf("status during the 401s does not say what to fix: %q", st.LastError)
	}
	if _, unacked := e.consumerState(); unacked != uint64(len(history(50))) {
		t.Fatalf("%d of %d unacknowledged while every request was refused", unacked, len(history(50)))
	}
	srv.Clear()
	e.waitFor("drained", func() bool { _, un := e.consumerState(); return un == 0 })
	got, count := e.state("users", 50)
	if msg := sameState(got, expected(50)); msg != "" || count != int64(len(expected(50))) {
		t.Fatalf("after the credentials were accepted: %s; count %d", msg, count)
	}
	if n, _ := e.bus.DLQCount(context.Background()); n != 0 {
		t.Fatalf("%d documents dead-lettered for refused credentials", n)
	}
}

// TestSinkSplitsABulkRequestThatTimesOut: an engine that cannot answer a
// large bulk request within the client's timeout (a fault injector delays
// every request of two items or more past it) gets the request again in
// halves, down to single documents, instead of the same request for ever.
func TestSinkSplitsABulkRequestThatTimesOut(t *testing.T) {
	t.Parallel()
	const n = 40
	e, srv := newHTTPEnv(t, 300*time.Millisecond)
	e.publish(idx("warmup", 1, `{"n":0}`))
	cfg := sink.DefaultConfig()
	cfg.MaxBackoff, cfg.MaxBatchSize = 100*time.Millisecond, 50
	s := e.start(cfg)
	e.waitFor("warm-up acknowledged", func() bool { _, un := e.consumerState(); return un == 0 })

	srv.Inject(faultes.Fault{Delay: 700 * time.Millisecond, MinItems: 2})
	e.publish(history(n)...)
	e.waitFor("backlog drained", func() bool { _, un := e.consumerState(); return un == 0 })
	want := expected(n)
	got, count := e.state("users", n)
	if msg := sameState(got, want); msg != "" || count != int64(len(want))+1 {
		t.Fatalf("after the timeouts: %s; search count %d, want %d", msg, count, len(want)+1)
	}
	if st := s.Status(); st.Splits == 0 || st.DeadLetters != 0 {
		t.Fatalf("status: %+v; want splits and no dead letters", st)
	}
}
