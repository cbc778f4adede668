package api

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Checks reports background checks (walsearch's continuous verify and its
// no-progress watch): their metrics are exported in /metrics and their
// status is the "checks" section of GET /status.
type Checks interface {
	prometheus.Collector
	// Status is a JSON-encodable view of the checks.
	Status() any
}

// WithChecks adds the background checks' metrics and status.
func WithChecks(c Checks) Option {
	return func(s *Server) error {
		if c == nil {
			return errors.New("api: WithChecks needs checks")
		}
		s.checks = c
		return nil
	}
}
