package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"
)

// Error is an API error answered as {"error":{"code","message"}}. Messages
// name the offending parameter; they never carry queries sent to the engine,
// upstream bodies, credentials or stack traces.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// RetryAfter, when positive, is sent as the Retry-After header (seconds).
	RetryAfter int `json:"-"`
	// cause is what the server logs about the error: never sent.
	cause error
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Unwrap returns the logged cause, if any.
func (e *Error) Unwrap() error { return e.cause }

// Error codes.
const (
	CodeBadRequest    = "bad_request"
	CodeInvalidCursor = "invalid_cursor"
	CodeUnauthorized  = "unauthorized"
	CodeForbidden     = "forbidden"
	CodeNotFound      = "not_found"
	CodeTooLarge      = "too_large"
	CodeRateLimited   = "rate_limited"
	CodeUnavailable   = "unavailable"
	CodeLSNTimeout    = "min_lsn_timeout"
	CodeTimeout       = "timeout"
	CodeInternal      = "internal"
)

func badRequest(msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: msg}
}

func notFound(msg string) *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: msg}
}

func unavailable(msg string) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: msg, RetryAfter: 5}
}

// errIndexNotFound is the answer for an index that is not managed, does not
// exist, or is not allowed for the caller's key: the three are
// indistinguishable on purpose.
func errIndexNotFound(index string) *Error {
	return notFound("index " + strconv.Quote(index) + " does not exist")
}

// handleError renders every error as JSON. Internal details are logged,
// never sent.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	var ae *Error
	var fe *fiber.Error
	switch {
	case errors.As(err, &ae):
		if ae.cause != nil {
			s.log.Warn("request refused", "method", c.Method(), "path", c.Path(), "status", ae.Status, "error", ae.cause)
		}
	case errors.As(err, &fe):
		ae = &Error{Status: fe.Code, Code: fiberCode(fe.Code), Message: fe.Message}
		if fe.Code == http.StatusRequestTimeout {
			ae.Message = "request timed out"
		}
	default:
		s.log.Error("request failed", "method", c.Method(), "path", c.Path(), "error", err)
		ae = &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"}
	}
	if ae.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(ae.RetryAfter))
	}
	return c.Status(ae.Status).JSON(fiber.Map{"error": ae})
}

func fiberCode(status int) string {
	switch status {
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusRequestEntityTooLarge:
		return CodeTooLarge
	case http.StatusRequestTimeout:
		return CodeTimeout
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	}
	if status >= 500 {
		return CodeInternal
	}
	return CodeBadRequest
}
