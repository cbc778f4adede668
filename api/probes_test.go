package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/bus"
)

// startProbes runs a probe server on a free loopback port until the test
// ends and returns its base URL.
func startProbes(t *testing.T, cfg api.Config, stages api.Stages, comps []api.Component, st api.PipelineStatus) (string, *api.Server) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	srv, err := api.NewProbes(cfg, api.PipelineFuncs{StatusFunc: func(context.Context) (api.PipelineStatus, error) { return st, nil }}, stages, comps)
	if err != nil {
		t.Fatal(err)
	}
	return runServer(t, srv), srv
}

func get(t *testing.T, url, key string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

type healthBody struct {
	Status     string `json:"status"`
	Serving    bool   `json:"serving"`
	Components map[string]struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	} `json:"components"`
}

// TestProbesServeHealthAndMetricsOnly: a probe server has the three
// routes and nothing else, needs no search engine, reports its own
// components (503 only while the bus is down) and exports the metrics of
// its own stages.
func TestProbesServeHealthAndMetricsOnly(t *testing.T) {
	t.Parallel()
	var busDown, captureDown atomic.Bool
	comps := []api.Component{
		{Name: "bus", Check: func(context.Context) error {
			if busDown.Load() {
				return errors.New("nats: connection closed")
			}
			return nil
		}},
		{Name: "capture", Check: func(context.Context) error {
			if captureDown.Load() {
				return errors.New("connect to postgresql: connection refused")
			}
			return nil
		}},
	}
	st := api.PipelineStatus{
		Capture: api.CaptureStatus{Phase: "streaming", ReceivedLSN: 0x2000, ConfirmedLSN: 0x1000,
			Leader: &api.LeaderStatus{Holder: "host/1/abc", Token: 7, Revision: 9, Expires: time.Now().Add(time.Minute)}},
		Sink:    api.SinkStatus{Indexed: 42, AppliedLSN: bus.LSN(0x800)},
		Backlog: map[string]uint64{"transform": 3}, SlotLagBytes: 100,
	}
	cfg := api.DefaultConfig()
	base, srv := startProbes(t, cfg, api.Stages{Capture: true}, comps, st)

	if got, want := slices.Sorted(slices.Values(srv.Routes())), []string{"GET /health", "GET /health/live", "GET /metrics"}; !slices.Equal(got, want) {
		t.Errorf("routes %v, want %v", got, want)
	}
	for _, path := range []string{"/search", "/status", "/indices", "/openapi.json", "/dlq"} {
		if code, _ := get(t, base+path, ""); code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
			t.Errorf("GET %s: %d, want 404", path, code)
		}
	}
	if code, body := get(t, base+"/health/live", ""); code != 200 || !strings.Contains(body, `"alive"`) {
		t.Errorf("GET /health/live: %d %s", code, body)
	}

	health := func() (int, healthBody) {
		code, body := get(t, base+"/health", "")
		var h healthBody
		if err := json.Unmarshal([]byte(body), &h); err != nil {
			t.Fatalf("GET /health: %d %s: %v", code, body, err)
		}
		return code, h
	}
	code, h := health()
	if code != 200 || h.Status != api.HealthOK || !h.Serving || len(h.Components) != 2 || h.Components["capture"].Status != api.HealthOK {
		t.Errorf("GET /health with every component up: %d %+v", code, h)
	}
	if _, ok := h.Components["elasticsearch"]; ok {
		t.Errorf("GET /health checks a search engine the process does not use: %+v", h)
	}

	// A stage down: degraded, still 200 (as the API's /health is while a
	// stage is down). Results are cached for a second.
	captureDown.Store(true)
	waitProbeHealth(t, health, "capture down", func(code int, h healthBody) bool {
		return code == 200 && h.Status == api.HealthDegraded && h.Serving && h.Components["capture"].Status == api.HealthDown &&
			strings.Contains(h.Components["capture"].Error, "connection refused")
	})
	// The bus down: nothing this process runs makes progress: 503.
	busDown.Store(true)
	waitProbeHealth(t, health, "bus down", func(code int, h healthBody) bool {
		return code == http.StatusServiceUnavailable && h.Status == api.HealthDegraded && !h.Serving && h.Components["bus"].Status == api.HealthDown
	})

	code, body := get(t, base+"/metrics", "")
	if code != 200 {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	for _, want := range []string{"walsearch_capture_lease_token{holder=\"host/1/abc\"} 7", "walsearch_capture_confirmed_lsn 4096",
		"walsearch_capture_received_lsn 8192", "walsearch_slot_lag_bytes 100", `walsearch_bus_backlog_messages{consumer="transform"} 3`, "walsearch_status_up 1"} {
		if !strings.Contains(body, want) {
			t.Errorf("GET /metrics of a capture process has no %q", want)
		}
	}
	for _, not := range []string{"walsearch_sink_documents_indexed_total", "walsearch_applied_lsn", "walsearch_search_engine_up", "walsearch_lag_bytes"} {
		if strings.Contains(body, not+" ") {
			t.Errorf("GET /metrics of a capture process exports %s, a figure of a stage it does not run", not)
		}
	}
}

