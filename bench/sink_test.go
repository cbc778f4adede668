package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/bus/bustest"
	"github.com/walsearch/walsearch/internal/esclient"
	"github.com/walsearch/walsearch/internal/eslite"
	"github.com/walsearch/walsearch/sink"
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

// BenchmarkSink measures documents/s from the docs stream into eslite
// (in-process) and into a discard-everything bulk endpoint, for a few
// batch sizes and lane counts. WALSEARCH_BENCH_SINK_DOCS sets the documents
// per run (default 50,000).
func BenchmarkSink(b *testing.B) {
	n := benchRows(b, "WALSEARCH_BENCH_SINK_DOCS", 50_000)
	for _, target := range []string{"eslite", "discard"} {
		for _, c := range []struct{ batch, lanes int }{{500, 1}, {1000, 4}, {5000, 4}} {
			b.Run(fmt.Sprintf("%s/batch=%d/lanes=%d", target, c.batch, c.lanes), func(b *testing.B) {
				for range b.N {
					runSinkBench(b, target, n, c.batch, c.lanes)
				}
			})
		}
	}
}

func runSinkBench(b *testing.B, target string, n, batch, lanes int) {
	b.StopTimer()
	var rt http.RoundTripper = discardBulk{}
	if target == "eslite" {
		eng, err := eslite.Open(eslite.Config{})
		if err != nil {
			b.Fatal(err)
		}
		defer eng.Close()
		rt = eng.RoundTripper()
	}
	es, err := esclient.New(esclient.Config{Transport: rt})
	if err != nil {
		b.Fatal(err)
	}
	bb := bustest.Open(b)
	pub, err := bb.NewDocPublisher()
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	ctx := context.Background()
	for i := range n {
		src, _ := json.Marshal(map[string]any{"id": i, "name": "user " + strconv.Itoa(i), "email": fmt.Sprintf("u%d@example.com", i), "score": float64(i) / 7})
		if err := pub.Publish(ctx, &bus.Doc{Op: bus.DocIndex, Index: "users", ID: strconv.Itoa(i), Version: 100, Source: src, Schema: "public", Table: "users"}); err != nil {
			b.Fatal(err)
		}
	}
	if err := pub.Flush(ctx); err != nil {
		b.Fatal(err)
	}
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
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	b.StartTimer()
	start := time.Now()
	go func() { defer wg.Done(); _ = s.Run(rctx) }()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		st := s.Status()
		if st.Indexed >= uint64(n) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("timed out: %+v", st)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
	took := time.Since(start)
	b.StopTimer()
	cancel()
	wg.Wait()
	b.ReportMetric(float64(n)/took.Seconds(), "docs/s")
	b.ReportMetric(float64(s.Status().BatchSize), "final-batch")
}
