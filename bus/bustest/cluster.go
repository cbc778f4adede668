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
		c.procs = append(c.procs, cmd)
		tb.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			log.Close()
			if tb.Failed() {
				if b, err := os.ReadFile(log.Name()); err == nil {
					tb.Logf("nats-server n%d log (tail):\n%s", i, tail(string(b), 1500))
				}
			}
		})
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]))
	}
	c.URL = strings.Join(urls, ",")
	c.waitReady(tb, time.Duration(n)*30*time.Second)
	return c
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

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
