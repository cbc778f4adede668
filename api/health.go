package api

import (
	"context"
	"net/http"
	"sync"

	"github.com/gofiber/fiber/v2"
)

type componentHealth struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// health checks every component concurrently and answers 200 when all are
// up, 503 otherwise.
func (s *Server) health(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout/2)
	defer cancel()
	out := make(map[string]componentHealth, len(s.components))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, comp := range s.components {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := componentHealth{Status: "ok"}
			if err := comp.Check(ctx); err != nil {
				h = componentHealth{Status: "down", Error: err.Error()}
			}
			mu.Lock()
			out[comp.Name] = h
			mu.Unlock()
		}()
	}
	wg.Wait()
	status, code := "ok", http.StatusOK
	for _, h := range out {
		if h.Status != "ok" {
			status, code = "degraded", http.StatusServiceUnavailable
		}
	}
	return c.Status(code).JSON(fiber.Map{"status": status, "components": out})
}