func waitProbeHealth(t *testing.T, health func() (int, healthBody), what string, ok func(int, healthBody) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second) // the health cache lasts a second
	for {
		code, h := health()
		if ok(code, h) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: GET /health still %d %+v", what, code, h)
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
}

// TestProbesMetricsOfASinkAndKeys: a sink's figures are exported; with
// keys, /metrics needs one not limited to some indices while the health
// endpoints stay public; without keys, only loopback is accepted.
func TestProbesMetricsOfASinkAndKeys(t *testing.T) {
	t.Parallel()
	const key, limited = "probe-key-0123456789", "limited-key-0123456789"
	cfg := api.DefaultConfig()
	cfg.Keys = []api.Key{{Key: key}, {Key: limited, Indices: []string{"users"}}}
	comps := []api.Component{{Name: "bus", Check: func(context.Context) error { return nil }}}
	st := api.PipelineStatus{Sink: api.SinkStatus{Indexed: 42, AppliedLSN: bus.LSN(0x800)}, Capture: api.CaptureStatus{Phase: "idle"}}
	base, _ := startProbes(t, cfg, api.Stages{Transform: true, Sink: true}, comps, st)

	for _, path := range []string{"/health", "/health/live"} {
		if code, body := get(t, base+path, ""); code != 200 {
			t.Errorf("GET %s without a key: %d %s", path, code, body)
		}
	}
	if code, _ := get(t, base+"/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /metrics without a key: %d, want 401", code)
	}
	if code, _ := get(t, base+"/metrics", limited); code != http.StatusForbidden {
		t.Errorf("GET /metrics with a key limited to some indices: %d, want 403", code)
	}
	code, body := get(t, base+"/metrics", key)
	if code != 200 || !strings.Contains(body, "walsearch_sink_documents_indexed_total 42") || !strings.Contains(body, "walsearch_applied_lsn 2048") {
		t.Errorf("GET /metrics of a sink: %d, no sink counters:\n%s", code, body)
	}
	if strings.Contains(body, "walsearch_capture_") {
		t.Errorf("GET /metrics of a transform and sink exports capture's figures:\n%s", body)
	}

	open := api.DefaultConfig()
	open.Listen = "0.0.0.0:8080"
	if _, err := api.NewProbes(open, api.PipelineFuncs{}, api.Stages{Sink: true}, comps); err == nil || !strings.Contains(err.Error(), "api.keys") {
		t.Errorf("NewProbes off loopback without keys: %v, want the api.listen error", err)
	}
	if _, err := api.NewProbes(api.DefaultConfig(), api.PipelineFuncs{}, api.Stages{Sink: true}, nil); err == nil {
		t.Error("NewProbes without a bus component: no error")
	}
}
