package deploy

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/internal/e2e"
	"github.com/walsearch/walsearch/internal/pgtest"
)

const dockerfile = "../Dockerfile"

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd  string // upper case: FROM, RUN, ...
	Args string
	Line int
}

// parseDockerfile reads the instructions of a Dockerfile: comments and
// blank lines dropped, lines ending in a backslash joined.
func parseDockerfile(t *testing.T, file string) []instruction {
	t.Helper()
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(readFile(t, file), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if cont, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: start})
		cur.Reset()
	}
	return out
}

// dockerfileArgs are the names of the build arguments a Dockerfile declares.
func dockerfileArgs(ins []instruction) map[string]bool {
	out := map[string]bool{}
	for _, in := range ins {
		if in.Cmd == "ARG" {
			for _, a := range strings.Fields(in.Args) {
				name, _, _ := strings.Cut(a, "=")
				out[name] = true
			}
		}
	}
	return out
}

// finalStage is the instructions after the last FROM.
func finalStage(ins []instruction) []instruction {
	last := 0
	for i, in := range ins {
		if in.Cmd == "FROM" {
			last = i
		}
	}
	return ins[last:]
}

func jsonList(t *testing.T, in instruction) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(in.Args), &out); err != nil {
		t.Fatalf("Dockerfile line %d: %s %s: want the JSON (exec) form: %v", in.Line, in.Cmd, in.Args, err)
	}
	return out
}

// TestDockerfile checks the image's final stage against the configuration
// it ships: a non-root user, no HEALTHCHECK, the API port exposed, data_dir
// a volume, and a default walsearch.yaml that walsearch accepts once the
// PostgreSQL connection and API keys are given.
func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t, dockerfile)
	args := dockerfileArgs(ins)
	if !args["VERSION"] || !args["COMMIT"] {
		t.Errorf("Dockerfile: want ARG VERSION and ARG COMMIT (make image passes them), got %v", args)
	}
	final := finalStage(ins)
	from := final[0].Args
	if !strings.Contains(from, "distroless/static") && from != "scratch" {
		t.Errorf("final stage FROM %s: want distroless/static or scratch", from)
	}
	var user, cmdConfig, volume string
	var exposed []int
	copies := map[string]string{} // destination -> source
	for _, in := range final {
		switch in.Cmd {
		case "HEALTHCHECK":
			t.Errorf("Dockerfile line %d: HEALTHCHECK: probes belong to the orchestrator", in.Line)
		case "USER":
			user = in.Args
		case "EXPOSE":
			for _, f := range strings.Fields(in.Args) {
				n, err := strconv.Atoi(strings.TrimSuffix(f, "/tcp"))
				if err != nil {
					t.Errorf("Dockerfile line %d: EXPOSE %s", in.Line, f)
				}
				exposed = append(exposed, n)
			}
		case "VOLUME":
			v := jsonList(t, in)
			if len(v) != 1 {
				t.Fatalf("Dockerfile line %d: want one VOLUME, got %v", in.Line, v)
			}
			volume = v[0]
		case "CMD":
			cmdConfig = configArg(jsonList(t, in))
		case "ENTRYPOINT":
			jsonList(t, in)
		case "COPY":
			f := strings.Fields(in.Args)
			var plain []string
			for _, a := range f {
				if !strings.HasPrefix(a, "--") {
					plain = append(plain, a)
				}
			}
			if len(plain) == 2 {
				copies[plain[1]] = plain[0]
			}
		}
	}
	if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || uid == "root" {
		t.Errorf("final stage USER %q: want a non-root user", user)
	}
	if cmdConfig != configPath {
		t.Errorf("CMD: want run --config %s, got %q", configPath, cmdConfig)
	}
	src, ok := copies[configPath]
	if !ok {
		t.Fatalf("the final stage copies nothing to %s", configPath)
	}
	cfg := loadConfig(t, src, readFile(t, filepath.Join("..", src)), map[string]string{
		"PG_HOST": "db.example", "PG_DATABASE": "app", "PG_USER": "walsearch",
		"WALSEARCH_API_KEYS": "a-key-of-sixteen-or-more",
	})
	if cfg.DataDir != volume {
		t.Errorf("data_dir %s, VOLUME %s", cfg.DataDir, volume)
	}
	if _, ok := copies[cfg.ScriptsDir]; !ok {
		t.Errorf("scripts_dir %s is not created in the image", cfg.ScriptsDir)
	}
	if port := listenPort(t, cfg.API.Listen); !slices.Contains(exposed, port) {
		t.Errorf("api.listen %s, EXPOSE %v", cfg.API.Listen, exposed)
	}
	if host, _, _ := strings.Cut(cfg.API.Listen, ":"); host != "0.0.0.0" {
		t.Errorf("api.listen %s: in a container the API must listen on every interface", cfg.API.Listen)
	}
}

