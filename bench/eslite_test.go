package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/elastic/elastic-transport-go/v8/elastictransport"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/walsearch/walsearch/internal/eslite"
)

// benchDocs is the document count, overridable with WALSEARCH_BENCH_DOCS.
func benchDocs(b *testing.B, def int) int {
	if v := os.Getenv("WALSEARCH_BENCH_DOCS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("WALSEARCH_BENCH_DOCS=%q is not a positive integer", v)
		}
		return n
	}
	return def
}

// openEngine opens a persistent engine in a temporary directory and a client
// that reaches it in-process.
func openEngine(b *testing.B) (*eslite.Engine, *elastictransport.Client) {
	b.Helper()
	return openEngineIn(b, b.TempDir())
}

// openEngineIn opens an engine on dir ("" keeps everything in memory).
func openEngineIn(b *testing.B, dir string) (*eslite.Engine, *elastictransport.Client) {
	b.Helper()
	e, err := eslite.Open(eslite.Config{Dir: dir})
	if err != nil {
		b.Fatalf("open eslite: %v", err)
	}
	b.Cleanup(func() {
		if err := e.Close(); err != nil {
			b.Errorf("close eslite: %v", err)
		}
	})
	tp, err := elastictransport.New(elastictransport.Config{
		URLs:      []*url.URL{{Scheme: "http", Host: "eslite.invalid"}},
		Transport: e.RoundTripper(),
	})
	if err != nil {
		b.Fatalf("transport: %v", err)
	}
	return e, tp
}

