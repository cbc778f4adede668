package deploy

import (
	"context"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/types"
)

const composeFile = "compose/compose.yaml"

// loadCompose loads compose.yaml as `docker compose` does: the Compose
// specification's schema (unknown keys are errors), ./.env for
// interpolation (a missing required variable is an error), the given
// profiles (none: those COMPOSE_PROFILES in .env names).
func loadCompose(t *testing.T, file string, profiles ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithEnv(nil), // not this process's environment: only .env
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		// As docker compose: the --profile flags, or else COMPOSE_PROFILES
		// from .env.
		cli.WithDefaultProfiles(profiles...),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := opts.LoadProject(ctx)
	if err != nil {
		t.Fatalf("%s (profiles %v): %v", file, profiles, err)
	}
	return p
}

// walsearchConfig is the walsearch.yaml a compose service runs with: the
// configs entry mounted where its --config points.
func walsearchConfig(t *testing.T, p *types.Project, svc types.ServiceConfig) string {
	t.Helper()
	file := configArg(svc.Command)
	if file != configPath {
		t.Fatalf("service %s: command %v: want --config %s", svc.Name, svc.Command, configPath)
	}
	for _, c := range svc.Configs {
		if c.Target != file {
			continue
		}
		obj, ok := p.Configs[c.Source]
		if !ok || obj.Content == "" {
			t.Fatalf("service %s: config %s is not an inline configs entry", svc.Name, c.Source)
		}
		return obj.Content
	}
	t.Fatalf("service %s: nothing mounted at %s", svc.Name, file)
	return ""
}