// TestDockerignoreKeepsTheBuildInputs: every file the build stage compiles
// or copies is in the build context that .dockerignore leaves.
func TestDockerignoreKeepsTheBuildInputs(t *testing.T) {
	var patterns []string
	for line := range strings.Lines(readFile(t, "../.dockerignore")) {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", "./cmd/walsearch")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	need := []string{"go.mod", "go.sum", "deploy/image/walsearch.yaml"}
	for _, dir := range strings.Fields(string(out)) {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			rel, _ := filepath.Rel(root, f)
			need = append(need, filepath.ToSlash(rel))
		}
	}
	if len(need) < 20 {
		t.Fatalf("go list found only %v", need)
	}
	for _, f := range need {
		if dockerignored(patterns, f) {
			t.Errorf(".dockerignore leaves %s out of the build context", f)
		}
	}
	if !dockerignored(patterns, ".git/config") || !dockerignored(patterns, "walsearch-data/nats/x") {
		t.Errorf(".dockerignore sends .git or walsearch-data to the builder")
	}
}

// dockerignored applies .dockerignore patterns as Docker does: the last
// pattern that matches the file or one of its parent folders decides, "!"
// re-includes, and "**/name" matches at any depth.
func dockerignored(patterns []string, file string) bool {
	ignored := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(strings.TrimPrefix(p, "!"), "/")
		anyDepth := strings.HasPrefix(p, "**/")
		p = strings.TrimPrefix(p, "**/")
		for f := file; f != "." && f != "/"; f = path.Dir(f) {
			name := f
			if anyDepth {
				name = path.Base(f)
			}
			if ok, _ := path.Match(p, name); ok {
				ignored = !neg
				break
			}
		}
	}
	return ignored
}

// buildLikeDockerfile runs the Dockerfile's `go build` command as written,
// for this machine's platform, with its output moved to dir, and returns
// the binary's path.
func buildLikeDockerfile(t *testing.T, dir, version, commit string) string {
	t.Helper()
	var build *instruction
	for _, in := range parseDockerfile(t, dockerfile) {
		if in.Cmd == "RUN" && strings.Contains(in.Args, "go build") {
			build = &in
		}
	}
	if build == nil {
		t.Fatal("Dockerfile: no RUN with go build")
	}
	out := regexp.MustCompile(`-o\s+(\S+)`)
	m := out.FindStringSubmatch(build.Args)
	if m == nil {
		t.Fatalf("Dockerfile line %d: go build without -o", build.Line)
	}
	bin := filepath.Join(dir, path.Base(m[1]))
	script := out.ReplaceAllString(build.Args, "-o "+bin)
	t.Logf("Dockerfile line %d, run as: %s", build.Line, script)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "VERSION="+version, "COMMIT="+commit, "TARGETOS="+runtime.GOOS, "TARGETARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's build failed: %v\n%s", err, b)
	}
	return bin
}

// TestImage builds walsearch with the Dockerfile's own build command, then
// checks the binary: static (the distroless base has no C library),
// stamped with the version and commit, and — on a real PostgreSQL prepared
// by the compose seed, with the compose service's configuration and
// environment — indexing the seed, answering the Kubernetes probes'
// paths, and stopping on SIGTERM well within the grace periods the
// manifests give it.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary as the Dockerfile does")
	}
	const version, commit = "v9.8.7-test", "0123456789abcdef0123456789abcdef01234567"
	bin := buildLikeDockerfile(t, t.TempDir(), version, commit)

	t.Run("static", func(t *testing.T) {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked: it cannot run on distroless/static", bin)
			}
		}
	})

	t.Run("version", func(t *testing.T) {
		want := "walsearch " + version + " (commit " + commit[:12] + ")\n"
		for _, arg := range []string{"version", "--version"} {
			out, err := exec.Command(bin, arg).CombinedOutput()
			if err != nil || string(out) != want {
				t.Errorf("walsearch %s: %q, %v; want %q", arg, out, err, want)
			}
		}
	})

	t.Run("compose seed, probes and SIGTERM", func(t *testing.T) {
		runOnComposeSeed(t, bin)
	})
}

