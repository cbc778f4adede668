package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

// DeadLetter is one entry of the dead-letter queue as GET /dlq lists it.
type DeadLetter struct {
	Seq   uint64    `json:"seq"`
	Time  time.Time `json:"time"`
	Stage string    `json:"stage"`
	// Schema and Table name the row the event came from; empty when the
	// entry does not tell.
	Schema  string          `json:"schema,omitempty"`
	Table   string          `json:"table,omitempty"`
	Subject string          `json:"subject,omitempty"`
	Error   string          `json:"error"`
	Stack   string          `json:"stack,omitempty"`
	Event   json.RawMessage `json:"event,omitempty"`
	// EventOmitted says that the event is left out of a listing for its
	// size (over MaxDLQEventBytes); walsearch dlq show prints it.
	EventOmitted bool `json:"event_omitted,omitempty"`
}

// ErrDeadLetterNotFound is returned by a DeadLetterStore for a sequence
// number that holds no dead letter (never did, or was replayed or purged).
var ErrDeadLetterNotFound = errors.New("no such dead letter")

// ErrNotReplayable is wrapped by a DeadLetterStore's Replay error for an
// entry that holds no event to publish again; the error's text says why.
var ErrNotReplayable = errors.New("not replayable")

// DeadLetterStore reads and replays the dead-letter queue for GET /dlq and
// POST /dlq/{seq}/replay.
type DeadLetterStore interface {
	// List returns, oldest first, up to limit dead letters for which keep
	// returns true.
	List(ctx context.Context, limit int, keep func(DeadLetter) bool) ([]DeadLetter, error)
	// Get returns dead letter seq, or an error wrapping
	// ErrDeadLetterNotFound.
	Get(ctx context.Context, seq uint64) (DeadLetter, error)
	// Replay publishes the original event of dead letter seq again and
	// removes the entry.
	Replay(ctx context.Context, seq uint64) error
}

// WithDeadLetters gives the server the dead-letter queue, for GET /dlq and
// POST /dlq/{seq}/replay. Without it both answer 503.
func WithDeadLetters(d DeadLetterStore) Option {
	return func(s *Server) error {
		if d == nil {
			return errors.New("api: WithDeadLetters needs a store")
		}
		s.deadLetters = d
		return nil
	}
}

// CodeConflict answers a replay of a dead letter that holds no event.
const CodeConflict = "conflict"

// Limits of GET /dlq.
const (
	DefaultDLQLimit = 100
	MaxDLQLimit     = 1000
	// MaxDLQEventBytes is the largest event GET /dlq includes.
	MaxDLQEventBytes = 64 << 10
)

var errNoDeadLetters = unavailable("the dead-letter queue is not available from this server")

type dlqResponse struct {
	DeadLetters []DeadLetter `json:"dead_letters"`
	// Truncated says that more entries than limit are waiting.
	Truncated bool `json:"truncated"`
}

// deadLetterFilter returns whether the caller may see a dead letter: every
// entry for a key of every index, else the entries of the tables of the
// indices its key allows.
func (s *Server) deadLetterFilter(ctx context.Context, c *fiber.Ctx) (func(DeadLetter) bool, error) {
	if allIndices(c) {
		return func(DeadLetter) bool { return true }, nil
	}
	list, _, err := s.indices.all(ctx)
	if err != nil {
		return nil, err
	}
	visible := map[string]bool{}
	for _, mi := range list {
		if mi.Table != "" && allowedIndex(c, mi.Name) {
			visible[mi.Schema+"."+mi.Table] = true
		}
	}
	return func(dl DeadLetter) bool { return dl.Table != "" && visible[dl.Schema+"."+dl.Table] }, nil
}

// dlqHandler answers GET /dlq?limit=n: the oldest dead letters the caller
// may see.
func (s *Server) dlqHandler(c *fiber.Ctx) error {
	if s.deadLetters == nil {
		return errNoDeadLetters
	}
	limit := DefaultDLQLimit
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxDLQLimit {
			return badRequest("limit: want a number from 1 to " + strconv.Itoa(MaxDLQLimit))
		}
		limit = n
	}
	ctx, cancel := s.requestContext(c)
	defer cancel()
	keep, err := s.deadLetterFilter(ctx, c)
	if err != nil {
		return err
	}
	list, err := s.deadLetters.List(ctx, limit+1, keep)
	if err != nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, RetryAfter: 5,
			Message: "the dead-letter queue cannot be read now; retry later", cause: err}
	}
	resp := dlqResponse{DeadLetters: list, Truncated: len(list) > limit}
	if resp.Truncated {
		resp.DeadLetters = list[:limit]
	}
	if resp.DeadLetters == nil {
		resp.DeadLetters = []DeadLetter{}
	}
	hidden := s.allHiddenFields()
	for i := range resp.DeadLetters {
		dl := &resp.DeadLetters[i]
		if len(dl.Event) > MaxDLQEventBytes {
			dl.Event, dl.EventOmitted = nil, true
		} else {
			dl.Event = redact(dl.Event, hidden)
		}
	}
	return c.JSON(resp)
}

