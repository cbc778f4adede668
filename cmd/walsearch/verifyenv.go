package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/internal/config"
	"github.com/walsearch/walsearch/internal/esclient"
	"github.com/walsearch/walsearch/internal/eslite"
	"github.com/walsearch/walsearch/transform"
	"github.com/walsearch/walsearch/verify"
)

// verifyEnv is what verify and resync need from a configuration: the
// transform scripts, the search engine, and the running walsearch's API.
type verifyEnv struct {
	cfg     config.Config
	scripts *transform.Scripts
	es      *esclient.Client
	engine  *eslite.Engine // opened here when walsearch is not running
	api     *apiClient
}

// openVerifyEnv loads the scripts and finds the search engine: the
// configured Elasticsearch; else the embedded engine through the running
// walsearch's API; else the embedded engine's files under data_dir.
func openVerifyEnv(ctx context.Context, cfg config.Config, log *slog.Logger) (*verifyEnv, error) {
	if cfg.Postgres.URL == "" {
		return nil, errors.New("postgres.url: required (or set PG_HOST, PG_DATABASE, PG_USER, ...)")
	}
	sc := transform.DefaultScriptConfig()
	sc.Dir, sc.Logger, sc.ReloadInterval, sc.Workers = cfg.ScriptsDir, log, 0, 1
	sc.Timeout, sc.MaxDocBytes = cfg.Transform.Timeout, cfg.Transform.MaxDocBytes
	sc.TimeoutRetries, sc.MaxTimeout = cfg.Transform.TimeoutRetries, cfg.Transform.MaxTimeout
	scripts, err := transform.LoadScripts(sc)
	if err != nil {
		return nil, err
	}
	env := &verifyEnv{cfg: cfg, scripts: scripts, api: newAPIClient(cfg)}
	ec := esclient.Config{URL: cfg.Elasticsearch.URL, Username: cfg.Elasticsearch.Username,
		Password: cfg.Elasticsearch.Password, APIKey: cfg.Elasticsearch.APIKey, CACert: cfg.Elasticsearch.CACert,
		InsecureSkipVerify: cfg.Elasticsearch.InsecureSkipVerify}
	if ec.URL == "" {
		if env.api.engineServed(ctx) {
			ec.URL, ec.Transport = env.api.base+api.EnginePrefix, env.api.transport()
		} else {
			eng, err := eslite.Open(eslite.Config{Dir: filepath.Join(cfg.DataDir, "eslite"), Logger: log.With("component", "eslite")})
			if err != nil {
				env.Close()
				return nil, fmt.Errorf("open the embedded search engine under %s (data_dir): %w; "+
					"while walsearch run is running, verify reaches it through api.listen (%s)", cfg.DataDir, err, cfg.API.Listen)
			}
			env.engine = eng
			ec.Transport = eng.RoundTripper()
		}
	}
	if env.es, err = esclient.New(ec); err != nil {
		env.Close()
		return nil, err
	}
	return env, nil
}

// fill sets vc's collaborators.
func (e *verifyEnv) fill(vc *verify.Config) {
	vc.URL, vc.Publication, vc.Slot = e.cfg.Postgres.URL, e.cfg.Postgres.Publication, e.cfg.Postgres.Slot
	vc.Scripts, vc.ES, vc.Alias = e.scripts, e.es, aliasFunc(e.cfg)
	vc.Applied = e.api.applied
}

// Close releases the scripts and an engine opened here.
func (e *verifyEnv) Close() error {
	err := e.scripts.Close()
	if e.engine != nil {
		err = errors.Join(err, e.engine.Close())
	}
	return err
}

// aliasFunc maps a document's index name to the alias the sink writes to.
func aliasFunc(cfg config.Config) func(string) string {
	return cfg.IndexAlias
}

// apiClient talks to the running walsearch's API with the first API key.
type apiClient struct {
	base string
	key  string
	http *http.Client
}

func newAPIClient(cfg config.Config) *apiClient {
	c := &apiClient{base: "http://" + cfg.API.Listen}
	if len(cfg.API.Keys) > 0 {
		c.key = cfg.API.Keys[0].Key
	}
	c.http = &http.Client{Timeout: 30 * time.Second, Transport: c.transport()}
	return c
}

// transport adds the API key to every request.
func (c *apiClient) transport() http.RoundTripper {
	return keyTransport{key: c.key, next: http.DefaultTransport}
}

type keyTransport struct {
	key  string
	next http.RoundTripper
}

func (t keyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.key != "" {
		r = r.Clone(r.Context())
		r.Header.Set("X-API-Key", t.key)
	}
	return t.next.RoundTrip(r)
}

func (c *apiClient) get(ctx context.Context, path string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return 0, nil, err
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	return res.StatusCode, body, err
}

// engineServed reports whether a running walsearch serves its embedded
// engine's API.
func (c *apiClient) engineServed(ctx context.Context) bool {
	status, _, err := c.get(ctx, api.EnginePrefix+"/")
	return err == nil && status == http.StatusOK
}

// applied reads the applied watermark from GET /status.
func (c *apiClient) applied(ctx context.Context) (bus.LSN, error) {
	status, body, err := c.get(ctx, "/status")
	if err != nil {
		return 0, fmt.Errorf("read GET /status: %w", err)
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("read GET /status: status %d", status)
	}
	var st struct {
		AppliedLSN bus.LSN `json:"applied_lsn"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return 0, fmt.Errorf("read GET /status: %w", err)
	}
	return st.AppliedLSN, nil
}
