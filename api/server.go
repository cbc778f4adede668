// Package api serves Walsearch's HTTP API with fiber: search over the
// managed indices and health.
//
// User input is always mapped to typed queries: it never becomes raw query
// DSL, a script or a regular expression, and only Walsearch-managed indices
// can be reached.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/walsearch/walsearch/internal/esclient"
)

// Defaults for Config.
const (
	DefaultListen         = "127.0.0.1:8080"
	DefaultRequestTimeout = 10 * time.Second
	DefaultBodyLimit      = 1 << 20
	DefaultPageSize       = 10
	MaxPageSize           = 1000
	MaxResultWindow       = 10000
)

// Config configures the API server.
type Config struct {
	// Listen is the address to serve on. Default: 127.0.0.1:8080.
	Listen string
	// RequestTimeout bounds each request. Default: 10s.
	RequestTimeout time.Duration
	// BodyLimit caps request bodies in bytes. Default: 1 MiB.
	BodyLimit int
	Logger    *slog.Logger
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{Listen: DefaultListen, RequestTimeout: DefaultRequestTimeout, BodyLimit: DefaultBodyLimit}
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("api.listen: want host:port, got %q", c.Listen))
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("api.request_timeout: want a positive duration, got %s", c.RequestTimeout))
	}
	if c.BodyLimit < 1024 {
		errs = append(errs, fmt.Errorf("api.body_limit: want at least 1024 bytes, got %d", c.BodyLimit))
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
	es         *esclient.Client
	components []Component
	log        *slog.Logger
	app        *fiber.App
	mappings   *mappingCache

	ready chan struct{}
	mu    sync.Mutex
	addr  net.Addr
}

// New returns an API server.
func New(cfg Config, es *esclient.Client, components []Component) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, es: es, components: components, log: log.With("component", "api"),
		mappings: newMappingCache(es, 5*time.Second), ready: make(chan struct{})}
	s.app = fiber.New(fiber.Config{
		DisableStartupMessage: true,
		BodyLimit:             cfg.BodyLimit,
		ReadTimeout:           cfg.RequestTimeout,
		WriteTimeout:          cfg.RequestTimeout,
		ErrorHandler:          s.handleError,
	})
	s.app.Get("/health", s.health)
	s.app.Post("/search", s.search)
	return s, nil
}

// Ready is closed once the server listens.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the address the server listens on (after Ready).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
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
	s.log.Info("search API listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- s.app.Listener(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.app.ShutdownWithContext(sctx); err != nil {
		return fmt.Errorf("api: shutdown: %w", err)
	}
	<-errc
	return nil
}