// serviceEnv is a service's environment after interpolation.
func serviceEnv(svc types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for k, v := range svc.Environment {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

// walsearchServices are the services that run the walsearch image.
func walsearchServices(p *types.Project) []types.ServiceConfig {
	var out []types.ServiceConfig
	for _, svc := range p.Services {
		if strings.HasPrefix(svc.Image, "walsearch:") {
			out = append(out, svc)
		}
	}
	slices.SortFunc(out, func(a, b types.ServiceConfig) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// composeLayouts are the layouts compose.yaml offers, by the --profile flags
// that start them (none: COMPOSE_PROFILES in .env), with the services each
// must start. Layouts that may run side by side are listed together too.
var composeLayouts = []struct {
	profiles []string
	services []string
}{
	{nil, []string{"postgres", "elasticsearch", "nats", "walsearch-sync", "walsearch-api"}},
	{[]string{"opensearch"}, []string{"postgres", "opensearch", "walsearch-opensearch"}},
	{[]string{"scale-out"}, []string{"postgres", "elasticsearch", "nats-1", "nats-2", "nats-3",
		"walsearch-capture-1", "walsearch-capture-2", "walsearch-worker-1", "walsearch-worker-2", "walsearch-api-1", "walsearch-api-2"}},
	{[]string{"default", "opensearch"}, []string{"postgres", "elasticsearch", "nats", "walsearch-sync", "walsearch-api", "opensearch", "walsearch-opensearch"}},
	{[]string{"scale-out", "opensearch"}, []string{"postgres", "elasticsearch", "opensearch", "nats-1", "nats-2", "nats-3",
		"walsearch-capture-1", "walsearch-capture-2", "walsearch-worker-1", "walsearch-worker-2", "walsearch-api-1", "walsearch-api-2", "walsearch-opensearch"}},
}

// TestCompose loads deploy/compose/compose.yaml with the Compose loader, in
// every layout, and checks the setup hangs together: the services each
// layout starts; PostgreSQL with logical replication and the seed; NATS
// with JetStream on a volume, its cluster routed to its peers; walsearch
// built from this repository's Dockerfile, each process's roles among those
// walsearch takes and its embedded walsearch.yaml accepted by walsearch's
// own loader with the service's environment; every host a role connects to
// a service it waits for, healthy; credentials the same on both sides, and
// only where a role needs them; every stage run somewhere, with one
// nats.partitions per deployment and as many transform and sink processes
// as it lets share the work (the scale-out profile's workers, two or more);
// ports, volumes and slots consistent.
func TestCompose(t *testing.T) {
	env := dotEnv(t)
	if env["COMPOSE_PROFILES"] != "default" {
		t.Errorf("compose/.env: COMPOSE_PROFILES=%q: want default, the layout `docker compose up` starts", env["COMPOSE_PROFILES"])
	}
	raw := readFile(t, composeFile)
	// Every ${VAR} compose.yaml reads is set in .env or has a default.
	for _, m := range regexp.MustCompile(`(\$*)\$\{(\w+)(:?[-?+])?`).FindAllStringSubmatch(raw, -1) {
		if len(m[1])%2 == 1 {
			continue // $${...}: for the container's shell
		}
		if _, ok := env[m[2]]; !ok && !strings.HasPrefix(m[3], ":-") && m[3] != "-" {
			t.Errorf("compose.yaml reads ${%s}, which compose/.env does not set", m[2])
		}
	}

	// Every declared volume is used, by one service only.
	all := loadCompose(t, composeFile, "*")
	users := map[string][]string{}
	for _, svc := range all.Services {
		for _, v := range svc.Volumes {
			if v.Type == types.VolumeTypeVolume {
				users[v.Source] = append(users[v.Source], svc.Name)
			}
		}
		for _, prof := range svc.Profiles {
			if !slices.ContainsFunc(composeLayouts, func(l struct {
				profiles []string
				services []string
			}) bool {
				return slices.Contains(l.profiles, prof)
			}) {
				t.Errorf("%s: profile %q is not a layout this test checks", svc.Name, prof)
			}
		}
	}
	for name := range all.Volumes {
		if len(users[name]) == 0 {
			t.Errorf("volume %s: declared, used by no service", name)
		}
		if len(users[name]) > 1 {
			t.Errorf("volume %s: mounted by %v: each holds one service's data", name, users[name])
		}
	}

	for _, layout := range composeLayouts {
		t.Run(orDefault(strings.Join(layout.profiles, "+"), "default"), func(t *testing.T) {
			p := loadCompose(t, composeFile, layout.profiles...)
			got := slices.Sorted(maps.Keys(p.Services))
			if want := slices.Sorted(slices.Values(layout.services)); !slices.Equal(got, want) {
				t.Errorf("profiles %v start %v, want %v", layout.profiles, got, want)
			}
			checkComposeLayout(t, p)
		})
	}
}

// checkComposeLayout checks one layout of compose.yaml.
func checkComposeLayout(t *testing.T, p *types.Project) {
	pg, err := p.GetService("postgres")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pg.Command, "wal_level=logical") {
		t.Errorf("postgres: command %v does not set wal_level=logical", pg.Command)
	}
	seedDir := ""
	for _, v := range pg.Volumes {
		if v.Target == "/docker-entrypoint-initdb.d" {
			seedDir = v.Source
		}
	}
	seed := seedSQL(t, seedDir)

	// Ports on loopback, each host port once; a healthcheck on everything
	// but walsearch (distroless: no shell; an orchestrator probes /health).
	hostPorts := map[string]string{}
	for _, svc := range p.Services {
		for _, port := range svc.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %d published on %q: want 127.0.0.1", svc.Name, port.Target, port.HostIP)
			}
			if other, ok := hostPorts[port.Published]; ok {
				t.Errorf("%s and %s both publish host port %s", other, svc.Name, port.Published)
			}
			hostPorts[port.Published] = svc.Name
		}
		if !strings.HasPrefix(svc.Image, "walsearch:") && (svc.HealthCheck == nil || len(svc.HealthCheck.Test) == 0) {
			t.Errorf("%s: no healthcheck: nothing can wait for it", svc.Name)
		}
	}
	checkNATSServices(t, p)

	type deployment struct {
		services       []string
		roles          map[string]int32
		slot, pub, bus string
		partitions     map[int][]string    // nats.partitions -> services
		kinds          map[string][]string // document kind -> services
	}
	deployments := map[string]*deployment{} // by configs entry
	dataVolumes := map[string]string{}
	for _, svc := range walsearchServices(p) {
		if svc.Build == nil {
			t.Errorf("%s: no build section: `docker compose up` could not make the image", svc.Name)
		} else {
			df := filepath.Join(svc.Build.Context, orDefault(svc.Build.Dockerfile, "Dockerfile"))
			if _, err := os.Stat(df); err != nil {
				t.Errorf("%s: build: %v", svc.Name, err)
			} else {
				args := dockerfileArgs(parseDockerfile(t, df))
				for name := range svc.Build.Args {
					if !args[name] {
						t.Errorf("%s: build arg %s is not an ARG of %s", svc.Name, name, df)
					}
				}
			}
		}
		if svc.StopGracePeriod == nil || time.Duration(*svc.StopGracePeriod) < 30*time.Second {
			t.Errorf("%s: stop_grace_period %v: want 30s or more (Docker kills after 10s by default)", svc.Name, svc.StopGracePeriod)
		}

		env := serviceEnv(svc)
		roles := processRoles(t, svc.Name, svc.Command, env)
		cfg := loadConfig(t, svc.Name+"'s walsearch.yaml", walsearchConfig(t, p, svc), env)
		source := svc.Configs[0].Source
		d := deployments[source]
		if d == nil {
			d = &deployment{roles: map[string]int32{}, slot: cfg.Postgres.Slot, pub: cfg.Postgres.Publication, bus: cfg.NATS.URL,
				partitions: map[int][]string{}, kinds: map[string][]string{}}
			deployments[source] = d
		}
		d.services = append(d.services, svc.Name)
		for r := range roles {
			d.roles[r]++
		}
		part := max(1, cfg.NATS.Partitions)
		d.partitions[part] = append(d.partitions[part], svc.Name)
		if kind := documentKind(roles); kind != "" {
			d.kinds[kind] = append(d.kinds[kind], svc.Name)
		}

		// The bus: embedded in one process (role all) with data_dir on a
		// volume of its own; otherwise the NATS services, healthy first,
		// with a replica per server up to 3.
		if roles[roleAll] {
			if cfg.NATS.URL != "" {
				t.Errorf("%s: role all with nats.url: the compose layouts run one process on its embedded bus", svc.Name)
			}
			var dataVol string
			for _, v := range svc.Volumes {
				if v.Target == cfg.DataDir {
					dataVol = v.Source
				}
			}
			if dataVol == "" || p.Volumes[dataVol].Name == "" {
				t.Errorf("%s: data_dir %s (the embedded bus) is not on a named volume", svc.Name, cfg.DataDir)
			} else if other, ok := dataVolumes[dataVol]; ok {
				t.Errorf("%s and %s share the data volume %s", other, svc.Name, dataVol)
			}
			dataVolumes[dataVol] = svc.Name
		} else {
			if cfg.NATS.URL == "" {
				t.Errorf("%s: roles %v need nats.url (the embedded bus serves one process)", svc.Name, slices.Sorted(maps.Keys(roles)))
			}
			servers := strings.Split(cfg.NATS.URL, ",")
			for _, s := range servers {
				u, err := url.Parse(strings.TrimSpace(s))
				if err != nil || u.Scheme != "nats" {
					t.Errorf("%s: nats.url %q: want nats://host:port, comma-separated", svc.Name, cfg.NATS.URL)
					continue
				}
				waitsFor(t, p, svc, u.Hostname(), u.Port())
			}
			if want := min(3, len(servers)); cfg.NATS.Replicas != want {
				t.Errorf("%s: nats.replicas %d on %d servers: want %d", svc.Name, cfg.NATS.Replicas, len(servers), want)
			}
		}

		// PostgreSQL, for the sync roles only: the compose service,
		// healthy first for capture, with the password its seed gave the
		// walsearch role.
		pgURL, err := url.Parse(cfg.Postgres.URL)
		if err != nil {
			t.Fatal(err)
		}
		if roles[roleCapture] {
			waitsFor(t, p, svc, pgURL.Hostname(), pgURL.Port())
		}
		if pgURL.Hostname() != pg.Name {
			t.Errorf("%s: postgres.url names %s, not the postgres service", svc.Name, pgURL.Hostname())
		}
		if pgURL.User.Username() != "walsearch" || !strings.Contains(seed, "CREATE ROLE walsearch LOGIN REPLICATION") {
			t.Errorf("%s: connects as %q; the seed creates the role walsearch with LOGIN REPLICATION", svc.Name, pgURL.User.Username())
		}
		pass, hasPass := pgURL.User.Password()
		switch {
		case roles[roleCapture] && pass != serviceEnv(pg)["WALSEARCH_PG_PASSWORD"]:
			t.Errorf("%s: the PostgreSQL password differs from the one the seed sets", svc.Name)
		case !roles[roleCapture] && !roles[roleTransform] && !roles[roleSink] && hasPass:
			t.Errorf("%s: roles %v open no PostgreSQL connection; do not give it the password", svc.Name, slices.Sorted(maps.Keys(roles)))
		}
		if db := strings.TrimPrefix(pgURL.Path, "/"); db != serviceEnv(pg)["POSTGRES_DB"] {
			t.Errorf("%s: database %q, postgres creates %q", svc.Name, db, serviceEnv(pg)["POSTGRES_DB"])
		}
		for _, table := range cfg.Postgres.Tables {
			if !regexp.MustCompile(`CREATE TABLE ` + regexp.QuoteMeta(table) + ` \(`).MatchString(seed) {
				t.Errorf("%s: postgres.tables has %s, which the seed does not create", svc.Name, table)
			}
		}

		// The search engine, for the sink and the API: a compose service,
		// healthy first, with the password it was given.
		if roles[roleSink] || roles[roleAPI] {
			esURL, err := url.Parse(cfg.Elasticsearch.URL)
			if err != nil || cfg.Elasticsearch.URL == "" {
				t.Fatalf("%s: elasticsearch.url %q: want the compose search engine", svc.Name, cfg.Elasticsearch.URL)
			}
			engine := waitsFor(t, p, svc, esURL.Hostname(), esURL.Port())
			if pw, secured := serviceEnv(engine)["ELASTIC_PASSWORD"]; secured {
				if cfg.Elasticsearch.Username != "elastic" || cfg.Elasticsearch.Password != pw {
					t.Errorf("%s: %s has security on; walsearch's credentials are not the elastic user's", svc.Name, engine.Name)
				}
			}
		}

		// The API, published on loopback; no other role listens.
		apiPort := uint32(listenPort(t, cfg.API.Listen))
		published := slices.ContainsFunc(svc.Ports, func(pc types.ServicePortConfig) bool { return pc.Target == apiPort })
		switch {
		case roles[roleAPI] && !published:
			t.Errorf("%s: the API port %d is not published", svc.Name, apiPort)
		case roles[roleAPI] && len(cfg.API.Keys) == 0:
			t.Errorf("%s: no API keys reach the API", svc.Name)
		case !roles[roleAPI] && len(svc.Ports) > 0:
			t.Errorf("%s: roles %v serve no port; it publishes %v", svc.Name, slices.Sorted(maps.Keys(roles)), svc.Ports)
		}
	}

	// Each deployment (the services sharing one walsearch.yaml) runs every
	// stage on one bus with one partition count (capture publishes on the
	// partitions' subjects, the API waits for every partition), transform
	// and sink as processes of one kind, as many as the partitions allow,
	// and has its own slot and publication.
	slots := map[string]string{}
	for source, d := range deployments {
		for _, r := range []string{roleCapture, roleTransform, roleSink, roleAPI} {
			if d.roles[r] == 0 {
				t.Errorf("config %s (%v): nothing runs %s", source, d.services, r)
			}
		}
		if len(d.partitions) != 1 {
			t.Errorf("config %s: nats.partitions differs between its services: %v", source, d.partitions)
		}
		t.Run(source, func(t *testing.T) {
			checkDocumentProcesses(t, d.roles, d.kinds, slices.Min(slices.Collect(maps.Keys(d.partitions))))
		})
		// The scale-out layout runs the documents path as workers that
		// share the partitions.
		if source == "walsearch-scale-out" {
			for _, r := range []string{roleTransform, roleSink} {
				if d.roles[r] < 2 {
					t.Errorf("config %s (%v): %d processes run %s: want 2 or more sharing the partitions", source, d.services, d.roles[r], r)
				}
			}
		}
		for _, name := range []string{"slot " + d.slot, "publication " + d.pub} {
			if other, ok := slots[name]; ok {
				t.Errorf("configs %s and %s share %s: every deployment needs its own", other, source, name)
			}
			slots[name] = source
		}
	}
}

// checkNATSServices checks the NATS servers: JetStream on, its store on a
// volume, a cluster's routes naming every peer (and only peers) on their
// cluster port.
func checkNATSServices(t *testing.T, p *types.Project) {
	t.Helper()
	clusters := map[string][]string{} // cluster name -> servers
	routes := map[string][]string{}   // server -> routes
	for _, svc := range p.Services {
		if !strings.HasPrefix(svc.Image, "nats:") {
			continue
		}
		flags := map[string]string{}
		for i, a := range svc.Command {
			if strings.HasPrefix(a, "--") {
				flags[a] = ""
				if i+1 < len(svc.Command) && !strings.HasPrefix(svc.Command[i+1], "--") {
					flags[a] = svc.Command[i+1]
				}
			}
		}
		if _, ok := flags["--jetstream"]; !ok {
			t.Errorf("%s: command %v: JetStream is off (--jetstream)", svc.Name, svc.Command)
		}
		if flags["--http_port"] == "" || !strings.Contains(strings.Join(svc.HealthCheck.Test, " "), ":"+flags["--http_port"]+"/healthz") {
			t.Errorf("%s: the healthcheck does not ask the monitoring port (--http_port %q) for /healthz", svc.Name, flags["--http_port"])
		}
		store := flags["--store_dir"]
		if !slices.ContainsFunc(svc.Volumes, func(v types.ServiceVolumeConfig) bool {
			return v.Type == types.VolumeTypeVolume && v.Target == store
		}) {
			t.Errorf("%s: the JetStream store %q is not on a named volume", svc.Name, store)
		}
		if flags["--name"] != svc.Name {
			t.Errorf("%s: --name %q: name each server after its service", svc.Name, flags["--name"])
		}
		if c := flags["--cluster_name"]; c != "" {
			clusters[c] = append(clusters[c], svc.Name)
			routes[svc.Name] = strings.Split(flags["--routes"], ",")
			cu, err := url.Parse(flags["--cluster"])
			if err != nil || !slices.Contains(svc.Expose, cu.Port()) {
				t.Errorf("%s: --cluster %q: want nats://0.0.0.0:<port> with that port in expose", svc.Name, flags["--cluster"])
			}
		}
	}
	for name, servers := range clusters {
		if len(servers) != 3 {
			t.Errorf("NATS cluster %s: %d servers %v, want 3", name, len(servers), servers)
		}
		for _, s := range servers {
			var peers []string
			for _, r := range routes[s] {
				u, err := url.Parse(r)
				if err != nil {
					t.Errorf("%s: route %q: %v", s, r, err)
					continue
				}
				peer, err := p.GetService(u.Hostname())
				if err != nil || !slices.Contains(peer.Expose, u.Port()) {
					t.Errorf("%s: route %s is not a cluster port of a service", s, r)
				}
				peers = append(peers, u.Hostname())
			}
			if !slices.Equal(slices.Sorted(slices.Values(peers)), slices.Sorted(slices.Values(servers))) {
				t.Errorf("%s: routes %v, cluster %s is %v", s, routes[s], name, servers)
			}
		}
	}
}

// dotEnv is compose/.env, parsed as compose does.
func dotEnv(t *testing.T) map[string]string {
	t.Helper()
	env, err := dotenv.GetEnvFromFile(nil, []string{"compose/.env"})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// waitsFor checks that host:port is a service that svc waits for until it
// is healthy (which needs a healthcheck), and returns it.
func waitsFor(t *testing.T, p *types.Project, svc types.ServiceConfig, host, port string) types.ServiceConfig {
	t.Helper()
	dep, err := p.GetService(host)
	if err != nil {
		t.Errorf("%s: connects to %s, which is not a service: %v", svc.Name, host, err)
		return dep
	}
	if d, ok := svc.DependsOn[host]; !ok || d.Condition != types.ServiceConditionHealthy {
		t.Errorf("%s: connects to %s without depends_on %s: condition: service_healthy", svc.Name, host, host)
	}
	if dep.HealthCheck == nil || len(dep.HealthCheck.Test) == 0 {
		t.Errorf("%s: no healthcheck, so service_healthy never comes", host)
	}
	if !slices.ContainsFunc(dep.Ports, func(pc types.ServicePortConfig) bool { return strconv.Itoa(int(pc.Target)) == port }) && !slices.Contains(dep.Expose, port) {
		t.Errorf("%s: connects to %s on port %q, not a port of that service", svc.Name, host, port)
	}
	return dep
}

// seedSQL is the text of every file of the seed folder.
func seedSQL(t *testing.T, dir string) string {
	t.Helper()
	if dir == "" {
		t.Fatal("postgres: nothing mounted at /docker-entrypoint-initdb.d")
	}
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("seed folder %s: empty (%v)", dir, err)
	}
	var b strings.Builder
	for _, f := range files {
		b.WriteString(readFile(t, f))
	}
	return b.String()
}

// TestComposeRefusesUnknownKeys: the loader behind TestCompose is strict.
func TestComposeRefusesUnknownKeys(t *testing.T) {
	dir := t.TempDir()
	body := strings.Replace(readFile(t, composeFile), "stop_grace_period:", "stop_grace_periods:", 1)
	for name, content := range map[string]string{"compose.yaml": body, ".env": readFile(t, "compose/.env")} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "compose.yaml")}, cli.WithWorkingDirectory(dir), cli.WithEnv(nil), cli.WithEnvFiles(), cli.WithDotEnv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := opts.LoadProject(context.Background()); err == nil || !strings.Contains(err.Error(), "stop_grace_periods") {
		t.Errorf("a misspelt key loaded: %v", err)
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
