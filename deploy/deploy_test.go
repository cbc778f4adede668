package deploy

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/walsearch/walsearch/internal/config"
)

// configPath is where the image keeps walsearch.yaml, and where compose and
// Kubernetes mount theirs.
const configPath = "/etc/walsearch/walsearch.yaml"

// loadConfig runs walsearch's own configuration loader on body with env
// (NAME=value) and validates the result, as `walsearch run --config` does.
func loadConfig(t *testing.T, what, body string, env map[string]string) config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "walsearch.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var list []string
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	cfg, err := config.Load(path, list, nil)
	if err != nil {
		t.Fatalf("%s: walsearch refuses its configuration: %v", what, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("%s: walsearch refuses its configuration:\n%v", what, err)
	}
	return cfg
}

// listenPort is the port of a host:port listen address.
func listenPort(t *testing.T, listen string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatalf("listen address %q: %v", listen, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("listen address %q: %v", listen, err)
	}
	return n
}

// readFile returns the file's text, relative to this package's folder.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// configArg is the value of --config (or -c) in a command line.
func configArg(args []string) string {
	for i, a := range args {
		if (a == "--config" || a == "-c") && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return v
		}
	}
	return ""
}

// The roles `walsearch run --role` takes (comma-separated), and what
// SERVICE_TYPE stands for.
const (
	roleCapture   = "capture"
	roleTransform = "transform"
	roleSink      = "sink"
	roleAPI       = "api"
	roleAll       = "all"
)

var serviceTypes = map[string]string{"sync": "capture,transform,sink", "api": "api"}

// processRoles is the set of roles a walsearch process runs, read from its
// arguments (--role) and environment (SERVICE_TYPE) as walsearch reads them:
// the flag, else SERVICE_TYPE, else all. "all" stands for every stage, in
// one process with its embedded bus. A role walsearch does not take fails
// the test.
func processRoles(t *testing.T, what string, args []string, env map[string]string) map[string]bool {
	t.Helper()
	list, flagSet := "", false
	for i, a := range args {
		if a == "--role" && i+1 < len(args) {
			list, flagSet = args[i+1], true
		} else if v, ok := strings.CutPrefix(a, "--role="); ok {
			list, flagSet = v, true
		}
	}
	st, stSet := env["SERVICE_TYPE"]
	switch {
	case flagSet && stSet:
		t.Errorf("%s: both --role %s and SERVICE_TYPE=%s: say it once", what, list, st)
	case stSet:
		var ok bool
		if list, ok = serviceTypes[st]; !ok {
			t.Errorf("%s: SERVICE_TYPE=%q: want sync or api", what, st)
		}
	case !flagSet:
		list = roleAll
	}
	out := map[string]bool{}
	for _, r := range strings.Split(list, ",") {
		r = strings.TrimSpace(r)
		switch r {
		case roleAll:
			for _, s := range []string{roleCapture, roleTransform, roleSink, roleAPI, roleAll} {
				out[s] = true
			}
		case roleCapture, roleTransform, roleSink, roleAPI:
			out[r] = true
		default:
			t.Errorf("%s: role %q: want capture, transform, sink, api or all (comma-separated)", what, r)
		}
	}
	if out[roleAll] && len(strings.Split(list, ",")) > 1 {
		t.Errorf("%s: roles %q: all stands alone", what, list)
	}
	return out
}

// documentKind is the kind of documents-path process roles make, as the
// partition leases name it ("transform", "sink" or "transform,sink"), or
// "" for a process running neither (or every stage, role all).
func documentKind(roles map[string]bool) string {
	switch {
	case roles[roleAll]:
		return ""
	case roles[roleTransform] && roles[roleSink]:
		return roleTransform + "," + roleSink
	case roles[roleTransform]:
		return roleTransform
	case roles[roleSink]:
		return roleSink
	}
	return ""
}

// checkDocumentProcesses checks the transform and sink processes of one
// deployment (processes: role -> processes running it; kinds: document
// kind -> who runs it) against its partition count: each role in processes
// of one kind (kinds do not exclude each other, so a transform,sink process
// beside a sink would break the order of a partition's writes); with one
// partition one process of each role (a second only stands by); with more,
// at most nats.partitions of them (the rest only stand by), and
// nats.partitions a multiple of their number, so that every process holds
// as many partitions (each takes at most ceil(partitions/processes): 4 on
// 3 processes may be held 2, 2 and 0).
func checkDocumentProcesses(t *testing.T, processes map[string]int32, kinds map[string][]string, partitions int) {
	t.Helper()
	for _, r := range []string{roleTransform, roleSink} {
		var with []string
		for kind := range kinds {
			if slices.Contains(strings.Split(kind, ","), r) {
				with = append(with, kind)
			}
		}
		if len(with) > 1 {
			t.Errorf("%s runs in processes of several kinds %v (%v): run one kind per role (transform,sink, or transform and sink apart)", r, slices.Sorted(slices.Values(with)), kinds)
		}
		n := int(processes[r])
		switch {
		case n == 0:
		case partitions == 1 && n > 1:
			t.Errorf("%d processes run %s on one partition: one works, the others only stand by; set nats.partitions to share the work", n, r)
		case n > partitions:
			t.Errorf("%d processes run %s on %d partitions: %d only stand by", n, r, partitions, n-partitions)
		case partitions%n != 0:
			t.Errorf("%d processes run %s on %d partitions: want a multiple of %d, so that they hold as many each", n, r, partitions, n)
		}
	}
}
