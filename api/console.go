package api

import (
	"embed"
	"io/fs"
	"mime"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// consoleFiles is the web console: plain HTML, CSS and JavaScript, served
// from the binary so it works offline and needs no build step.
//
//go:embed ui
var consoleFiles embed.FS

// isConsoleAsset reports whether path is one of the console's static files.
// They hold no data and answer without a key: the page asks for the key
// and sends it with every request it makes to the API.
func isConsoleAsset(p string) bool {
	return p == "/ui" || p == "/ui/" || strings.HasPrefix(p, "/ui/")
}

// consoleHandler answers GET /ui with the console's page.
func (s *Server) consoleHandler(c *fiber.Ctx) error {
	return s.sendConsoleFile(c, "index.html")
}

// consoleFileHandler answers GET /ui/{file} with one of the console's
// scripts or style sheets.
func (s *Server) consoleFileHandler(c *fiber.Ctx) error {
	return s.sendConsoleFile(c, c.Params("file"))
}

func (s *Server) sendConsoleFile(c *fiber.Ctx, name string) error {
	if name == "" || strings.ContainsAny(name, `/\`) || !fs.ValidPath(name) {
		return notFound("no such console file")
	}
	body, err := consoleFiles.ReadFile("ui/" + name)
	if err != nil {
		return notFound("no such console file: " + name)
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = fiber.MIMEOctetStream
	}
	c.Set(fiber.HeaderContentType, ct)
	c.Set(fiber.HeaderCacheControl, "no-cache")
	// The console loads only its own files and talks only to this server.
	c.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("Referrer-Policy", "no-referrer")
	return c.Send(body)
}
