// Package api serves Walsearch's HTTP search API with fiber: POST /search,
// cursor paging, field and index listings, health, pipeline status, metrics
// and the OpenAPI description.
//
// User input is always mapped to typed queries: it never becomes raw query
// DSL, a script or a regular expression. Only Walsearch-managed indices can
// be reached, hidden fields never leave the server, and the package never
// writes to the search engine except to refresh an index for read-your-writes.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"

	"github.com/walsearch/walsearch/internal/esclient"
)

// Defaults for Config.
const (
	DefaultListen          = "127.0.0.1:8080"
	DefaultRequestTimeout  = 10 * time.Second
	DefaultBodyLimit       = 1 << 20
	DefaultPageSize        = 10
	DefaultRateLimit       = 100.0
	DefaultMinLSNTimeout   = 5 * time.Second
	DefaultBreakerCooldown = 2 * time.Second
	MaxPageSize            = 1000
	MaxResultWindow        = 10000
)

// Fallback modes.
const (
	FallbackNone     = ""
	FallbackPostgres = "postgres"
)

// IndexConfig is per-index API behaviour, keyed by index name.
type IndexConfig struct {
	// HiddenFields are never returned, searched, sorted on, faceted,
	// highlighted or listed. A name hides the field and everything under it.
	HiddenFields []string `koanf:"hidden_fields" help:"fields the API never returns, searches, sorts on, facets, highlights or lists; a name hides everything under it"`
	// SearchFields are the fields "q" searches, each optionally boosted
	// ("title^3"). Default: every text and keyword field.
	SearchFields []string `koanf:"search_fields" help:"fields the API's full-text q searches, each optionally boosted (title^3); empty means every text and keyword field"`
}

// Config configures the API server.
type Config struct {
	// Listen is the address to serve on: the search API, or the probe
	// server (NewProbes) of a process without the api role. Without Keys it
	// must be a loopback address. Default: 127.0.0.1:8080.
	Listen string `koanf:"listen" help:"address of the search API; a process without the api role serves its /health, /health/live and /metrics there instead; without api.keys it must be a loopback address"`
	// RequestTimeout bounds each request. Default: 10s.
	RequestTimeout time.Duration `koanf:"request_timeout" help:"time limit of each API request"`
	// BodyLimit caps request bodies in bytes. Default: 1 MiB.
	BodyLimit int `koanf:"body_limit" help:"largest request body in bytes (at least 1024)"`
	// Keys are the accepted API keys; none means no authentication, on
	// loopback only.
	Keys []Key `koanf:"keys" help:"accepted API keys, each a key of at least 16 characters and optionally the indices it may query (all when empty); WALSEARCH_API_KEYS takes comma-separated keys, each allowed every index; without keys the API listens on loopback only"`
	// RateLimit is requests per second per key (or per client address
	// without keys); 0 means no limit. Default: 100.
	RateLimit float64 `koanf:"rate_limit" help:"requests per second per API key (or client address without keys); 0 means no limit"`
	// RateBurst is the burst allowed above RateLimit. Default: 2×RateLimit.
	RateBurst int `koanf:"rate_burst" help:"requests allowed in a burst above api.rate_limit; 0 means twice api.rate_limit"`
	// CursorSecret signs scroll cursors; empty means a random key per
	// process (cursors then end with the process). Default: "".
	CursorSecret string `koanf:"cursor_secret" help:"secret that signs scroll cursors; empty means a random key per process, so cursors end with it"`
	// MinLSNTimeout bounds a read-your-writes wait. Default: 5s.
	MinLSNTimeout time.Duration `koanf:"min_lsn_timeout" help:"longest a read-your-writes search (min_lsn) waits for its change to be indexed"`
	// BreakerCooldown is how long searches fail fast after the search engine
	// failed. Default: 2s.
	BreakerCooldown time.Duration `koanf:"breaker_cooldown" help:"how long searches fail fast (503, or the fallback) after the search engine failed, before it is tried again"`
	// Fallback is "postgres" to answer simple searches from PostgreSQL while
	// the search engine is down (needs a PostgreSQL connector). Default: "".
	Fallback string `koanf:"fallback" help:"postgres answers simple searches from PostgreSQL while the search engine is unreachable; empty answers 503"`
	// Indices holds per-index settings.
	Indices map[string]IndexConfig `koanf:"-"`
	// Engine, when the search engine is the embedded one, is served
	// read-only under EnginePrefix for operator tools (walsearch verify).
	Engine http.Handler `koanf:"-"`
	Logger *slog.Logger `koanf:"-"`
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{Listen: DefaultListen, RequestTimeout: DefaultRequestTimeout, BodyLimit: DefaultBodyLimit,
		RateLimit: DefaultRateLimit, MinLSNTimeout: DefaultMinLSNTimeout, BreakerCooldown: DefaultBreakerCooldown}
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("api.listen: want host:port, got %q", c.Listen))
	} else if len(c.Keys) == 0 && !isLoopback(c.Listen) {
		errs = append(errs, fmt.Errorf("api.listen: %q accepts remote connections but no API key is configured; set api.keys (or WALSEARCH_API_KEYS) or listen on 127.0.0.1", c.Listen))
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("api.request_timeout: want a positive duration, got %s", c.RequestTimeout))
	}
	if c.BodyLimit < 1024 {
		errs = append(errs, fmt.Errorf("api.body_limit: want at least 1024 bytes, got %d", c.BodyLimit))
	}
	for i, k := range c.Keys {
		if len(k.Key) < MinKeyLength {
			errs = append(errs, fmt.Errorf("api.keys[%d]: want a key of at least %d characters", i, MinKeyLength))
		}
		for _, idx := range k.Indices {
			if validIndexName(idx) != nil {
				errs = append(errs, fmt.Errorf("api.keys[%d].indices: %q is not an index name", i, idx))
			}
		}
	}
	if c.RateLimit < 0 || c.RateBurst < 0 {
		errs = append(errs, fmt.Errorf("api.rate_limit: want 0 (no limit) or more requests per second, got %g (burst %d)", c.RateLimit, c.RateBurst))
	}
	if c.MinLSNTimeout <= 0 {
		errs = append(errs, fmt.Errorf("api.min_lsn_timeout: want a positive duration, got %s", c.MinLSNTimeout))
	}
	if c.BreakerCooldown <= 0 {
		errs = append(errs, fmt.Errorf("api.breaker_cooldown: want a positive duration, got %s", c.BreakerCooldown))
	}
	if c.Fallback != FallbackNone && c.Fallback != FallbackPostgres {
		errs = append(errs, fmt.Errorf("api.fallback: want \"\" or \"postgres\", got %q", c.Fallback))
	}
	return errors.Join(errs...)
}

