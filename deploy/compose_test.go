package deploy

import (
	"context"
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
	"github.com/compose-spec/compose-go/v2/types"
)

const composeFile = "compose/compose.yaml"

// loadCompose loads compose.yaml as `docker compose` does: the Compose
// specification's schema (unknown keys are errors), ./.env for
// interpolation (a missing required variable is an error), the given
// profiles.
func loadCompose(t *testing.T, file string, profiles ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithEnv(nil), // not this process's environment: only .env
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithProfiles(profiles),
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

// TestCompose loads deploy/compose/compose.yaml with the Compose loader and
// checks the setup hangs together: PostgreSQL with logical replication and
// the seed; walsearch built from this repository's Dockerfile; each
// walsearch's embedded walsearch.yaml accepted by walsearch's own loader
// with the service's environment; every host it names a service it waits
// for, healthy; credentials the same on both sides; ports, volumes and
// slots consistent.
func TestCompose(t *testing.T) {
	for _, profiles := range [][]string{nil, {"opensearch"}} {
		p := loadCompose(t, composeFile, profiles...)
		ws := walsearchServices(p)
		want := 1 + len(profiles)
		if len(ws) != want {
			t.Fatalf("profiles %v: want %d walsearch services, got %d", profiles, want, len(ws))
		}

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

		slots := map[string]string{}
		dataVolumes := map[string]string{}
		hostPorts := map[string]string{}
		for _, svc := range ws {
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
			cfg := loadConfig(t, svc.Name+"'s walsearch.yaml", walsearchConfig(t, p, svc), env)

			// PostgreSQL: the compose service, healthy first, with the
			// password its seed gave the walsearch role.
			pgURL, err := url.Parse(cfg.Postgres.URL)
			if err != nil {
				t.Fatal(err)
			}
			waitsFor(t, p, svc, pgURL.Hostname(), pgURL.Port())
			if pgURL.User.Username() != "walsearch" || !strings.Contains(seed, "CREATE ROLE walsearch LOGIN REPLICATION") {
				t.Errorf("%s: connects as %q; the seed creates the role walsearch with LOGIN REPLICATION", svc.Name, pgURL.User.Username())
			}
			if pass, _ := pgURL.User.Password(); pass != serviceEnv(pg)["WALSEARCH_PG_PASSWORD"] {
				t.Errorf("%s: the PostgreSQL password differs from the one the seed sets", svc.Name)
			}
			if db := strings.TrimPrefix(pgURL.Path, "/"); db != serviceEnv(pg)["POSTGRES_DB"] {
				t.Errorf("%s: database %q, postgres creates %q", svc.Name, db, serviceEnv(pg)["POSTGRES_DB"])
			}
			for _, table := range cfg.Postgres.Tables {
				if !regexp.MustCompile(`CREATE TABLE ` + regexp.QuoteMeta(table) + ` \(`).MatchString(seed) {
					t.Errorf("%s: postgres.tables has %s, which the seed does not create", svc.Name, table)
				}
			}

			// The search engine: a compose service, healthy first, with
			// the password it was given.
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

			// Own slot, publication and data volume; the API's port
			// published on loopback.
			for _, name := range []string{cfg.Postgres.Slot, "publication " + cfg.Postgres.Publication} {
				if other, ok := slots[name]; ok {
					t.Errorf("%s and %s share %s: every instance needs its own", other, svc.Name, name)
				}
				slots[name] = svc.Name
			}
			var dataVol string
			for _, v := range svc.Volumes {
				if v.Target == cfg.DataDir {
					dataVol = v.Source
				}
			}
			if dataVol == "" || p.Volumes[dataVol].Name == "" {
				t.Errorf("%s: data_dir %s is not on a named volume", svc.Name, cfg.DataDir)
			} else if other, ok := dataVolumes[dataVol]; ok {
				t.Errorf("%s and %s share the data volume %s", other, svc.Name, dataVol)
			}
			dataVolumes[dataVol] = svc.Name
			apiPort := uint32(listenPort(t, cfg.API.Listen))
			published := false
			for _, port := range svc.Ports {
				if port.Target == apiPort {
					published = true
					if port.HostIP != "127.0.0.1" {
						t.Errorf("%s: API published on %q: want 127.0.0.1", svc.Name, port.HostIP)
					}
					if other, ok := hostPorts[port.Published]; ok {
						t.Errorf("%s and %s both publish host port %s", other, svc.Name, port.Published)
					}
					hostPorts[port.Published] = svc.Name
				}
			}
			if !published {
				t.Errorf("%s: the API port %d is not published", svc.Name, apiPort)
			}
		}
	}
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
	if !slices.ContainsFunc(dep.Ports, func(pc types.ServicePortConfig) bool { return strconv.Itoa(int(pc.Target)) == port }) {
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