func perform(b *testing.B, tp esapi.Transport, req esapi.Request) []byte {
	b.Helper()
	res, err := req.Do(context.Background(), tp)
	if err != nil {
		b.Fatalf("request: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.Fatalf("read response: %v", err)
	}
	if res.IsError() {
		b.Fatalf("%s: %s", res.Status(), body)
	}
	return body
}

var statuses = []string{"active", "pending", "archived", "draft"}

var benchEpoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// appendBenchDoc appends the JSON source of the i-th small benchmark document.
func appendBenchDoc(buf []byte, i int) []byte {
	return fmt.Appendf(buf, "{\"status\":%q,\"price\":%d,\"created\":%q,\"title\":\"item number %d of the benchmark\"}",
		statuses[i%len(statuses)], i%10000, benchEpoch.Add(time.Duration(i)*time.Minute).Format(time.RFC3339), i)
}

// loadDocs bulk-indexes n small documents in requests of batch documents
// and returns the time it took.
func loadDocs(b *testing.B, tp esapi.Transport, index string, n, batch int) time.Duration {
	b.Helper()
	var buf []byte
	start := time.Now()
	for i := 0; i < n; {
		buf = buf[:0]
		for j := 0; j < batch && i < n; j, i = j+1, i+1 {
			buf = fmt.Appendf(buf, "{\"index\":{\"_id\":\"%d\"}}\n", i)
			buf = append(appendBenchDoc(buf, i), '\n')
		}
		body := perform(b, tp, esapi.BulkRequest{Index: index, Body: bytes.NewReader(buf)})
		if bytes.Contains(body[:min(len(body), 64)], []byte(`"errors":true`)) {
			b.Fatalf("bulk reported errors: %.500s", body)
		}
	}
	return time.Since(start)
}

// loadSearchable bulk-indexes n small documents into a new index of a new
// persistent engine and refreshes it; it returns the time from the first
// request until the refresh answered, when every document is searchable,
// and the CPU time the process spent meanwhile.
func loadSearchable(b *testing.B, n, batch int) (time.Duration, time.Duration) {
	b.Helper()
	e, tp := openEngine(b)
	perform(b, tp, esapi.IndicesCreateRequest{Index: "bulk", Body: strings.NewReader(benchMapping)})
	start, cpu := time.Now(), cpuTime()
	loadDocs(b, tp, "bulk", n, batch)
	perform(b, tp, esapi.IndicesRefreshRequest{Index: []string{"bulk"}})
	took, cpu := time.Since(start), cpuTime()-cpu
	checkCount(b, tp, "bulk", n)
	if err := e.Close(); err != nil {
		b.Fatalf("close eslite: %v", err)
	}
	return took, cpu
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// checkCount fails unless a search counts n documents in index.
func checkCount(b *testing.B, tp esapi.Transport, index string, n int) {
	b.Helper()
	body := perform(b, tp, esapi.CountRequest{Index: []string{index}})
	var res struct {
		Count int `json:"count"`
	}
	if err := json.Unmarshal(body, &res); err != nil || res.Count != n {
		b.Fatalf("count of %s: want %d, got %s", index, n, body)
	}
}

// bleveDefaultsLoad is the ceiling BenchmarkEsliteBulk compares with: plain
// bleve v2 with its default mapping and index configuration (scorch, safe
// batches), indexing the same documents decoded from the same JSON, one
// bleve batch per bulk request. It returns the time until the last batch
// returned, when bleve has made every document searchable, and the CPU time
// the process spent meanwhile.
func bleveDefaultsLoad(b *testing.B, n, batch int) (time.Duration, time.Duration) {
	b.Helper()
	idx, err := bleve.New(filepath.Join(b.TempDir(), "bleve"), bleve.NewIndexMapping())
	if err != nil {
		b.Fatalf("create bleve index: %v", err)
	}
	var buf []byte
	start, cpu := time.Now(), cpuTime()
	for i := 0; i < n; {
		bt := idx.NewBatch()
		for j := 0; j < batch && i < n; j, i = j+1, i+1 {
			buf = appendBenchDoc(buf[:0], i)
			var doc map[string]any
			if err := json.Unmarshal(buf, &doc); err != nil {
				b.Fatalf("decode document: %v", err)
			}
			if err := bt.Index(strconv.Itoa(i), doc); err != nil {
				b.Fatalf("bleve batch: %v", err)
			}
		}
		if err := idx.Batch(bt); err != nil {
			b.Fatalf("bleve batch: %v", err)
		}
	}
	took, cpu := time.Since(start), cpuTime()-cpu
	if got, err := idx.DocCount(); err != nil || got != uint64(n) {
		b.Fatalf("bleve doc count: %d, %v; want %d", got, err, n)
	}
	if err := idx.Close(); err != nil {
		b.Fatalf("close bleve: %v", err)
	}
	return took, cpu
}

const benchMapping = `{"settings":{"number_of_replicas":0,"refresh_interval":"1s"},
 "mappings":{"properties":{"status":{"type":"keyword"},"price":{"type":"long"},"created":{"type":"date"},"title":{"type":"text"}}}}`

// BenchmarkEsliteBulk indexes 100k small documents through the in-process
// RoundTripper in _bulk requests of 2000 documents, with a data directory,
// timed until a refresh made them all searchable. The ceiling in the same
// run is bleve with its defaults batch-indexing the same documents
// (bleveDefaultsLoad); the two alternate, best of attempts(b) each, and
// ratio is eslite's rate over bleve's. cpu-ratio compares the CPU time each
// spent per document (bleve's over eslite's, best attempts too), which a
// machine shared with other work disturbs less than the wall clock.
// WALSEARCH_BENCH_DOCS sets the size.
func BenchmarkEsliteBulk(b *testing.B) {
	n := benchDocs(b, 100_000)
	for b.Loop() {
		var took, bleveTook, cpu, bleveCPU time.Duration
		for range attempts(b) {
			t, c := loadSearchable(b, n, 2000)
			took, cpu = best(took, t), best(cpu, c)
			t, c = bleveDefaultsLoad(b, n, 2000)
			bleveTook, bleveCPU = best(bleveTook, t), best(bleveCPU, c)
		}
		rate, bleveRate := float64(n)/took.Seconds(), float64(n)/bleveTook.Seconds()
		b.ReportMetric(rate, "docs/s")
		b.ReportMetric(bleveRate, "bleve-docs/s")
		b.ReportMetric(rate/bleveRate, "ratio")
		b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-us/doc")
		b.ReportMetric(float64(bleveCPU.Microseconds())/float64(n), "bleve-cpu-us/doc")
		b.ReportMetric(float64(bleveCPU)/float64(cpu), "cpu-ratio")
	}
	reportMemory(b)
}

// BenchmarkEsliteFilteredSearch loads 1M small documents, then runs 1000
// filtered searches (bool.filter term + range, size 10) and reports their
// latency percentiles. The load, in _bulk requests of 5000 documents as a
// snapshot sends them, is timed until a refresh made every document
// searchable (searchable-s) and reports its own peak resident set
// (load-peak-rss-MiB, the process's peak reset before the load).
func BenchmarkEsliteFilteredSearch(b *testing.B) {
	n := benchDocs(b, 1_000_000)
	const searches = 1000
	_, tp := openEngine(b)
	perform(b, tp, esapi.IndicesCreateRequest{Index: "search", Body: strings.NewReader(benchMapping)})
	resetPeakRSS()
	start := time.Now()
	loadDocs(b, tp, "search", n, 5000)
	perform(b, tp, esapi.IndicesRefreshRequest{Index: []string{"search"}})
	took := time.Since(start)
	loadPeak, havePeak := vmHWM()
	checkCount(b, tp, "search", n)
	b.ResetTimer()
	for b.Loop() {
		lat := make([]time.Duration, 0, searches)
		for i := range searches {
			lo := (i * 37) % 9000
			q := fmt.Sprintf(`{"size":10,"query":{"bool":{"filter":[{"term":{"status":%q}},{"range":{"price":{"gte":%d,"lt":%d}}}]}}}`,
				statuses[i%len(statuses)], lo, lo+1000)
			start := time.Now()
			perform(b, tp, esapi.SearchRequest{Index: []string{"search"}, Body: strings.NewReader(q)})
			lat = append(lat, time.Since(start))
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
		b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
		b.ReportMetric(float64(n)/took.Seconds(), "load-docs/s")
		b.ReportMetric(took.Seconds(), "searchable-s")
		if havePeak {
			b.ReportMetric(float64(loadPeak)/(1<<20), "load-peak-rss-MiB")
		}
	}
	reportMemory(b)
}

// BenchmarkEsliteGet measures realtime GET by id on 100k small documents,
// in memory and with a data directory (where _source is read from the
// store), reporting each lookup's mean latency.
func BenchmarkEsliteGet(b *testing.B) {
	n := benchDocs(b, 100_000)
	for _, persistent := range []bool{false, true} {
		name := "memory"
		if persistent {
			name = "dir"
		}
		b.Run(name, func(b *testing.B) {
			dir := ""
			if persistent {
				dir = b.TempDir()
			}
			_, tp := openEngineIn(b, dir)
			perform(b, tp, esapi.IndicesCreateRequest{Index: "get", Body: strings.NewReader(benchMapping)})
			loadDocs(b, tp, "get", n, 2000)
			i := 0
			b.ResetTimer()
			for b.Loop() {
				perform(b, tp, esapi.GetRequest{Index: "get", DocumentID: strconv.Itoa((i * 7919) % n)})
				i++
			}
		})
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// reportMemory reports the process's peak resident set (VmHWM) and the Go
// heap as it stands.
func reportMemory(b *testing.B) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(ms.Sys)/(1<<20), "sys-MiB")
	if hwm, ok := vmHWM(); ok {
		b.ReportMetric(float64(hwm)/(1<<20), "peak-rss-MiB")
	}
}

// resetPeakRSS resets the process's peak resident set (VmHWM) to its
// current resident set, so that vmHWM reports the peak from now on (Linux).
func resetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// vmHWM reads the peak resident set size from /proc/self/status (Linux).
func vmHWM() (int64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "VmHWM:") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			return 0, false
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return 0, false
		}
		return kb << 10, true
	}
	return 0, false
}
