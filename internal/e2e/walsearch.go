package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
)

// Config is the walsearch.yaml the tests write.
type Config struct {
	DataDir          string
	PostgresURL      string
	Slot             string // also the publication's name
	ElasticsearchURL string
	APIListen        string
	// Extra is appended to the file as it is (YAML).
	Extra string
}

// WriteConfig writes c to a file in a temporary directory and returns its path.
func WriteConfig(tb testing.TB, c Config) string {
	tb.Helper()
	body := fmt.Sprintf("data_dir: %s\npostgres:\n  url: %s\n  slot: %s\n  publication: %s\nelasticsearch:\n  url: %s\napi:\n  listen: %s\nlog:\n  level: info\n%s",
		c.DataDir, c.PostgresURL, c.Slot, c.Slot, c.ElasticsearchURL, c.APIListen, c.Extra)
	path := filepath.Join(tb.TempDir(), "walsearch.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// FreeAddr returns a free 127.0.0.1 address.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Status is the part of walsearch's GET /status the tests read.
type Status struct {
	Capture struct {
		ConfirmedLSN bus.LSN `json:"confirmed_lsn"`
		Phase        string  `json:"phase"` // "snapshot", "streaming", …
	} `json:"capture"`
	// Backlog is the messages waiting per bus consumer ("transform", "sink").
	Backlog map[string]uint64 `json:"bus_backlog"`
	Sink    struct {
		Indexed     uint64 `json:"documents_indexed"`
		Deleted     uint64 `json:"documents_deleted"`
		DeadLetters uint64 `json:"dead_lettered"`
		Retries     uint64 `json:"retries"`
		LastError   string `json:"last_error"`
	} `json:"sink"`
	DLQCount uint64 `json:"dlq_count"`
}

// GetStatus reads GET /status from the API at base (http://host:port).
func GetStatus(ctx context.Context, base string) (Status, error) {
	var st Status
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/status", nil)
	if err != nil {
		return st, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return st, err
	}
	if res.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /status: HTTP %d: %s", res.StatusCode, tail(string(raw), 300))
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("GET /status: %w", err)
	}
	return st, nil
}

// WaitStatus polls GET /status until ok accepts it, and returns it. The
// test fails when the process exits or within passes first.
func WaitStatus(tb testing.TB, p *Process, base, what string, within time.Duration, ok func(Status) bool) Status {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := GetStatus(ctx, base)
		cancel()
		if err == nil && ok(st) {
			return st
		}
		select {
		case <-p.Exited():
			tb.Fatalf("%s: walsearch exited: %v", what, p.err)
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not reached within %s; last status %+v (%v)", what, within, st, err)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
}
