package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// Key is an API key and the indices it may query (all managed indices when
// Indices is empty).
type Key struct {
	Key     string   `koanf:"key"`
	Indices []string `koanf:"indices"`
}

// MinKeyLength is the shortest API key accepted.
const MinKeyLength = 16

type keyEntry struct {
	sum     [32]byte
	id      string // short, non-secret name for rate limiting and logs
	indices map[string]bool
}

// keyring checks API keys in constant time.
type keyring []keyEntry

func newKeyring(keys []Key) keyring {
	out := make(keyring, 0, len(keys))
	for _, k := range keys {
		e := keyEntry{sum: sha256.Sum256([]byte(k.Key))}
		idSum := sha256.Sum256([]byte("walsearch key id\x00" + k.Key))
		e.id = "key:" + strings.ToLower(strings.TrimRight(encodeHex(idSum[:6]), "="))
		if len(k.Indices) > 0 {
			e.indices = map[string]bool{}
			for _, i := range k.Indices {
				e.indices[i] = true
			}
		}
		out = append(out, e)
	}
	return out
}

func encodeHex(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&0xf])
	}
	return string(out)
}

// find returns the entry for token; every key is compared so the time taken
// does not say which key came close.
func (kr keyring) find(token string) (*keyEntry, bool) {
	sum := sha256.Sum256([]byte(token))
	found := -1
	for i := range kr {
		if subtle.ConstantTimeCompare(sum[:], kr[i].sum[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return nil, false
	}
	return &kr[found], true
}

const localsKey = "walsearch.key"

// publicPaths answer without a key: liveness probes and the API description
// (and the web console's static files, see isConsoleAsset).
var publicPaths = map[string]bool{"/health": true, "/health/live": true, "/openapi.json": true}

// authenticate requires a valid key (Authorization: Bearer or X-API-Key)
// when keys are configured.
func (s *Server) authenticate(c *fiber.Ctx) error {
	if len(s.keys) == 0 || PublicPath(c.Path()) {
		return c.Next()
	}
	token := c.Get(fiber.HeaderAuthorization)
	if t, ok := strings.CutPrefix(token, "Bearer "); ok {
		token = strings.TrimSpace(t)
	} else {
		token = c.Get("X-API-Key")
	}
	if token == "" {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="walsearch"`)
		return &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: "an API key is required (Authorization: Bearer <key> or X-API-Key)"}
	}
	e, ok := s.keys.find(token)
	if !ok {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="walsearch", error="invalid_token"`)
		return &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: "the API key is not valid"}
	}
	c.Locals(localsKey, e)
	return c.Next()
}

// allowedIndex reports whether the caller's key may query index.
func allowedIndex(c *fiber.Ctx, index string) bool {
	e, _ := c.Locals(localsKey).(*keyEntry)
	if e == nil || e.indices == nil {
		return true
	}
	return e.indices[index]
}

// allIndices reports whether the caller's key may query every index.
func allIndices(c *fiber.Ctx) bool {
	e, _ := c.Locals(localsKey).(*keyEntry)
	return e == nil || e.indices == nil
}

// clientID is who a request is counted against: its key, else its address.
func clientID(c *fiber.Ctx) string {
	if e, _ := c.Locals(localsKey).(*keyEntry); e != nil {
		return e.id
	}
	return "ip:" + c.IP()
}

// isLoopback reports whether a listen address only accepts local
// connections.
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// PublicPath reports whether a request for path is answered without an
// API key (liveness and health probes, the API description, the web
// console's files).
func PublicPath(path string) bool { return publicPaths[path] || isConsoleAsset(path) }
