package api

import (
	"errors"
	"log/slog"
	"time"
)

// Stages says which pipeline stages run in the process a probe server
// (NewProbes) reports on: its /metrics exports their figures only.
type Stages struct {
	Capture, Transform, Sink bool
}

// NewProbes returns a server of the health and metrics endpoints only —
// GET /health, /health/live and /metrics — for a process that runs
// pipeline stages but not the search API. It needs no search engine.
//
// components are the process's own: its stages and what they depend on.
// One of them must be named "bus": /health answers 503 (serving false)
// while the bus is down, since no stage makes progress without it, and
// 200 otherwise, with status degraded while any component is not ok —
// the same JSON as the search API's /health. cfg is the API's: Listen is
// where it serves, and Keys guard /metrics as they guard the API's (and
// are required off loopback); /health and /health/live are public.
// WithChecks is the only option that applies.
func NewProbes(cfg Config, pipe Pipeline, stages Stages, components []Component, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if pipe == nil {
		return nil, errors.New("api: a Pipeline is required")
	}
	hasBus := false
	for _, c := range components {
		hasBus = hasBus || c.Name == probeEssential
	}
	if !hasBus {
		return nil, errors.New("api: NewProbes needs a component named " + probeEssential)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg, pipe: pipe, components: components, log: log.With("component", "probes"),
		keys: newKeyring(cfg.Keys), ready: make(chan struct{}), probes: &stages,
		health: &healthCache{ttl: time.Second},
	}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	if s.fallback != nil || s.deadLetters != nil {
		return nil, errors.New("api: NewProbes serves no searches and no dead letters")
	}
	if err := s.initHTTP(); err != nil {
		return nil, err
	}
	s.app.Get("/health", s.healthHandler)
	s.app.Get("/health/live", s.liveHandler)
	s.app.Get("/metrics", s.metricsHandler)
	return s, nil
}

// probeEssential is the component without which a probe server's process
// does no work: its /health answers 503 while it is down.
const probeEssential = "bus"

// reports says whether /metrics exports the figures of stage: always on
// the search API (which reports the whole pipeline), on a probe server
// only for the stages of its process.
func (s *Server) reports(stage string) bool {
	if s.probes == nil {
		return true
	}
	switch stage {
	case "capture":
		return s.probes.Capture
	case "transform":
		return s.probes.Transform
	case "sink":
		return s.probes.Sink
	}
	return false
}
