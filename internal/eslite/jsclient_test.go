package eslite_test

import (
	"context"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walsearch/walsearch/internal/eslite"
)

// jsClientDir holds check.mjs and, once `npm install` ran there, the
// official JavaScript client it imports.
const jsClientDir = "jsclient"

// TestOfficialJavaScriptClient drives eslite, served on a loopback socket as
// `walsearch eslite --listen` serves it, with the official Elasticsearch
// JavaScript client 8.x: its bulk, scroll and msearch helpers, a point in
// time with search_after, msearch, update_by_query and an update returning
// _source. It also runs against a real cluster when WALSEARCH_TEST_ES_URL is
// set. It skips when node or the client is not installed.
func TestOfficialJavaScriptClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: skipping the official JavaScript client check (install Node.js 20)")
	}
	pkg, err := os.ReadFile(filepath.Join(jsClientDir, "node_modules", "@elastic", "elasticsearch", "package.json"))
	if err != nil {
		t.Skipf("@elastic/elasticsearch is not installed: skipping the official JavaScript client check "+
			"(run `npm install --prefix internal/eslite/%s`): %v", jsClientDir, err)
	}
	var meta struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(pkg, &meta); err != nil || !strings.HasPrefix(meta.Version, "8.") {
		t.Fatalf("internal/eslite/%s has @elastic/elasticsearch %q installed, want 8.x (%v): reinstall with npm install", jsClientDir, meta.Version, err)
	}

	t.Run("eslite", func(t *testing.T) {
		e, err := eslite.Open(eslite.Config{})
		if err != nil {
			t.Fatalf("open eslite: %v", err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- eslite.Serve(ctx, ln, e) }()
		t.Cleanup(func() {
			cancel()
			if err := <-served; err != nil {
				t.Errorf("eslite.Serve: %v", err)
			}
			if err := e.Close(); err != nil {
				t.Errorf("close eslite: %v", err)
			}
		})
		runJSCheck(t, node, "http://"+ln.Addr().String())
	})
	t.Run("elasticsearch", func(t *testing.T) {
		raw := os.Getenv("WALSEARCH_TEST_ES_URL")
		if raw == "" {
			t.Skip("WALSEARCH_TEST_ES_URL not set: skipping the real-cluster run")
		}
		if _, err := url.Parse(raw); err != nil {
			t.Fatalf("parse WALSEARCH_TEST_ES_URL: %v", err)
		}
		runJSCheck(t, node, raw)
	})
}

// runJSCheck runs check.mjs against esURL on a fresh index name.
func runJSCheck(t *testing.T, node, esURL string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "check.mjs")
	cmd.Dir = jsClientDir
	cmd.Env = append(os.Environ(), "ES_URL="+esURL, "ES_INDEX=conf-jsclient-"+strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))+"-"+time.Now().Format("150405.000"))
	out, err := cmd.CombinedOutput()
	t.Logf("node check.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("the official JavaScript client check failed: %v", err)
	}
	if !strings.Contains(string(out), "ok indices.delete") {
		t.Fatalf("check.mjs did not reach its last step")
	}
}
