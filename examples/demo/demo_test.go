package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walsearch/walsearch/internal/e2e"
	"github.com/walsearch/walsearch/internal/pgtest"
)

// demoChildEnv makes the test binary run the demo, so that the test can
// signal it like the real process.
const demoChildEnv = "WALSEARCH_DEMO_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(demoChildEnv) != "" {
		os.Args = append([]string{os.Args[0]}, strings.Fields(os.Getenv(demoChildEnv))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestDemoCleansUpOnEverySignal runs the demo with its output piped, waits
// until it says the shop is searchable, and stops it with a signal. The
// first queries must find orders by a field of their items and by their
// customer's name (the queries were printed before the index existed), and the demo must exit normally having removed its
// PostgreSQL and data directories, including when the reader of its output
// is gone (make demo | tee log, Ctrl-C) and when the signal is SIGPIPE.
func TestDemoCleansUpOnEverySignal(t *testing.T) {
	if _, err := pgtest.FindBinDir(); err != nil {
		if os.Getenv("WALSEARCH_REQUIRE_POSTGRES") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	for _, tc := range []struct {
		name        string
		sig         syscall.Signal
		closeReader bool
	}{
		{"interrupt with the reader gone", syscall.SIGINT, true},
		{"hangup", syscall.SIGHUP, false},
		{"broken pipe", syscall.SIGPIPE, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			listen := freeAddr(t)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), demoChildEnv+"=-listen "+listen+" -orders 300 -writes 20")
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			stderr := &e2e.SyncBuffer{}
			cmd.Stderr = stderr
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			waiting := false
			var pgDir, dataDir string
			t.Cleanup(func() {
				if cmd.ProcessState == nil {
					_ = cmd.Process.Kill()
					if waiting {
						<-exited
					} else {
						_ = cmd.Wait()
					}
				}
				for _, d := range []string{pgDir, dataDir} {
					if d != "" {
						os.RemoveAll(d)
					}
				}
				if t.Failed() {
					t.Logf("demo stderr:\n%s", stderr.String())
				}
			})

			// Read until the demo says it is ready, noting its directories.
			lines := bufio.NewScanner(out)
			ready := false
			for !ready && lines.Scan() {
				line := lines.Text()
				if d, ok := strings.CutPrefix(line, "PostgreSQL files: "); ok {
					pgDir = d
				}
				if d, ok := strings.CutPrefix(line, "Walsearch files:  "); ok {
					dataDir = d
				}
				ready = strings.HasPrefix(line, "Walsearch is running.")
			}
			if !ready {
				t.Fatalf("demo output ended before it was ready: %v", lines.Err())
			}
			if pgDir == "" || dataDir == "" {
				t.Fatal("demo did not print its directories")
			}
			// The announced queries work at once, and reach the fields of
			// the documents' nested objects.
			for _, q := range []struct{ body, want string }{
				{`{"index":"orders","query_fields":{"items.sku":"SKU-000001"},"fields":["id","items.sku"]}`, `"sku":"SKU-000001"`},
				{`{"index":"orders","q":"lovelace","fields":["id","customer.name"]}`, ` Lovelace"`},
			} {
				res, err := http.Post("http://"+listen+"/search", "application/json", strings.NewReader(q.body))
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK || !strings.Contains(string(body), q.want) {
					t.Fatalf("announced query %s: %d %s; want a document with %s", q.body, res.StatusCode, body, q.want)
				}
			}

			waiting = true
			go func() {
				if !tc.closeReader {
					_, _ = io.Copy(io.Discard, out)
				}
				exited <- cmd.Wait()
			}()
			if tc.closeReader {
				// As tee ends on Ctrl-C: the demo's next write to stdout
				// finds the pipe closed.
				out.(io.Closer).Close()
			}
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			// Stopping takes seconds (the pipeline, then PostgreSQL); a
			// demo that ignored the signal would otherwise hang the test.
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("demo exited with %v after %s", err, tc.sig)
				}
			case <-time.After(2 * time.Minute):
				t.Fatalf("demo still running 2m after %s", tc.sig)
			}
			for _, d := range []string{pgDir, dataDir} {
				if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left behind after %s (stat: %v)", d, tc.sig, err)
				}
			}
		})
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
