package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/internal/pgtest"
)

// testDB creates a throwaway database, runs setup in it and returns its URL
// and a connection closed when the test ends.
func testDB(t *testing.T, setup string) (string, *pgx.Conn) {
	t.Helper()
	c := pgtest.Require(t, cluster)
	ctx := context.Background()
	dbURL := c.NewDatabase(t)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, setup); err != nil {
		t.Fatal(err)
	}
	return dbURL, conn
}

// running is a `walsearch run` started by runPipeline.
type running struct {
	base     string // the API's base URL
	natsAddr string // the embedded NATS server's address, for CLI commands
	cfgPath  string
	p        *process
}

// runPipeline starts `walsearch run` over dbURL with a slot and publication
// named name and a fresh data dir, plus extra YAML, and waits until it is
// healthy.
func runPipeline(t *testing.T, dbURL, name, extra string) running {
	t.Helper()
	r := runPipelineNoWait(t, dbURL, name, extra)
	waitHealthy(t, r.base, r.p)
	return r
}

// runPipelineNoWait is runPipeline without waiting for health.
func runPipelineNoWait(t *testing.T, dbURL, name, extra string) running {
	t.Helper()
	addr, natsAddr := freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(t.TempDir(), "walsearch.yaml")
	cfg := fmt.Sprintf("data_dir: %s\npostgres:\n  url: %s\n  slot: %s\n  publication: %s\napi:\n  listen: %s\nnats:\n  listen: %s\n%s",
		t.TempDir(), dbURL, name, name, addr, natsAddr, extra)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return running{base: "http://" + addr, natsAddr: natsAddr, cfgPath: cfgPath, p: startWalsearch(t, "run", "--config", cfgPath)}
}

// restartPipeline starts r's configuration again, once r's process is
// gone, and waits until it is healthy.
func restartPipeline(t *testing.T, r running) running {
	t.Helper()
	r.p = startWalsearch(t, "run", "--config", r.cfgPath)
	waitHealthy(t, r.base, r.p)
	return r
}

// apiJSON sends a request to the API and decodes a 200 answer into out.
func (r running) apiJSON(method, path, body string, out any) error {
	req, err := http.NewRequest(method, r.base+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, res.StatusCode, raw)
	}
	return json.Unmarshal(raw, out)
}

// docs returns up to 100 documents of index by their id.
func (r running) docs(index string) (map[float64]map[string]any, error) {
	var sr struct {
		Data []map[string]any `json:"data"`
	}
	if err := r.apiJSON("POST", "/search", `{"index":"`+index+`","page_size":100}`, &sr); err != nil {
		return nil, err
	}
	out := map[float64]map[string]any{}
	for _, d := range sr.Data {
		id, _ := d["id"].(float64)
		out[id] = d
	}
	return out, nil
}
