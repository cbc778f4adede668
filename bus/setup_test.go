package bus_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/walsearch/walsearch/bus"
)

// A cluster that cannot answer yet (here: one of three servers is up, so
// JetStream has no meta leader) is waited for while opening the bus, as
// happens when every process of a deployment starts at once; the bus opens
// once the cluster has formed.
func TestOpenWaitsForAClusterThatCannotAnswerYet(t *testing.T) {
	ports := freeLoopbackPorts(t, 6) // clients 0–2, routes 3–5
	var routes []*url.URL
	for i := range 3 {
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", ports[3+i])})
	}
	opts := func(i int) *server.Options {
		return &server.Options{ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: ports[i], JetStream: true,
			StoreDir: t.TempDir(), NoSigs: true, Routes: routes,
			Cluster: server.ClusterOpts{Name: "walsearch-setup-test", Host: "127.0.0.1", Port: ports[3+i]}}
	}
	start := func(i int) {
		s, err := server.NewServer(opts(i))
		if err != nil {
			t.Error(err)
			return
		}
		s.Start()
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	}
	start(0)

	// The others start once the bus has been told the cluster cannot
	// answer yet: without waiting, Open would have failed by then.
	logs := &waitWriter{want: "did not answer yet", seen: make(chan struct{})}
	var started sync.Once
	go func() {
		<-logs.seen
		started.Do(func() { start(1); start(2) })
	}()
	cfg := bus.DefaultConfig()
	cfg.URL = fmt.Sprintf("nats://127.0.0.1:%d", ports[0])
	cfg.Replicas = 3
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b, err := bus.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open while the cluster formed: %v", err)
	}
	defer b.Close()
	if _, _, err := b.State().Get(ctx, "anything"); err != nil {
		t.Fatalf("state bucket after the cluster formed: %v", err)
	}
}

// waitWriter closes seen once a write contains want.
type waitWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *waitWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

// freeLoopbackPorts returns n distinct ports free on 127.0.0.1 a moment ago.
func freeLoopbackPorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}
