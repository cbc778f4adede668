package main

import (
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestEsliteCommandServesAndPersists runs `walsearch eslite --listen --data`
// as a process, talks to it as any Elasticsearch client would, and checks
// that what it acknowledged survives a restart.
func TestEsliteCommandServesAndPersists(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	do := func(method, path, body string) (int, string, http.Header) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error(), nil
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b), res.Header
	}
	waitUp := func(p *process) {
		deadline := time.Now().Add(60 * time.Second)
		for {
			code, _, h := do("GET", "/", "")
			if code == 200 {
				if h.Get("X-Elastic-Product") != "Elasticsearch" {
					t.Fatalf("GET / lacks X-Elastic-Product: %v", h)
				}
				return
			}
			select {
			case err := <-p.done:
				t.Fatalf("walsearch eslite exited: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatal("walsearch eslite did not answer within 60s")
			}
			time.Sleep(50 * time.Millisecond) // polling interval
		}
	}

	p := startWalsearch(t, "eslite", "--listen", addr, "--data", dir)
	waitUp(p)
	if code, body, _ := do("PUT", "/books/_doc/1?version=7&version_type=external&refresh=true", `{"title":"Dune"}`); code != 201 {
		t.Fatalf("index: %d %s", code, body)
	}
	if code, body, _ := do("DELETE", "/books/_doc/2?version=9&version_type=external", ""); code != 404 {
		t.Fatalf("versioned delete of a missing doc: %d %s", code, body)
	}
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("eslite did not stop cleanly: %v", err)
	}

	p = startWalsearch(t, "eslite", "--listen", addr, "--data", dir)
	waitUp(p)
	code, body, _ := do("GET", "/books/_doc/1", "")
	if code != 200 || !strings.Contains(body, `"_version":7`) || !strings.Contains(body, `"Dune"`) {
		t.Fatalf("after restart GET: %d %s", code, body)
	}
	if code, body, _ := do("POST", "/books/_search", `{"query":{"match":{"title":"dune"}}}`); code != 200 || !strings.Contains(body, `"value":1`) {
		t.Fatalf("after restart search: %d %s", code, body)
	}
	// The delete tombstone survived too: a stale write is still refused.
	if code, body, _ := do("PUT", "/books/_doc/2?version=8&version_type=external", `{"title":"old"}`); code != 409 {
		t.Fatalf("stale write after restart: %d %s, want 409", code, body)
	}
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("eslite did not stop cleanly: %v", err)
	}
}
