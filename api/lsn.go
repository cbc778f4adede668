package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/walsearch/walsearch/bus"
)

// MinLSNHeader asks for read-your-writes, like the min_lsn parameter.
const MinLSNHeader = "X-Walsearch-Min-LSN"

// lsnPoll is how often the applied position is checked while waiting.
const lsnPoll = 2 * time.Millisecond

// readYourWrites waits until every transaction committed before the
// requested LSN (the min_lsn parameter or header, e.g.
// pg_current_wal_insert_lsn() after the client's write) is written to the search engine, then refreshes
// index so the writes are visible. It answers 504 with the current lag when
// the wait exceeds Config.MinLSNTimeout.
func (s *Server) readYourWrites(ctx context.Context, c *fiber.Ctx, index, param string) error {
	raw := param
	if raw == "" {
		raw = c.Get(MinLSNHeader)
	}
	if raw == "" {
		return nil
	}
	want, err := bus.ParseLSN(raw)
	if err != nil {
		return badRequest(fmt.Sprintf("min_lsn: want a PostgreSQL LSN like 0/16B3748, got %q", truncateName(raw)))
	}
	if applied := s.pipe.AppliedLSN(); applied < want {
		wctx, cancel := context.WithTimeout(ctx, s.cfg.MinLSNTimeout)
		defer cancel()
		t := time.NewTicker(lsnPoll)
		defer t.Stop()
		for applied < want {
			select {
			case <-wctx.Done():
				lag := uint64(want - applied)
				if applied == 0 {
					lag = 0
				}
				return &Error{Status: http.StatusGatewayTimeout, Code: CodeLSNTimeout, RetryAfter: 1,
					Message: fmt.Sprintf("changes up to %s are not indexed yet after %s: applied up to %s (%d bytes behind)",
						want, s.cfg.MinLSNTimeout, applied, lag)}
			case <-t.C:
				applied = s.pipe.AppliedLSN()
			}
		}
	}
	return s.eng.refresh(ctx, index)
}