func runOnComposeSeed(t *testing.T, bin string) {
	cluster, err := pgtest.Start()
	if errors.Is(err, pgtest.ErrNotInstalled) && os.Getenv(pgtest.RequireEnv) == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Stop)
	dbURL := cluster.NewDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")

	// The seed, as the postgres image runs it on first start.
	p := loadCompose(t, composeFile)
	pg, err := p.GetService("postgres")
	if err != nil {
		t.Fatal(err)
	}
	var seedDir string
	for _, v := range pg.Volumes {
		if v.Target == "/docker-entrypoint-initdb.d" {
			seedDir = v.Source
		}
	}
	scripts, _ := filepath.Glob(filepath.Join(seedDir, "*.sh"))
	if len(scripts) == 0 {
		t.Fatalf("no seed scripts in %s", seedDir)
	}
	for _, s := range scripts {
		cmd := exec.Command("sh", s)
		// psql: the cluster's own first, as the postgres image has it.
		cmd.Env = append(os.Environ(), "PATH="+cluster.BinDir+string(os.PathListSeparator)+os.Getenv("PATH"), "PGHOST=127.0.0.1", "PGPORT="+strconv.Itoa(cluster.Port),
			"POSTGRES_USER=postgres", "POSTGRES_DB="+db, "WALSEARCH_PG_PASSWORD="+serviceEnv(pg)["WALSEARCH_PG_PASSWORD"])
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("seed %s: %v\n%s", s, err, out)
		}
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rows int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM categories) + (SELECT count(*) FROM products)`).Scan(&rows); err != nil {
		t.Fatal(err)
	}

	// walsearch in one process, as the compose service of the opensearch
	// layout runs it, with its environment and configuration; only the
	// addresses are this machine's, and the embedded engine stands in for
	// OpenSearch.
	p = loadCompose(t, composeFile, "opensearch")
	ws, err := p.GetService("walsearch-opensearch")
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(t.TempDir(), "walsearch.yaml")
	if err := os.WriteFile(cfgFile, []byte(walsearchConfig(t, p, ws)), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := e2e.FreeAddr(t)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range serviceEnv(ws) {
		env = append(env, k+"="+v)
	}
	env = append(env, "PG_HOST=127.0.0.1", "PG_PORT="+strconv.Itoa(cluster.Port), "PG_DATABASE="+db,
		"WALSEARCH_ELASTICSEARCH_URL=", "WALSEARCH_DATA_DIR="+t.TempDir(),
		"WALSEARCH_SCRIPTS_DIR="+t.TempDir(), "WALSEARCH_API_LISTEN="+listen, "WALSEARCH_NATS_LISTEN="+e2e.FreeAddr(t))
	args := slices.Clone(ws.Command)
	args[slices.Index(args, configPath)] = cfgFile
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	proc := e2e.Start(t, cmd)
	base := "http://" + listen
	key := serviceEnv(ws)["WALSEARCH_API_KEYS"]

	deadline := time.Now().Add(3 * time.Minute)
	for {
		var st struct {
			Sink struct {
				Indexed int `json:"documents_indexed"`
			} `json:"sink"`
		}
		code, body := request(t, "GET", base+"/status", key, "")
		if code == http.StatusOK && json.Unmarshal(body, &st) == nil && st.Sink.Indexed >= rows {
			break
		}
		select {
		case <-proc.Exited():
			t.Fatalf("walsearch exited before indexing the seed")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the seed's %d rows not indexed within 3m: %d %s", rows, code, body)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
	// Searchable once the engine refreshed (every second).
	for {
		code, body := request(t, "POST", base+"/search", key, `{"index":"products","q":"teapot"}`)
		var res struct {
			Meta struct {
				Total int `json:"total_records"`
			} `json:"meta"`
		}
		if code == http.StatusOK && json.Unmarshal(body, &res) == nil && res.Meta.Total > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("search products for teapot: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
	if code, _ := request(t, "GET", base+"/status", "", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /status without the key: %d, want 401", code)
	}

	// The Kubernetes probes' paths answer 200, without a key.
	paths, k8sGrace := kubeProbes(t)
	for what, path := range paths {
		if code, body := request(t, "GET", base+path, "", ""); code != http.StatusOK {
			t.Errorf("%s GET %s: %d %s", what, path, code, body)
		}
	}

	// SIGTERM while rows are being written: a clean exit, in time.
	wctx, stopWriting := context.WithCancel(ctx)
	written := make(chan error, 1)
	go func() {
		var err error
		for i := 1_000_000; wctx.Err() == nil && err == nil; i++ {
			_, err = conn.Exec(wctx, `INSERT INTO products (id, sku, name, price) VALUES ($1, $2, 'written while stopping', 1)`, i, fmt.Sprint("W-", i))
		}
		if wctx.Err() != nil {
			err = nil
		}
		written <- err
	}()
	time.Sleep(500 * time.Millisecond) // let writes flow before the signal
	select {
	case err := <-written:
		t.Fatalf("the writer stopped before the signal: %v", err)
	default:
	}
	start := time.Now()
	err = proc.Stop()
	took := time.Since(start)
	stopWriting()
	if werr := <-written; werr != nil {
		t.Errorf("writer: %v", werr)
	}
	if err != nil {
		t.Errorf("walsearch exited with %v on SIGTERM", err)
	}
	composeGrace := time.Duration(*ws.StopGracePeriod)
	t.Logf("walsearch stopped %s after SIGTERM (terminationGracePeriodSeconds %s, stop_grace_period %s)", took, k8sGrace, composeGrace)
	if limit := min(k8sGrace, composeGrace) / 3; took > limit {
		t.Errorf("walsearch took %s to stop: more than a third of its grace period (%s)", took, limit)
	}
}

// request sends an HTTP request with an optional API key and returns the
// status and body.
func request(t *testing.T, method, url, key, body string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, []byte(fmt.Sprint(err))
	}
	return res.StatusCode, b
}
