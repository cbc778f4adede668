package scaleout

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// partitionHolders returns, per partition, the pid of the process holding
// its lease of kind (as GET /status shows them), 0 for none.
func (d *deployment) partitionHolders(ctx context.Context, kind string) ([]int, error) {
	var st struct {
		Partitions []struct {
			Partition int               `json:"partition"`
			Holders   map[string]string `json:"holders"`
			Backlog   map[string]uint64 `json:"backlog"`
		} `json:"partitions"`
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+d.apiAddr+"/status", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		return nil, fmt.Errorf("GET /status: %d %s", res.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, err
	}
	pids := make([]int, len(st.Partitions))
	for i, p := range st.Partitions {
		if h := strings.Split(p.Holders[kind], "/"); len(h) == 3 {
			pids[i], _ = strconv.Atoi(h[1])
		}
	}
	return pids, nil
}

// waitHolders polls /status until ok accepts the partitions' holders.
func (d *deployment) waitHolders(what, kind string, within time.Duration, ok func(pids []int) bool) []int {
	d.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		pids, err := d.partitionHolders(ctx, kind)
		cancel()
		if err == nil && len(pids) == d.partitions && ok(pids) {
			return pids
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: not within %s; holders %v (%v)", what, within, pids, err)
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
}

// heldBy reports whether the partitions are held by exactly the processes
// pids, each holding at least one.
func heldBy(pids ...int) func([]int) bool {
	return func(holders []int) bool {
		seen := map[int]bool{}
		for _, h := range holders {
			seen[h] = true
		}
		if len(seen) != len(pids) {
			return false
		}
		for _, p := range pids {
			if !seen[p] {
				return false
			}
		}
		return true
	}
}

// TestPartitionedWorkersShareTheWork runs walsearch with nats.partitions 2
// on a three-server NATS cluster: a capture, an api and `transform,sink`
// workers that share the partitions. Under a write workload whose
// transactions change one row twice (only their order decides the
// outcome), a second worker joins and takes a partition; the first is
// killed (SIGKILL) and the second takes its partition once its lease
// expired; a third joins and takes one. The index ends equal to the table,
// row by row (walsearch verify too): nothing was lost and each row's
// changes were applied in order across every hand-over.
func TestPartitionedWorkersShareTheWork(t *testing.T) {
	if testing.Short() {
		t.Skip("builds walsearch and nats-server and runs six processes")
	}
	d := newDeployment(t)
	d.partitions = 2
	const kind = "transform_sink"
	d.start("api", "WALSEARCH_API_RATE_LIMIT=0")
	d.start("capture")
	a := d.start("transform,sink")
	d.eng.WaitEqual(t, d.conn, "items", "id", "items", 2*time.Minute)
	d.waitHolders("the only worker holds every partition", kind, time.Minute, heldBy(a.PID()))

	w := startWorkload(t, d.pgURL, 1000)
	b := d.start("transform,sink")
	joined := time.Now()
	d.waitHolders("the joining worker takes a partition", kind, time.Minute, heldBy(a.PID(), b.PID()))
	t.Logf("a joining worker held its share %s after it started", time.Since(joined).Round(10*time.Millisecond))

	a.Kill()
	killed := time.Now()
	d.waitHolders("the other worker takes the killed one's partition", kind, time.Minute, heldBy(b.PID()))
	took := time.Since(killed)
	t.Logf("the killed worker's partition was taken over %s after the kill; lease TTL %s", took.Round(10*time.Millisecond), d.leaseTTL)
	if limit := 2*d.leaseTTL + 5*time.Second; took > limit {
		t.Errorf("takeover took %s, want it within the lease TTL (%s) and polling, at most %s", took, d.leaseTTL, limit)
	}
	c := d.start("transform,sink")
	d.waitHolders("a third worker takes a partition", kind, time.Minute, heldBy(b.PID(), c.PID()))

	txs := w.finish(t)
	d.caughtUp(d.conn, 2*time.Minute)
	d.eng.WaitEqual(t, d.conn, "items", "id", "items", time.Minute)
	out, err := exec.Command(d.bin, "verify", "--config", d.apiCfg, "--progress=false").CombinedOutput()
	if err != nil {
		t.Fatalf("walsearch verify: %v\n%s", err, out)
	}
	t.Logf("%d workload transactions; walsearch verify:\n%s", txs, out)
}
