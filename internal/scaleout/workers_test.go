package scaleout

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/walsearch/walsearch/internal/e2e"
)

// waitOutput waits until p's output contains s.
func waitOutput(t *testing.T, p *e2e.Process, what, s string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(p.Output(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %q not in the output within %s:\n%s", what, s, within, p.Output())
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
}

// TestSecondTransformAndSinkStandBy: a second transform and a second sink
// process of one deployment stand by instead of consuming the same stream
// as the first (which would break each document's order), and take over
// when the first is killed. The index ends equal to the table.
func TestSecondTransformAndSinkStandBy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds walsearch and nats-server and runs seven processes")
	}
	d := newDeployment(t)
	wsBin, eng, conn := d.bin, d.eng, d.conn
	url := d.pgURL
	d.start("api")
	d.start("capture")
	active := map[string]*e2e.Process{}
	standby := map[string]*e2e.Process{}
	for _, role := range []string{"transform", "sink"} {
		active[role] = d.start(role)
		waitOutput(t, active[role], "the first "+role, "lease acquired", 2*time.Minute)
		standby[role] = d.start(role)
	}
	eng.WaitEqual(t, conn, "items", "id", "items", 2*time.Minute)
	for role, p := range standby {
		waitOutput(t, p, "the second "+role, "standing by", time.Minute)
		if strings.Contains(p.Output(), "lease acquired") {
			t.Fatalf("the second %s acquired the lease the first holds:\n%s", role, p.Output())
		}
	}

	w := startWorkload(t, url, 1000)
	for _, role := range []string{"transform", "sink"} {
		killed := time.Now()
		active[role].Kill()
		waitOutput(t, standby[role], "the standby "+role+" takes over", "lease acquired", 30*time.Second)
		t.Logf("the standby %s took over %s after the active one was killed (lease TTL %s)", role, time.Since(killed).Round(10*time.Millisecond), d.leaseTTL)
	}
	txs := w.finish(t)
	d.caughtUp(conn, 2*time.Minute)
	eng.WaitEqual(t, conn, "items", "id", "items", time.Minute)
	out, err := exec.Command(wsBin, "verify", "--config", d.apiCfg, "--progress=false").CombinedOutput()
	if err != nil {
		t.Fatalf("walsearch verify: %v\n%s", err, out)
	}
	t.Logf("%d workload transactions; walsearch verify:\n%s", txs, out)
}
