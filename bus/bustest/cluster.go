package bustest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BuildNATSServer builds the nats-server command, at the version go.mod
// requires, into dir and returns its path.
func BuildNATSServer(dir string) (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "nats-server")
	out, err := exec.Command(goTool, "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build nats-server: %w\n%s", err, out)
	}
	return bin, nil
}

// Cluster is a NATS cluster of nats-server processes on 127.0.0.1, with
// JetStream on, stopped and removed at the end of the test.
type Cluster struct {
	// URL lists the servers' client URLs, comma-separated, as nats.url
	// takes them.
	URL   string
	procs []*exec.Cmd
	done  []chan struct{} // closed when procs[i] exited
}

// StartCluster starts n nats-server processes of bin clustered with each
// other, on random loopback ports, and waits until JetStream answers.
func StartCluster(tb testing.TB, bin string, n int) *Cluster {
	tb.Helper()
	clientPorts, routePorts := freePorts(tb, n), freePorts(tb, n)
	var routes []string
	for _, p := range routePorts {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	c := &Cluster{}
	var urls []string
	for i := range n {
		dir := tb.TempDir()
		conf := fmt.Sprintf(`server_name: n%d
listen: 127.0.0.1:%d
jetstream { store_dir: %q }
cluster { name: walsearch-test, listen: 127.0.0.1:%d, routes: [%s] }
`, i, clientPorts[i], filepath.Join(dir, "js"), routePorts[i], strings.Join(routes, ", "))
		path := filepath.Join(dir, "nats.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			tb.Fatal(err)
		}
		cmd := exec.Command(bin, "-c", path)
		log, err := os.Create(filepath.Join(dir, "nats.log"))
		if err != nil {
			tb.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = log, log
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		c.procs, c.done = append(c.procs, cmd), append(c.done, done)
		tb.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			log.Close()
			if tb.Failed() {
				if b, err := os.ReadFile(log.Name()); err == nil {
					tb.Logf("nats-server n%d log (tail, without the retries to reach a server that is down):\n%s", i, tail(dropRouteRetries(string(b)), 30000))
				}
			}
		})
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]))
	}
	c.URL = strings.Join(urls, ",")
	c.waitReady(tb, time.Duration(n)*30*time.Second)
	return c
}

// Name is the server_name of server i (0 ≤ i < n): "n0", "n1", …, as
// JetStream names stream and meta leaders.
func (c *Cluster) Name(i int) string { return fmt.Sprintf("n%d", i) }

// PID is the process id of server i.
func (c *Cluster) PID(i int) int { return c.procs[i].Process.Pid }

// Size is how many servers the cluster was started with.
func (c *Cluster) Size() int { return len(c.procs) }

// Kill kills server i (SIGKILL) and waits until it is gone; its JetStream
// data stays, and the others carry on without it.
func (c *Cluster) Kill(i int) {
	_ = c.procs[i].Process.Signal(syscall.SIGKILL)
	<-c.done[i]
}

// waitReady polls until JetStream answers on every server: the cluster
// elected its meta leader.
func (c *Cluster) waitReady(tb testing.TB, within time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for _, url := range strings.Split(c.URL, ",") {
		for {
			err := jetStreamAnswers(url)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("nats cluster not ready within %s: %s: %v", within, url, err)
			}
			time.Sleep(100 * time.Millisecond) // polling interval
		}
	}
}

func jetStreamAnswers(url string) error {
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err
}

func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	var lns []net.Listener
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// dropRouteRetries drops the lines of a server's log that say it tried
// again to reach a server that is down: once a second each.
func dropRouteRetries(log string) string {
	var b strings.Builder
	for line := range strings.Lines(log) {
		if !strings.Contains(line, "Error trying to connect to route") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
