package api

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Health statuses.
const (
	HealthOK       = "ok"       // every component is up
	HealthDegraded = "degraded" // something is down or needs attention; "serving" says whether searches are answered
	HealthDown     = "down"     // a component's status when its check fails
)

// ErrNeedsAttention is wrapped by the error of a Component check when the
// component works but needs an operator, such as dead letters waiting: the
// component's status is degraded rather than down.
var ErrNeedsAttention = errors.New("needs attention")

type componentHealth struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

type healthResponse struct {
	Status     string                     `json:"status"`
	Serving    bool                       `json:"serving"`
	Components map[string]componentHealth `json:"components"`
	// Fallback is "postgres" while searches are answered from PostgreSQL.
	Fallback string `json:"fallback,omitempty"`
}

// healthCache keeps the last health result for a short time, so probes
// cannot turn into a storm of checks.
type healthCache struct {
	ttl time.Duration

	mu      sync.Mutex
	last    healthResponse
	code    int
	checked time.Time
}

// liveHandler answers 200 while the process serves HTTP, whatever the
// state of the search engine, the bus or PostgreSQL: a liveness probe, which
// must not restart walsearch for an outage a restart does not fix.
func (s *Server) liveHandler(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "alive"})
}

// healthHandler answers GET /health: 200 while searches can be answered,
// 503 when they cannot (the search engine is unreachable and there is no
// fallback). On a probe server (NewProbes): 200 while the bus is up, 503
// while it is down.
func (s *Server) healthHandler(c *fiber.Ctx) error {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	if time.Since(s.health.checked) > s.health.ttl {
		ctx, cancel := context.WithTimeout(c.UserContext(), min(s.cfg.RequestTimeout/2, 3*time.Second))
		s.health.last, s.health.code = s.checkHealth(ctx)
		cancel()
		s.health.checked = time.Now()
	}
	return c.Status(s.health.code).JSON(s.health.last)
}

func (s *Server) checkHealth(ctx context.Context) (healthResponse, int) {
	comps := s.components
	if s.eng != nil {
		comps = append([]Component{{Name: "elasticsearch", Check: s.eng.ping}}, comps...)
	}
	if s.fallback != nil {
		comps = append(comps, Component{Name: "postgres", Check: s.fallback.ping})
	}
	out := make(map[string]componentHealth, len(comps))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, comp := range comps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := componentHealth{Status: HealthOK}
			if err := comp.Check(ctx); errors.Is(err, ErrNeedsAttention) {
				h = componentHealth{Status: HealthDegraded, Error: err.Error()}
			} else if err != nil {
				h = componentHealth{Status: HealthDown, Error: err.Error()}
			}
			mu.Lock()
			out[comp.Name] = h
			mu.Unlock()
		}()
	}
	wg.Wait()
	resp := healthResponse{Status: HealthOK, Serving: true, Components: out}
	for _, h := range out {
		if h.Status != HealthOK {
			resp.Status = HealthDegraded
		}
	}
	if s.probes != nil {
		// A probe server's process does its work while the bus is up.
		if out[probeEssential].Status == HealthDown {
			resp.Serving = false
			return resp, http.StatusServiceUnavailable
		}
		return resp, http.StatusOK
	}
	if out["elasticsearch"].Status != HealthOK {
		if s.fallback != nil && out["postgres"].Status != HealthDown {
			resp.Fallback = FallbackPostgres
		} else {
			resp.Serving = false
			return resp, http.StatusServiceUnavailable
		}
	}
	return resp, http.StatusOK
}
