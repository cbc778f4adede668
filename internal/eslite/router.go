package eslite

import (
	"net/http"
	"net/url"
	"strings"
)

// ServeHTTP serves the Elasticsearch REST API subset eslite implements.
func (e *Engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &call{w: w, r: r}
	if r.URL == nil {
		c.r.URL = &url.URL{Path: "/"}
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		c.q = url.Values{}
		c.fail(errIllegalArgument("failed to parse query string: %v", err))
		return
	}
	c.q = q
	for _, s := range strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/") {
		if s == "" {
			continue
		}
		u, err := url.PathUnescape(s)
		if err != nil {
			u = s
		}
		c.segs = append(c.segs, u)
	}
	if p := contentTypeProblem(r.Header.Get("Content-Type")); p != "" {
		c.failPlain(http.StatusNotAcceptable, p)
		return
	}
	body, berr := readBody(r)
	if berr != nil {
		c.fail(berr)
		return
	}
	c.body = body
	e.mu.RLock()
	closed := e.closed
	e.mu.RUnlock()
	if closed {
		c.fail(esError(http.StatusServiceUnavailable, "node_closed_exception", "node closed"))
		return
	}
	e.route(c)
}

// methods dispatches on the HTTP method, answering 405 for the others.
func (c *call) methods(h map[string]func()) {
	if f, ok := h[c.r.Method]; ok {
		f()
		return
	}
	allowed := make([]string, 0, len(h))
	for _, m := range []string{"DELETE", "GET", "HEAD", "POST", "PUT"} {
		if _, ok := h[m]; ok {
			allowed = append(allowed, m)
		}
	}
	c.badMethod(allowed...)
}

func (e *Engine) route(c *call) {
	s := c.segs
	n := len(s)
	if n == 0 {
		c.methods(map[string]func(){"GET": func() { e.info(c) }, "HEAD": func() { e.info(c) }})
		return
	}
	if strings.HasPrefix(s[0], "_") && s[0] != "_all" && e.routeSystem(c) {
		return
	}
	e.routeIndex(c)
}

// routeIndex serves the /{index}/... endpoints. Like Elasticsearch's path
// trie it also takes a first segment starting with '_' that no system
// endpoint claimed, so PUT /_x answers invalid_index_name_exception.
func (e *Engine) routeIndex(c *call) {
	s := c.segs
	n := len(s)
	idx := s[0]
	if n == 1 {
		c.methods(map[string]func(){
			"PUT":    func() { e.createIndexAPI(c, idx) },
			"HEAD":   func() { e.getIndexAPI(c, idx) },
			"GET":    func() { e.getIndexAPI(c, idx) },
			"DELETE": func() { e.deleteIndexAPI(c, idx) },
		})
		return
	}
	switch {
	case s[1] == "_doc" && n == 2:
		c.methods(map[string]func(){"POST": func() { e.indexDocAPI(c, idx, "", opIndex) }})
	case s[1] == "_doc" && n == 3:
		id := s[2]
		c.methods(map[string]func(){
			"GET":    func() { e.getDocAPI(c, idx, id, false) },
			"HEAD":   func() { e.getDocAPI(c, idx, id, false) },
			"PUT":    func() { e.indexDocAPI(c, idx, id, opIndex) },
			"POST":   func() { e.indexDocAPI(c, idx, id, opIndex) },
			"DELETE": func() { e.deleteDocAPI(c, idx, id) },
		})
	case s[1] == "_create" && n == 3:
		id := s[2]
		c.methods(map[string]func(){
			"PUT":  func() { e.indexDocAPI(c, idx, id, opCreate) },
			"POST": func() { e.indexDocAPI(c, idx, id, opCreate) },
		})
	case s[1] == "_update" && n == 3:
		id := s[2]
		c.methods(map[string]func(){"POST": func() { e.updateDocAPI(c, idx, id) }})
	case s[1] == "_source" && n == 3:
		id := s[2]
		c.methods(map[string]func(){
			"GET":  func() { e.getDocAPI(c, idx, id, true) },
			"HEAD": func() { e.getDocAPI(c, idx, id, true) },
		})
	case n == 2:
		e.routeIndexAction(c, idx, s[1])
	case n == 3 && (s[1] == "_alias" || s[1] == "_aliases"):
		name := s[2]
		c.methods(map[string]func(){
			"GET":    func() { e.getAliasAPI(c, idx, name) },
			"HEAD":   func() { e.getAliasAPI(c, idx, name) },
			"PUT":    func() { e.putAliasAPI(c, idx, name) },
			"POST":   func() { e.putAliasAPI(c, idx, name) },
			"DELETE": func() { e.deleteAliasAPI(c, idx, name) },
		})
	default:
		c.noHandler()
	}
}

