package api

import (
	"errors"
	"net/http"

	"github.com/gofiber/fiber/v2"
)

// Error is an API error answered as {"error":{"code","message"}}.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func badRequest(msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "bad_request", Message: msg}
}

func notFound(msg string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "not_found", Message: msg}
}

func unavailable(msg string) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: msg}
}

// handleError renders every error as JSON. Internal details (queries,
// upstream bodies, stack traces) are logged, never sent.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	var ae *Error
	var fe *fiber.Error
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &fe):
		ae = &Error{Status: fe.Code, Code: http.StatusText(fe.Code), Message: fe.Message}
	default:
		s.log.Error("request failed", "path", c.Path(), "error", err)
		ae = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
	}
	if ae.Status == http.StatusServiceUnavailable {
		c.Set(fiber.HeaderRetryAfter, "5")
	}
	return c.Status(ae.Status).JSON(fiber.Map{"error": ae})
}
