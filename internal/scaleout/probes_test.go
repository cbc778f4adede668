package scaleout

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walsearch/walsearch/internal/e2e"
)

// probeHealth is GET /health as the tests read it.
type probeHealth struct {
	Status     string `json:"status"`
	Serving    bool   `json:"serving"`
	Components map[string]struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	} `json:"components"`
}

// probeGet GETs url and returns the status code and body (0 and the error
// when nothing answers).
func probeGet(url string) (int, string) {
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// waitProbe polls GET base+path until ok accepts the answer, failing the
// test when p exits or within passes first.
func waitProbe(t *testing.T, p *e2e.Process, base, path, what string, within time.Duration, ok func(code int, body string) bool) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, body := probeGet(base + path)
		if ok(code, body) {
			return body
		}
		select {
		case <-p.Exited():
			t.Fatalf("%s: the process exited", what)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: GET %s not as wanted within %s: %d %s", what, path, within, code, body)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
}

func healthIs(ok func(code int, h probeHealth) bool) func(int, string) bool {
	return func(code int, body string) bool {
		var h probeHealth
		return json.Unmarshal([]byte(body), &h) == nil && ok(code, h)
	}
}

// metricValue is the value of the sample named exactly name (with its
// labels, if any) in a Prometheus text exposition, or -1.
func metricValue(body, name string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return -1
	}
	return v
}

// TestStageProcessesAnswerProbes: a process without the api role — capture
// alone, transform and sink together — serves GET /health, /health/live
// and /metrics on api.listen: its own components and its own stages'
// figures. A capture that cannot reach PostgreSQL shows as down while the
// process stays alive; a bus that is gone makes /health answer 503.
func TestStageProcessesAnswerProbes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds walsearch and nats-server and runs a NATS cluster")
	}
	d := newDeployment(t)
	proxy := startFaultProxy(t, d.pgURL)
	captureAddr, workerAddr := e2e.FreeAddr(t), e2e.FreeAddr(t)
	run := func(role, pgURL, listen string) *e2e.Process {
		cmd := exec.Command(d.bin, "run", "--config", d.configAt(role, pgURL, listen))
		cmd.Env = os.Environ()
		return e2e.Start(t, cmd)
	}
	capture := run("capture", proxy.url, captureAddr)
	worker := run("transform,sink", d.pgURL, workerAddr)
	capBase, workBase := "http://"+captureAddr, "http://"+workerAddr

	// Both up: their own components, every one ok.
	waitProbe(t, capture, capBase, "/health", "capture healthy", 2*time.Minute, healthIs(func(code int, h probeHealth) bool {
		return code == 200 && h.Status == "ok" && h.Serving && len(h.Components) == 2 &&
			h.Components["bus"].Status == "ok" && h.Components["capture"].Status == "ok"
	}))
	waitProbe(t, worker, workBase, "/health", "transform,sink healthy", 2*time.Minute, healthIs(func(code int, h probeHealth) bool {
		return code == 200 && h.Status == "ok" && h.Serving && len(h.Components) == 4 && h.Components["bus"].Status == "ok" &&
			h.Components["transform"].Status == "ok" && h.Components["sink"].Status == "ok" && h.Components["elasticsearch"].Status == "ok"
	}))
	for _, base := range []string{capBase, workBase} {
		if code, body := probeGet(base + "/health/live"); code != 200 {
			t.Errorf("GET %s/health/live: %d %s", base, code, body)
		}
		if code, _ := probeGet(base + "/search"); code != http.StatusNotFound {
			t.Errorf("GET %s/search: %d, want 404: a process without the api role serves no search API", base, code)
		}
	}

	// Metrics: capture's lease and positions; the sink's counters once
	// the table's 300 rows are written.
	body := waitProbe(t, capture, capBase, "/metrics", "capture's metrics", time.Minute, func(code int, body string) bool {
		return code == 200 && metricValue(body, "walsearch_capture_confirmed_lsn") > 0
	})
	if !strings.Contains(body, "walsearch_capture_lease_token{holder=") || metricValue(body, "walsearch_status_up") != 1 {
		t.Errorf("capture's /metrics: no lease or status:\n%s", body)
	}
	if strings.Contains(body, "walsearch_sink_documents_indexed_total") {
		t.Errorf("capture's /metrics exports the sink's counters")
	}
	body = waitProbe(t, worker, workBase, "/metrics", "the sink's metrics", 2*time.Minute, func(code int, body string) bool {
		return code == 200 && metricValue(body, "walsearch_sink_documents_indexed_total") >= 300
	})
	if !strings.Contains(body, `walsearch_bus_backlog_messages{consumer="transform"}`) || strings.Contains(body, "walsearch_capture_") {
		t.Errorf("transform,sink's /metrics: want the bus backlog and none of capture's figures:\n%s", body)
	}

	// PostgreSQL unreachable for capture: capture down, the process alive
	// and still serving (the bus is up).
	proxy.cut()
	waitProbe(t, capture, capBase, "/health", "capture down", time.Minute, healthIs(func(code int, h probeHealth) bool {
		return code == 200 && h.Status == "degraded" && h.Serving && h.Components["capture"].Status == "down" &&
			h.Components["capture"].Error != "" && h.Components["bus"].Status == "ok"
	}))
	if code, body := probeGet(capBase + "/health/live"); code != 200 {
		t.Errorf("GET /health/live while PostgreSQL is unreachable: %d %s", code, body)
	}

	// The bus gone: 503.
	for i := range d.nats.Size() {
		d.nats.Kill(i)
	}
	for _, p := range []struct {
		proc *e2e.Process
		base string
	}{{capture, capBase}, {worker, workBase}} {
		waitProbe(t, p.proc, p.base, "/health", "bus down at "+p.base, time.Minute, healthIs(func(code int, h probeHealth) bool {
			return code == http.StatusServiceUnavailable && !h.Serving && h.Components["bus"].Status == "down"
		}))
		if code, body := probeGet(p.base + "/health/live"); code != 200 {
			t.Errorf("GET %s/health/live while the bus is down: %d %s", p.base, code, body)
		}
	}
}

// faultProxy is fault injection: a TCP proxy in front of PostgreSQL that
// cut closes, with every connection through it, so that a process finds
// PostgreSQL unreachable.
type faultProxy struct {
	url string
	ln  net.Listener

	mu    sync.Mutex
	conns []net.Conn
	cutAt bool
}

func startFaultProxy(t *testing.T, pgURL string) *faultProxy {
	t.Helper()
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.Host = ln.Addr().String()
	p := &faultProxy{url: u.String(), ln: ln}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			if !p.track(c, up) {
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(up, c); up.Close() }()
			go func() { defer wg.Done(); _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(func() { p.cut(); wg.Wait() })
	return p
}

// track records a proxied connection pair; false (and both closed) once
// the proxy is cut.
func (p *faultProxy) track(c ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cutAt {
		for _, x := range c {
			x.Close()
		}
		return false
	}
	p.conns = append(p.conns, c...)
	return true
}

// cut stops accepting and closes every connection: PostgreSQL becomes
// unreachable through the proxy (connections are refused).
func (p *faultProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cutAt {
		return
	}
	p.cutAt = true
	_ = p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
}
