package api

import (
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
)

// EnginePrefix is where the embedded engine's read-only Elasticsearch API is
// served (see Config.Engine).
const EnginePrefix = "/_engine"

// engineRoutes serves, when the search engine is the embedded one, its
// Elasticsearch API for reading documents under EnginePrefix: GET /, _mget,
// _search, _count and scrolls. Operator tools such as walsearch verify use
// it while walsearch run holds the engine's files. Only a key allowed every
// index may use it (documents come back whole, hidden fields included), and
// nothing can be written through it.
func (s *Server) engineRoutes() {
	if s.cfg.Engine == nil {
		return
	}
	h := adaptor.HTTPHandler(http.StripPrefix(EnginePrefix, s.cfg.Engine))
	s.app.All(EnginePrefix+"/*", func(c *fiber.Ctx) error {
		if !allIndices(c) {
			return &Error{Status: http.StatusForbidden, Code: CodeForbidden,
				Message: "the engine API needs a key allowed every index"}
		}
		if !engineReadOnly(c.Method(), strings.TrimPrefix(c.Path(), EnginePrefix)) {
			return &Error{Status: http.StatusForbidden, Code: CodeForbidden,
				Message: "only reads (GET /, _mget, _search, _count, scrolls) are served under " + EnginePrefix}
		}
		return h(c)
	})
}

// engineReadOnly reports whether a request to the engine only reads.
func engineReadOnly(method, path string) bool {
	path = strings.TrimSuffix(path, "/")
	if path == "" {
		return method == http.MethodGet || method == http.MethodHead
	}
	if path == "/_search/scroll" || strings.HasPrefix(path, "/_search/scroll/") {
		return method == http.MethodGet || method == http.MethodPost || method == http.MethodDelete
	}
	if method != http.MethodGet && method != http.MethodPost {
		return false
	}
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(parts) > 2 {
		return false
	}
	switch parts[len(parts)-1] {
	case "_mget", "_search", "_count":
		return true
	}
	return false
}