// Component is one part of the system whose health /health reports.
type Component struct {
	Name  string
	Check func(ctx context.Context) error
}

// Server is the HTTP API.
//
// Lifecycle: Run serves until ctx is done, then shuts down gracefully and
// returns nil; Addr is valid once Ready is closed.
type Server struct {
	cfg        Config
	eng        *engine
	pipe       Pipeline
	components []Component
	log        *slog.Logger
	app        *fiber.App
	mappings   *mappingCache
	indices    *indexCache
	cursors    *cursorCodec
	keys       keyring
	limiter    *rateLimiter
	metrics    *metrics
	checks     Checks
	fallback   *pgFallback
	health     *healthCache
	// deadLetters serves GET /dlq and replays; nil answers 503.
	deadLetters DeadLetterStore
	// probes is set on a server of the health and metrics endpoints only
	// (NewProbes); nil on the search API.
	probes *Stages

	ready chan struct{}
	mu    sync.Mutex
	addr  net.Addr
}

// Option sets an optional collaborator of the Server.
type Option func(*Server) error

// WithPostgres gives the server a PostgreSQL connector for api.fallback:
// postgres. connect opens a new connection; the server pools a few.
func WithPostgres(connect Connector) Option {
	return func(s *Server) error {
		if connect == nil {
			return errors.New("api: WithPostgres needs a connector")
		}
		s.fallback = newPGFallback(connect, s.log)
		return nil
	}
}

