package api_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/internal/e2e"
	"github.com/walsearch/walsearch/internal/faultes"
)

// TestEngineRefusingCredentialsIsLoggedWithTheFix has the engine answer
// 401 and 403: the client gets an internal error, and the log says which
// setting or privilege to fix rather than "unexpected answer".
func TestEngineRefusingCredentialsIsLoggedWithTheFix(t *testing.T) {
	t.Parallel()
	var log e2e.SyncBuffer
	s := newServer(t, serverOpts{faults: true, cfg: func(c *api.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&log, nil))
	}})
	seedUsers(t, s.es, 3)
	// A first search caches the index's mapping, so that the searches below
	// reach the engine with the search itself.
	if r := s.search(t, `{"index":"users","query_fields":{"status":"active"}}`); r.code != 200 {
		t.Fatalf("search: %d %s", r.code, r.body)
	}
	for _, tc := range []struct {
		status int
		want   string
	}{
		{401, "elasticsearch requires credentials"},
		{403, "elasticsearch refused the request for lack of a privilege"},
	} {
		s.faults.Inject(faultes.Fault{Status: tc.status, All: true})
		r := s.search(t, `{"index":"users","query_fields":{"status":"active"}}`)
		s.faults.Clear()
		if r.code != 500 || r.errCode(t) != api.CodeInternal {
			t.Errorf("search while the engine answers %d: %d %s", tc.status, r.code, r.body)
		}
		if !strings.Contains(log.String(), tc.want) {
			t.Errorf("after a %d from the engine the log lacks %q:\n%s", tc.status, tc.want, log.String())
		}
	}
	if r := s.search(t, `{"index":"users","query_fields":{"status":"active"}}`); r.code != 200 {
		t.Fatalf("search once the engine accepts the request again: %d %s (refused credentials must not open the breaker)", r.code, r.body)
	}
}
