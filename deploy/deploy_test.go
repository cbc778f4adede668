package deploy

import (
	"net"
	"os"
	"path/filepath"
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