// New returns an API server. pipe tells which indices are managed and how
// the pipeline is doing; components are checked by /health besides the
// search engine.
func New(cfg Config, es *esclient.Client, pipe Pipeline, components []Component, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if pipe == nil {
		return nil, errors.New("api: a Pipeline is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cc, err := newCursorCodec(cfg.CursorSecret)
	if err != nil {
		return nil, err
	}
	eng := &engine{es: es, br: &breaker{cooldown: cfg.BreakerCooldown}}
	s := &Server{
		cfg: cfg, eng: eng, pipe: pipe,
		components: components, log: log.With("component", "api"),
		mappings: newMappingCache(es, eng.br, 5*time.Second), indices: &indexCache{src: pipe, ttl: 2 * time.Second, log: log.With("component", "api")},
		cursors: cc, keys: newKeyring(cfg.Keys), ready: make(chan struct{}),
	}
	s.health = &healthCache{ttl: time.Second}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	if cfg.Fallback == FallbackPostgres && s.fallback == nil {
		return nil, errors.New("api.fallback: postgres needs a PostgreSQL connection (WithPostgres)")
	}
	if cfg.Fallback != FallbackPostgres {
		s.fallback = nil
	}
	if err := s.initHTTP(); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

// initHTTP makes the metrics registry and the fiber app with the
// middleware every route goes through: recovery, metrics, authentication
// and the rate limit.
func (s *Server) initHTTP() error {
	cfg := s.cfg
	if cfg.RateLimit > 0 {
		burst := cfg.RateBurst
		if burst == 0 {
			burst = max(1, int(2*cfg.RateLimit))
		}
		s.limiter = newRateLimiter(cfg.RateLimit, burst)
	}
	s.metrics = newMetrics(s)
	if s.checks != nil {
		if err := s.metrics.reg.Register(s.checks); err != nil {
			return err
		}
	}
	s.app = fiber.New(fiber.Config{
		DisableStartupMessage: true,
		BodyLimit:             cfg.BodyLimit,
		ReadTimeout:           cfg.RequestTimeout,
		WriteTimeout:          cfg.RequestTimeout,
		ReadBufferSize:        32 << 10, // room for long cursors in the URL
		ErrorHandler:          s.handleError,
		// Values read from a request (method, headers, params) otherwise
		// alias buffers fasthttp reuses for the next request; metrics labels
		// and rate-limit keys outlive the request, so they must be copies.
		Immutable: true,
	})
	s.app.Use(recover.New())
	s.app.Use(s.metrics.middleware)
	s.app.Use(s.authenticate)
	s.app.Use(s.rateLimit)
	return nil
}

// routes registers every endpoint; openapi.go describes each of them.
func (s *Server) routes() {
	s.app.Get("/health", s.healthHandler)
	s.app.Get("/health/live", s.liveHandler)
	s.app.Get("/openapi.json", s.openAPIHandler)
	s.app.Post("/search", s.search)
	s.app.Get("/search/:index/scroll", s.scroll)
	s.app.Get("/indices", s.indicesHandler)
	s.app.Get("/indices/:index/fields", s.fieldsHandler)
	s.app.Get("/status", s.statusHandler)
	s.app.Get("/metrics", s.metricsHandler)
	s.app.Get("/engine", s.engineHandler)
	s.app.Get("/dlq", s.dlqHandler)
	s.app.Post("/dlq/:seq/replay", s.dlqReplayHandler)
	s.app.Get("/ui", s.consoleHandler)
	s.app.Get("/ui/:file", s.consoleFileHandler)
	s.engineRoutes()
}

// requestContext bounds a request's work by Config.RequestTimeout.
func (s *Server) requestContext(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
}

// Ready is closed once the server listens.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the address the server listens on (after Ready).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Routes lists the registered "METHOD path" pairs, in fiber's path syntax.
func (s *Server) Routes() []string {
	var out []string
	for _, r := range s.app.GetRoutes(true) {
		if r.Method == fiber.MethodHead {
			continue
		}
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

// Run serves until ctx is done.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("api: listen on %s: %w", s.cfg.Listen, err)
	}
	s.mu.Lock()
	s.addr = ln.Addr()
	s.mu.Unlock()
	close(s.ready)
	what := "search API"
	if s.probes != nil {
		what = "health and metrics endpoints"
	}
	if len(s.keys) == 0 {
		s.log.Warn("no API keys configured: the "+what+" accept unauthenticated requests on loopback only", "addr", ln.Addr().String())
	} else {
		s.log.Info(what+" listening", "addr", ln.Addr().String(), "keys", len(s.keys))
	}
	errc := make(chan error, 1)
	go func() { errc <- s.app.Listener(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = s.app.ShutdownWithContext(sctx)
	// A shutdown that lands before the server started serving finds nothing
	// to stop, and the server would then serve forever: closing the listener
	// ends its accept loop whatever the timing.
	_ = ln.Close()
	<-errc
	if err != nil {
		return fmt.Errorf("api: shutdown: %w", err)
	}
	if s.fallback != nil {
		s.fallback.close()
	}
	return nil
}