type replayResponse struct {
	Seq      uint64 `json:"seq"`
	Replayed bool   `json:"replayed"`
}

// dlqReplayHandler answers POST /dlq/{seq}/replay: the entry's event is
// published again (after the cause is fixed, it is processed; else it is
// dead-lettered again) and the entry removed.
func (s *Server) dlqReplayHandler(c *fiber.Ctx) error {
	if s.deadLetters == nil {
		return errNoDeadLetters
	}
	// A browser sends a cross-site POST as JSON only after asking the
	// server (a CORS preflight, which this server never grants): so no
	// other web site can make a visitor's browser replay entries.
	if !c.Is("json") {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: CodeBadRequest,
			Message: "send the replay request with Content-Type: application/json"}
	}
	seq, err := strconv.ParseUint(c.Params("seq"), 10, 64)
	if err != nil || seq == 0 {
		return badRequest("seq: want the sequence number of a dead letter (see GET /dlq)")
	}
	ctx, cancel := s.requestContext(c)
	defer cancel()
	keep, err := s.deadLetterFilter(ctx, c)
	if err != nil {
		return err
	}
	missing := notFound("dead letter " + strconv.FormatUint(seq, 10) + " does not exist (it may have been replayed already)")
	dl, err := s.deadLetters.Get(ctx, seq)
	if errors.Is(err, ErrDeadLetterNotFound) || (err == nil && !keep(dl)) {
		return missing
	}
	if err != nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, RetryAfter: 5,
			Message: "the dead-letter queue cannot be read now; retry later", cause: err}
	}
	switch err := s.deadLetters.Replay(ctx, seq); {
	case errors.Is(err, ErrDeadLetterNotFound):
		return missing
	case errors.Is(err, ErrNotReplayable):
		return &Error{Status: http.StatusConflict, Code: CodeConflict,
			Message: "dead letter " + strconv.FormatUint(seq, 10) + " holds no event to replay (see its error); purge it with walsearch dlq purge", cause: err}
	case err != nil:
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, RetryAfter: 5,
			Message: "dead letter " + strconv.FormatUint(seq, 10) + " could not be replayed now; retry later", cause: err}
	}
	s.log.Info("dead letter replayed", "seq", seq, "stage", dl.Stage, "table", dl.Schema+"."+dl.Table, "client", clientID(c))
	return c.JSON(replayResponse{Seq: seq, Replayed: true})
}

// allHiddenFields is every index's hidden fields: a dead letter's event may
// be a row or a document of any of them (a script routes documents), so
// all of them are removed from every event shown.
func (s *Server) allHiddenFields() []string {
	var out []string
	for _, ic := range s.cfg.Indices {
		out = append(out, ic.HiddenFields...)
	}
	return out
}

// redact removes the hidden fields from an event, at any depth: a row's
// columns, a document's fields and their old values alike. An event that is
// not JSON is left out entirely.
func redact(raw json.RawMessage, hidden []string) json.RawMessage {
	if len(hidden) == 0 || len(raw) == 0 {
		return raw
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // numbers stay exactly as they were, 64-bit ones too
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil
	}
	out, err := json.Marshal(redactValue(v, hidden))
	if err != nil {
		return nil
	}
	return out
}

func redactValue(v any, hidden []string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if slices.Contains(hidden, k) {
				delete(x, k)
				continue
			}
			inner := hidden
			for _, h := range hidden {
				if rest, ok := strings.CutPrefix(h, k+"."); ok {
					inner = append(slices.Clip(inner), rest)
				}
			}
			x[k] = redactValue(val, inner)
		}
	case []any:
		for i := range x {
			x[i] = redactValue(x[i], hidden)
		}
	}
	return v
}
