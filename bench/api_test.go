package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/internal/esclient"
	"github.com/walsearch/walsearch/internal/eslite"
)

// The API benchmark's knobs, besides WALSEARCH_BENCH_DOCS.
const (
	// apiBenchSecondsEnv is how long each phase runs (default 10 s).
	apiBenchSecondsEnv = "WALSEARCH_BENCH_API_SECONDS"
	// apiBenchClientsEnv is how many clients send requests at once in the
	// throughput phase (default 4).
	apiBenchClientsEnv = "WALSEARCH_BENCH_API_CLIENTS"
)

// apiQuery is one measured search: the API requests to send, which vary
// per request so that no cache answers them all (n is the number of
// documents loaded).
type apiQuery struct {
	name    string
	request func(i, n int) string
}

var apiQueries = []apiQuery{
	{"Filtered", func(i, _ int) string {
		lo := (i * 37) % 9000
		return fmt.Sprintf(`{"index":"items","query_fields":{"status":%q,"price":{"gte":%d,"lt":%d}},"page_size":20}`,
			statuses[i%len(statuses)], lo, lo+100)
	}},
	{"FullText", func(i, n int) string {
		return fmt.Sprintf(`{"index":"items","q":"number %d","page_size":20}`, (i*7919)%n)
	}},
}

// apiVariants is how many different requests each query cycles through.
const apiVariants = 64

// BenchmarkAPISearch measures a filtered and a full-text search through the
// API over a socket, against eslite holding WALSEARCH_BENCH_DOCS documents
// (default 1,000,000), the API reaching the engine in process as in the
// embedded deployment.
//
// The throughput phase runs WALSEARCH_BENCH_API_CLIENTS clients against the
// API for WALSEARCH_BENCH_API_SECONDS and reports api-req/s, api-p50-ms and
// api-p99-ms.
//
// The overhead phase compares each API request with the very query the API
// sent the engine for it (captured, so the two cannot drift apart), sent by
// the same HTTP client straight to the engine served on its own socket. One
// client alternates them — API then engine, engine then API — so that
// whatever else the machine does falls on both alike, and the medians are
// compared: seq-api-p50-ms, seq-direct-p50-ms, overhead-ms (the median of
// the per-pair differences) and overhead-% (of the direct median). Nothing
// is asserted about times.
func BenchmarkAPISearch(b *testing.B) {
	n := benchDocs(b, 1_000_000)
	seconds := apiBenchInt(b, apiBenchSecondsEnv, 10)
	clients := apiBenchInt(b, apiBenchClientsEnv, 4)
	eng, tp := openEngine(b)
	perform(b, tp, esapi.IndicesCreateRequest{Index: "items", Body: strings.NewReader(benchMapping)})
	load := loadDocs(b, tp, "items", n, 5000)
	perform(b, tp, esapi.IndicesRefreshRequest{Index: []string{"items"}})

	// The engine on its own socket, for the direct requests.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	sctx, stopEngine := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- eslite.Serve(sctx, ln, eng) }()
	b.Cleanup(func() {
		stopEngine()
		if err := <-served; err != nil {
			b.Errorf("serve eslite: %v", err)
		}
	})
	engineURL := "http://" + ln.Addr().String() + "/items/_search"

	// The API, whose requests to the engine can be captured.
	rec := &capturingTransport{next: eng.RoundTripper()}
	es, err := esclient.New(esclient.Config{Transport: rec})
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
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("api: %v", err)
		}
	})
	<-srv.Ready()
	apiURL := "http://" + srv.Addr().String() + "/search"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.Cleanup(client.CloseIdleConnections)
	post := func(url, body string) error {
		res, err := client.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			return fmt.Errorf("%s: HTTP %d: %.300s", url, res.StatusCode, raw)
		}
		return nil
	}

	for _, q := range apiQueries {
		b.Run(q.name, func(b *testing.B) {
			// What the API sends the engine for each variant, captured
			// while warming both up.
			requests := make([]string, apiVariants)
			direct := make([]string, apiVariants)
			for i := range apiVariants {
				requests[i] = q.request(i, n)
				body, err := rec.capture(func() error { return post(apiURL, requests[i]) })
				if err != nil {
					b.Fatal(err)
				}
				direct[i] = string(body)
				if err := post(engineURL, direct[i]); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				lat, rate := throughput(b, clients, time.Duration(seconds)*time.Second, func(i int) error {
					return post(apiURL, requests[i%apiVariants])
				})
				b.ReportMetric(rate, "api-req/s")
				b.ReportMetric(ms(percentile(lat, 50)), "api-p50-ms")
				b.ReportMetric(ms(percentile(lat, 99)), "api-p99-ms")

				apiLat, directLat, diffs := interleaved(b, time.Duration(seconds)*time.Second, func(i int) error {
					return post(apiURL, requests[i%apiVariants])
				}, func(i int) error {
					return post(engineURL, direct[i%apiVariants])
				})
				medAPI, medDirect, medDiff := percentile(apiLat, 50), percentile(directLat, 50), percentile(diffs, 50)
				b.ReportMetric(ms(medAPI), "seq-api-p50-ms")
				b.ReportMetric(ms(medDirect), "seq-direct-p50-ms")
				b.ReportMetric(ms(medDiff), "overhead-ms")
				if medDirect > 0 {
					b.ReportMetric(100*float64(medDiff)/float64(medDirect), "overhead-%")
				}
				b.Logf("%s on %d documents (loaded in %s): %d API requests from %d clients; %d interleaved pairs",
					q.name, n, load.Round(time.Second), len(lat), clients, len(diffs))
			}
		})
	}
}

