package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/bus/bustest"
	"github.com/walsearch/walsearch/internal/e2e"
	"github.com/walsearch/walsearch/internal/esclient"
	"github.com/walsearch/walsearch/internal/eslite"
	"github.com/walsearch/walsearch/sink"
	"github.com/walsearch/walsearch/transform"
)

// discardBulk answers every _bulk item 201 without storing anything, and
// every other request as an empty success: the sink's own ceiling, without
// a search engine's cost.
type discardBulk struct{}

func (discardBulk) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
	}
	status, out := http.StatusOK, []byte(`{}`)
	switch {
	case strings.HasSuffix(r.URL.Path, "/_bulk"):
		var b bytes.Buffer
		b.WriteString(`{"took":1,"errors":false,"items":[`)
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(make([]byte, 0, 1<<20), 256<<20)
		n := 0
		for sc.Scan() {
			line := sc.Bytes()
			op := ""
			switch {
			case bytes.HasPrefix(line, []byte(`{"index"`)):
				op = "index"
			case bytes.HasPrefix(line, []byte(`{"delete"`)):
				op = "delete"
			default:
				continue
			}
			if n > 0 {
				b.WriteByte(',')
			}
			n++
			fmt.Fprintf(&b, `{"%s":{"status":201,"result":"created"}}`, op)
		}
		b.WriteString(`]}`)
		out = b.Bytes()
	case r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/_alias/"):
		status, out = http.StatusNotFound, []byte(`{"error":"alias missing","status":404}`)
	case r.Method == http.MethodHead:
		status, out = http.StatusNotFound, nil
	}
	return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}, "X-Elastic-Product": {"Elasticsearch"}},
		Body: io.NopCloser(bytes.NewReader(out)), Request: r}, nil
}

// bulkCounter counts the _bulk requests and bytes sent through it.
type bulkCounter struct {
	next            http.RoundTripper
	requests, bytes atomic.Int64
}

func (c *bulkCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/_bulk") {
		c.requests.Add(1)
		c.bytes.Add(r.ContentLength)
	}
	return c.next.RoundTrip(r)
}

