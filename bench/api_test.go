package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/internal/esclient"
)

// apiQueries are the measured searches: the API request and the query DSL
// the API sends for it, to measure the API's overhead over the engine.
var apiQueries = []struct {
	name, request, direct string
}{
	{"Filtered",
		`{"index":"items","query_fields":{"status":"active","price":{"gte":100,"lt":200}},"page_size":20}`,
		`{"query":{"bool":{"filter":[{"range":{"price":{"gte":100,"lt":200}}},{"term":{"status":"active"}}]}},"from":0,"size":20,"track_total_hits":true}`},
	{"FullText",
		`{"index":"items","q":"number 4242","page_size":20}`,
		`{"query":{"bool":{"must":[{"simple_query_string":{"query":"number 4242","fields":["status","title"],"default_operator":"and","flags":"AND|OR|NOT|PHRASE|PRECEDENCE|WHITESPACE|ESCAPE","lenient":true}}]}},"from":0,"size":20,"track_total_hits":true,"sort":[{"_score":{"order":"desc"}}]}`},
}

// BenchmarkAPISearch measures requests/s and p50/p99 latency of a filtered
// and a full-text search through the API over a socket, against eslite with
// WALSEARCH_BENCH_DOCS documents (default 100,000; the reference run uses
// 1,000,000), and the same query sent straight to the engine in-process.
func BenchmarkAPISearch(b *testing.B) {
	n := benchDocs(b, 100_000)
	eng, tp := openEngine(b)
	perform(b, tp, esapi.IndicesCreateRequest{Index: "items", Body: strings.NewReader(benchMapping)})
	load := loadDocs(b, tp, "items", n, 2000)
	perform(b, tp, esapi.IndicesRefreshRequest{Index: []string{"items"}})
	b.Logf("loaded %d documents in %s", n, load.Round(time.Millisecond))

	es, err := esclient.New(esclient.Config{Transport: eng.RoundTripper()})
	if err != nil {
		b.Fatal(err)
	}
	cfg := api.DefaultConfig()
	cfg.Listen, cfg.RateLimit = "127.0.0.1:0", 0
	pipe := api.PipelineFuncs{IndicesFunc: func(context.Context) ([]api.ManagedIndex, error) {
		return []api.ManagedIndex{{Name: "items"}}, nil
	}}
	srv, err := api.New(cfg, es, pipe, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	<-srv.Ready()
	base := "http://" + srv.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	for _, q := range apiQueries {
		b.Run(q.name+"/API", func(b *testing.B) {
			measure(b, func() error {
				res, err := client.Post(base+"/search", "application/json", strings.NewReader(q.request))
				if err != nil {
					return err
				}
				defer res.Body.Close()
				body, _ := io.ReadAll(res.Body)
				if res.StatusCode != 200 {
					return fmt.Errorf("HTTP %d: %s", res.StatusCode, body)
				}
				return nil
			})
		})
		b.Run(q.name+"/Engine", func(b *testing.B) {
			measure(b, func() error {
				res, err := esapi.SearchRequest{Index: []string{"items"}, Body: bytes.NewReader([]byte(q.direct))}.Do(context.Background(), tp)
				if err != nil {
					return err
				}
				defer res.Body.Close()
				body, _ := io.ReadAll(res.Body)
				if res.IsError() {
					return fmt.Errorf("%s: %s", res.Status(), body)
				}
				return nil
			})
		})
	}
}

// measure runs call from parallel clients and reports requests/s, p50 and p99.
func measure(b *testing.B, call func() error) {
	var mu sync.Mutex
	var lat []time.Duration
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			t0 := time.Now()
			if err := call(); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	el := time.Since(start)
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/el.Seconds(), "req/s")
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[min(len(lat)-1, len(lat)*99/100)]), "p99-ms")
}