// throughput calls call from clients goroutines for d and returns every
// call's latency and the calls per second.
func throughput(b *testing.B, clients int, d time.Duration, call func(i int) error) ([]time.Duration, float64) {
	var mu sync.Mutex
	var lat []time.Duration
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := call(int(next.Add(1))); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(lat) == 0 {
		b.Fatal("no request completed")
	}
	return lat, float64(len(lat)) / time.Since(start).Seconds()
}

// interleaved sends pairs of requests from one client for d: the API's and
// the engine's for the same query, in alternating order. It returns the
// latencies of each kind and, per pair, the API's minus the engine's.
func interleaved(b *testing.B, d time.Duration, viaAPI, direct func(i int) error) (apiLat, directLat, diffs []time.Duration) {
	timed := func(call func(int) error, i int) time.Duration {
		t0 := time.Now()
		if err := call(i); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	deadline := time.Now().Add(d)
	for i := 0; time.Now().Before(deadline) || i < 20; i++ {
		var a, e time.Duration
		if i%2 == 0 {
			a = timed(viaAPI, i)
			e = timed(direct, i)
		} else {
			e = timed(direct, i)
			a = timed(viaAPI, i)
		}
		apiLat, directLat, diffs = append(apiLat, a), append(directLat, e), append(diffs, a-e)
	}
	return apiLat, directLat, diffs
}

// percentile returns the p-th percentile of lat (sorting it).
func percentile(lat []time.Duration, p int) time.Duration {
	slices.Sort(lat)
	return lat[min(len(lat)-1, len(lat)*p/100)]
}

// apiBenchInt reads a positive integer from env, or returns def.
func apiBenchInt(b *testing.B, env string, def int) int {
	v := os.Getenv(env)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q is not a positive integer", env, v)
	}
	return n
}

// capturingTransport passes requests on to the engine and, during capture,
// keeps the body of the search request the API sent.
type capturingTransport struct {
	next http.RoundTripper
	on   atomic.Bool

	mu   sync.Mutex
	body []byte
}

func (c *capturingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.on.Load() && strings.HasSuffix(r.URL.Path, "/_search") && r.Body != nil {
		raw, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.body = raw
		c.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(raw))
		r.ContentLength = int64(len(raw))
	}
	return c.next.RoundTrip(r)
}

// capture runs call and returns the search body the API sent meanwhile.
func (c *capturingTransport) capture(call func() error) ([]byte, error) {
	c.mu.Lock()
	c.body = nil
	c.mu.Unlock()
	c.on.Store(true)
	err := call()
	c.on.Store(false)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil && c.body == nil {
		err = fmt.Errorf("the API sent no search to the engine")
	}
	return c.body, err
}