func (e *Engine) routeIndexAction(c *call, idx, action string) {
	switch action {
	case "_bulk":
		c.methods(map[string]func(){"POST": func() { e.bulkAPI(c, idx) }, "PUT": func() { e.bulkAPI(c, idx) }})
	case "_search":
		c.methods(map[string]func(){"POST": func() { e.searchAPI(c, idx) }, "GET": func() { e.searchAPI(c, idx) }})
	case "_count":
		c.methods(map[string]func(){"POST": func() { e.countAPI(c, idx) }, "GET": func() { e.countAPI(c, idx) }})
	case "_mget":
		c.methods(map[string]func(){"POST": func() { e.mgetAPI(c, idx) }, "GET": func() { e.mgetAPI(c, idx) }})
	case "_refresh":
		c.methods(map[string]func(){"POST": func() { e.refreshAPI(c, idx) }, "GET": func() { e.refreshAPI(c, idx) }})
	case "_mapping", "_mappings":
		c.methods(map[string]func(){
			"GET":  func() { e.getMappingAPI(c, idx) },
			"PUT":  func() { e.putMappingAPI(c, idx) },
			"POST": func() { e.putMappingAPI(c, idx) },
		})
	case "_settings":
		c.methods(map[string]func(){"GET": func() { e.getSettingsAPI(c, idx) }, "PUT": func() { e.putSettingsAPI(c, idx) }})
	case "_alias", "_aliases":
		c.methods(map[string]func(){"GET": func() { e.getAliasAPI(c, idx, "") }})
	case "_delete_by_query":
		c.methods(map[string]func(){"POST": func() { e.deleteByQueryAPI(c, idx) }})
	case "_update_by_query":
		c.methods(map[string]func(){"POST": func() { e.updateByQueryAPI(c, idx) }})
	case "_pit":
		c.methods(map[string]func(){"POST": func() { e.openPITAPI(c, idx) }})
	case "_msearch":
		c.methods(map[string]func(){"POST": func() { e.msearchAPI(c, idx) }, "GET": func() { e.msearchAPI(c, idx) }})
	default:
		c.noHandler()
	}
}

// routeSystem serves the /_x endpoints; it reports false when none
// matches.
func (e *Engine) routeSystem(c *call) bool {
	s := c.segs
	n := len(s)
	switch {
	case n == 1 && s[0] == "_bulk":
		c.methods(map[string]func(){"POST": func() { e.bulkAPI(c, "") }, "PUT": func() { e.bulkAPI(c, "") }})
	case n == 1 && s[0] == "_search":
		c.methods(map[string]func(){"POST": func() { e.searchAPI(c, "") }, "GET": func() { e.searchAPI(c, "") }})
	case n >= 2 && n <= 3 && s[0] == "_search" && s[1] == "scroll":
		id := ""
		if n == 3 {
			id = s[2]
		}
		c.methods(map[string]func(){
			"GET":    func() { e.scrollAPI(c, id) },
			"POST":   func() { e.scrollAPI(c, id) },
			"DELETE": func() { e.clearScrollAPI(c, id) },
		})
	case n == 1 && s[0] == "_pit":
		c.methods(map[string]func(){"DELETE": func() { e.closePITAPI(c) }})
	case n == 1 && s[0] == "_msearch":
		c.methods(map[string]func(){"POST": func() { e.msearchAPI(c, "") }, "GET": func() { e.msearchAPI(c, "") }})
	case n == 1 && s[0] == "_count":
		c.methods(map[string]func(){"POST": func() { e.countAPI(c, "_all") }, "GET": func() { e.countAPI(c, "_all") }})
	case n == 1 && s[0] == "_mget":
		c.methods(map[string]func(){"POST": func() { e.mgetAPI(c, "") }, "GET": func() { e.mgetAPI(c, "") }})
	case n == 1 && s[0] == "_refresh":
		c.methods(map[string]func(){"POST": func() { e.refreshAPI(c, "_all") }, "GET": func() { e.refreshAPI(c, "_all") }})
	case n == 1 && (s[0] == "_mapping" || s[0] == "_mappings"):
		c.methods(map[string]func(){"GET": func() { e.getMappingAPI(c, "_all") }})
	case n == 1 && s[0] == "_settings":
		c.methods(map[string]func(){"GET": func() { e.getSettingsAPI(c, "_all") }})
	case n == 1 && s[0] == "_aliases":
		c.methods(map[string]func(){"POST": func() { e.updateAliasesAPI(c) }, "GET": func() { e.getAliasAPI(c, "", "") }})
	case n == 1 && s[0] == "_alias":
		c.methods(map[string]func(){"GET": func() { e.getAliasAPI(c, "", "") }})
	case n == 2 && s[0] == "_alias":
		name := s[1]
		c.methods(map[string]func(){"GET": func() { e.getAliasAPI(c, "", name) }, "HEAD": func() { e.getAliasAPI(c, "", name) }})
	case s[0] == "_cluster" && n >= 2 && s[1] == "health" && n <= 3:
		target := ""
		if n == 3 {
			target = s[2]
		}
		c.methods(map[string]func(){"GET": func() { e.healthAPI(c, target) }})
	case s[0] == "_cat" && n >= 2 && s[1] == "indices" && n <= 3:
		target := ""
		if n == 3 {
			target = s[2]
		}
		c.methods(map[string]func(){"GET": func() { e.catIndicesAPI(c, target) }})
	default:
		return false
	}
	return true
}
