package scaleout

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walsearch/walsearch/internal/pgtest"
)

// TestExampleScript runs examples/scale-out/run.sh with the binaries this
// test binary built: it must show the search finding the rows, the standby
// taking over from the killed leader and the rows written meanwhile
// arriving, a worker taking a killed worker's partition and the rows
// written meanwhile arriving, and leave none of the processes it started running, nor its
// directory.
func TestExampleScript(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the scale-out example: nine processes and a PostgreSQL")
	}
	if _, err := pgtest.FindBinDir(); err != nil {
		if os.Getenv(pgtest.RequireEnv) != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	for _, tool := range []string{"bash", "curl", "psql"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the example needs %s: %v", tool, err)
		}
	}
	wsBin, natsBin := binaries(t)
	// The script polls every step with its own deadlines (a minute or two
	// each); this bounds the whole on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "../../examples/scale-out/run.sh")
	cmd.Env = append(os.Environ(), "WALSEARCH_BIN="+wsBin, "NATS_SERVER_BIN="+natsBin, "KEEP_RUNNING=")
	// On a timeout the script is asked to tear down (SIGTERM), not killed.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = time.Minute
	began := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("run.sh took %s:\n%s", time.Since(began).Round(100*time.Millisecond), out)
	if err != nil {
		t.Fatalf("run.sh: %v", err)
	}
	text := string(out)
	for _, want := range []string{
		`"total_records":2`,                  // the first search finds both lamps
		"the other capture stands by",        // two captures, one leads
		"leads now",                          // the standby took over
		"search for 'lamp' finds 4 products", // the rows written without a leader arrived
		"holds both partitions",              // a worker took the killed one's partition
		"search for 'lamp' finds 6 products", // and the rows written meanwhile arrived
		"stopped 9 processes and PostgreSQL",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("run.sh output lacks %q", want)
		}
	}
	// Every process it started is gone, and so is its directory.
	for _, m := range regexp.MustCompile(`started \S+: pid (\d+)`).FindAllStringSubmatch(text, -1) {
		pid, _ := strconv.Atoi(m[1])
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("pid %d, started by run.sh, still runs (%v)", pid, err)
		}
	}
	if m := regexp.MustCompile(`removed (\S+)`).FindStringSubmatch(text); m == nil {
		t.Error("run.sh did not say which directory it removed")
	} else if _, err := os.Stat(m[1]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run.sh left %s behind (%v)", m[1], err)
	}
}