// sinkTarget returns a client for target ("eslite", in-process, or
// "discard") and the counter its requests pass through.
func sinkTarget(b *testing.B, target string) (*esclient.Client, *bulkCounter) {
	b.Helper()
	var rt http.RoundTripper = discardBulk{}
	if target == "eslite" {
		eng, err := eslite.Open(eslite.Config{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { eng.Close() })
		rt = eng.RoundTripper()
	}
	counter := &bulkCounter{next: rt}
	es, err := esclient.New(esclient.Config{Transport: counter})
	if err != nil {
		b.Fatal(err)
	}
	return es, counter
}

// sinkCases are the batch sizes and lane counts compared.
var sinkCases = []struct{ batch, lanes int }{{500, 1}, {1000, 4}, {5000, 4}}

// BenchmarkSink measures documents/s from the docs stream into eslite
// (in-process) and into a discard-everything bulk endpoint, for a few
// batch sizes and lane counts, and the bulk requests the sink chose.
// WALSEARCH_BENCH_SINK_DOCS sets the documents per run (default 50,000).
func BenchmarkSink(b *testing.B) {
	n := benchRows(b, "WALSEARCH_BENCH_SINK_DOCS", 50_000)
	for _, target := range []string{"eslite", "discard"} {
		for _, c := range sinkCases {
			b.Run(fmt.Sprintf("%s/batch=%d/lanes=%d", target, c.batch, c.lanes), func(b *testing.B) {
				for range b.N {
					runSinkBench(b, target, n, c.batch, c.lanes)
				}
			})
		}
	}
}

// userDoc is the document of row i of the benchmarks' users table.
func userDoc(i int) json.RawMessage {
	src, _ := json.Marshal(map[string]any{"id": i, "name": "user " + strconv.Itoa(i), "email": fmt.Sprintf("u%d@example.com", i), "score": float64(i) / 7})
	return src
}

func runSinkBench(b *testing.B, target string, n, batch, lanes int) {
	b.StopTimer()
	es, counter := sinkTarget(b, target)
	bb := bustest.Open(b)
	pub, err := bb.NewDocPublisher()
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	ctx := context.Background()
	for i := range n {
		if err := pub.Publish(ctx, &bus.Doc{Op: bus.DocIndex, Index: "users", ID: strconv.Itoa(i), Version: 100, Source: userDoc(i), Schema: "public", Table: "users"}); err != nil {
			b.Fatal(err)
		}
	}
	if err := pub.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	took, s := drainInto(b, bb, es, n, batch, lanes, nil)
	b.StopTimer()
	reportSink(b, n, took, s, counter)
}

// drainInto runs a sink (and run, if not nil, beside it) until n documents
// are indexed, and returns how long that took.
func drainInto(b *testing.B, bb *bustest.Bus, es *esclient.Client, n, batch, lanes int, run func(context.Context) error) (time.Duration, *sink.Sink) {
	b.Helper()
	return drainWired(b, bb, es, n, batch, lanes, nil, run)
}

// drainWired is drainInto with wire, if not nil, called with the sink
// before anything runs.
func drainWired(b *testing.B, bb *bustest.Bus, es *esclient.Client, n, batch, lanes int, wire func(*sink.Sink), run func(context.Context) error) (time.Duration, *sink.Sink) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	src, err := bb.NewReader(ctx, bus.ReaderConfig{Stream: bus.DocsStream, Durable: "sink"})
	if err != nil {
		b.Fatal(err)
	}
	cfg := sink.DefaultConfig()
	cfg.MaxBatchSize, cfg.Concurrency = batch, lanes
	s, err := sink.New(cfg, src, es, bb.Bus)
	if err != nil {
		b.Fatal(err)
	}
	if wire != nil {
		wire(s)
	}
	start := time.Now()
	for _, f := range []func(context.Context) error{s.Run, run} {
		if f != nil {
			wg.Add(1)
			go func() { defer wg.Done(); _ = f(ctx) }()
		}
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		st := s.Status()
		if st.Indexed >= uint64(n) {
			return time.Since(start), s
		}
		if time.Now().After(deadline) {
			b.Fatalf("timed out: %+v", st)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}

func reportSink(b *testing.B, n int, took time.Duration, s *sink.Sink, counter *bulkCounter) {
	reqs := max(1, counter.requests.Load())
	b.ReportMetric(float64(n)/took.Seconds(), "docs/s")
	b.ReportMetric(float64(counter.requests.Load()), "bulk-requests")
	b.ReportMetric(float64(n)/float64(reqs), "docs/bulk")
	b.ReportMetric(float64(counter.bytes.Load())/float64(reqs)/1024, "KiB/bulk")
	b.ReportMetric(float64(s.Status().BatchSize), "final-batch")
}

// BenchmarkSinkFromChanges measures the transform → sink path: n changes,
// one per transaction (one bus message each, as row-by-row OLTP writes
// arrive), mapped by the transform stage without a script and indexed by
// the sink, in one process — the path a backlog drains through. "handoff"
// is how walsearch run wires them (documents handed over in memory,
// sink.Handoff); "bus" sends every document through the documents stream,
// as separate processes would.
// WALSEARCH_BENCH_SINK_DOCS sets the changes per run (default 50,000).
func BenchmarkSinkFromChanges(b *testing.B) {
	n := benchRows(b, "WALSEARCH_BENCH_SINK_DOCS", 50_000)
	for _, target := range []string{"eslite", "discard"} {
		for _, path := range []string{"handoff", "bus"} {
			b.Run(target+"/"+path, func(b *testing.B) {
				for range b.N {
					b.StopTimer()
					es, counter := sinkTarget(b, target)
					bb := bustest.Open(b)
					pub := bb.Changes()
					ctx := context.Background()
					for i := range n {
						c := &bus.Change{Op: bus.OpUpdate, Schema: "public", Table: "users", LSN: bus.LSN(1<<32 + i),
							Key: []bus.Column{{Name: "id", Value: int64(i)}}, RowJSON: userDoc(i), CommitTime: time.Now()}
						if err := pub.Publish(ctx, c); err != nil {
							b.Fatal(err)
						}
					}
					if err := pub.Flush(ctx); err != nil {
						b.Fatal(err)
					}
					changes, err := bb.NewReader(ctx, bus.ReaderConfig{Stream: bus.ChangesStream, Durable: "transform"})
					if err != nil {
						b.Fatal(err)
					}
					var run func(context.Context) error
					build := func(out transform.Publisher) {
						st, err := transform.New(transform.DefaultConfig(), changes, out, bb.Bus, nil)
						if err != nil {
							b.Fatal(err)
						}
						run = st.Run
					}
					var docs *bus.DocPublisher
					wire := func(s *sink.Sink) {
						if path == "handoff" {
							build(sink.NewHandoff(s))
							return
						}
						if docs, err = bb.NewDocPublisher(); err != nil {
							b.Fatal(err)
						}
						build(docs)
					}
					b.StartTimer()
					took, s := drainWired(b, bb, es, n, sink.DefaultMaxBatchSize, sink.DefaultConcurrency, wire, func(ctx context.Context) error { return run(ctx) })
					b.StopTimer()
					if docs != nil {
						docs.Close()
					}
					reportSink(b, n, took, s, counter)
				}
			})
		}
	}
}

// BenchmarkSinkOutage runs the walsearch binary (built for the benchmark)
// against real PostgreSQL with the embedded engine behind a fault injector
// that drops every connection while rows change; then the engine returns
// and the backlog drains. It fails unless the index then equals the table.
// It reports walsearch's peak RSS while the engine was down, the backlog
// held in JetStream and the drain rate, for 20,000 changes and for
// WALSEARCH_BENCH_OUTAGE_CHANGES (default 200,000): a peak that does not
// grow with the backlog is what "bounded" means.
func BenchmarkSinkOutage(b *testing.B) {
	large := benchRows(b, "WALSEARCH_BENCH_OUTAGE_CHANGES", 200_000)
	cluster, _ := startPostgres(b)
	bin := buildWalsearch(b)
	command := func(args ...string) *exec.Cmd { return exec.Command(bin, args...) }
	for _, n := range []int{20_000, large} {
		b.Run(fmt.Sprintf("changes=%d", n), func(b *testing.B) {
			for range b.N {
				res := e2e.RunOutage(b, cluster, e2e.Outage{Changes: n, PayloadBytes: 1024, Command: command, Within: 30 * time.Minute})
				b.Logf("%d changes: %s", n, res)
				b.ReportMetric(float64(res.PeakRSSDown)/(1<<20), "peak-RSS-MiB")
				b.ReportMetric(float64(res.RSSBefore)/(1<<20), "RSS-before-MiB")
				b.ReportMetric(float64(res.Backlog), "backlog-docs")
				b.ReportMetric(float64(res.Delivered), "fetched-docs")
				b.ReportMetric(res.DrainRate(), "drain-docs/s")
			}
		})
	}
}

// buildWalsearch builds cmd/walsearch into a temporary directory.
func buildWalsearch(b *testing.B) string {
	b.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		b.Skip("no go tool to build walsearch with: ", err)
	}
	bin := filepath.Join(b.TempDir(), "walsearch")
	out, err := exec.Command(goTool, "build", "-o", bin, "github.com/walsearch/walsearch/cmd/walsearch").CombinedOutput()
	if err != nil {
		b.Fatalf("build walsearch: %v\n%s", err, out)
	}
	return bin
}
