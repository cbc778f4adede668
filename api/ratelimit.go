package api

import (
	"net/http"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/time/rate"
)

// limiterIdle is how long an unused client's limiter is kept.
const limiterIdle = 10 * time.Minute

// rateLimiter allows each client (key or IP) Config.RateLimit requests per
// second, with bursts of Config.RateBurst.
type rateLimiter struct {
	limit rate.Limit
	burst int

	mu        sync.Mutex
	clients   map[string]*clientLimiter
	lastSweep time.Time
}

type clientLimiter struct {
	lim  *rate.Limiter
	seen time.Time
}

func newRateLimiter(perSecond float64, burst int) *rateLimiter {
	return &rateLimiter{limit: rate.Limit(perSecond), burst: burst, clients: map[string]*clientLimiter{}, lastSweep: time.Now()}
}

func (r *rateLimiter) allow(id string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.lastSweep) > limiterIdle {
		for k, cl := range r.clients {
			if now.Sub(cl.seen) > limiterIdle {
				delete(r.clients, k)
			}
		}
		r.lastSweep = now
	}
	cl := r.clients[id]
	if cl == nil {
		cl = &clientLimiter{lim: rate.NewLimiter(r.limit, r.burst)}
		r.clients[id] = cl
	}
	cl.seen = now
	return cl.lim.AllowN(now, 1)
}

// rateLimit answers 429 with Retry-After to a client over its rate.
func (s *Server) rateLimit(c *fiber.Ctx) error {
	if s.limiter == nil {
		return c.Next()
	}
	if !s.limiter.allow(clientID(c), time.Now()) {
		return &Error{Status: http.StatusTooManyRequests, Code: CodeRateLimited, RetryAfter: 1,
			Message: "too many requests; slow down"}
	}
	return c.Next()
}
