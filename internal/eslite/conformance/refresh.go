package conformance

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// refreshScenarios cover near-real-time visibility: explicit refresh, the
// refresh parameter on writes, and the periodic refresh_interval.
func refreshScenarios() []scenario {
	return []scenario{
		{name: "refresh/not_visible_until_refresh", run: func(t *testing.T, c *client) {
			// refresh_interval -1 disables periodic refresh: a write is not
			// searchable until _refresh.
			n := c.createIndex(t, "norefresh", obj{"settings": obj{"index": obj{"refresh_interval": "-1"}}})
			c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"a": "x"}).wantStatus(http.StatusCreated)
			c.do(t, http.MethodPut, "/"+n+"/_doc/2?refresh=false", obj{"a": "y"}).wantStatus(http.StatusCreated)
			if got := c.count(t, n, nil); got != 0 {
				t.Errorf("count before refresh = %d, want 0", got)
			}
			c.search(t, n, q(obj{"match_all": obj{}})).wantStatus(http.StatusOK).eq("hits.total.value", 0)
			c.refresh(t, n)
			if got := c.count(t, n, nil); got != 2 {
				t.Errorf("count after refresh = %d, want 2", got)
			}
		}},
		{name: "refresh/refresh_true", run: func(t *testing.T, c *client) {
			// refresh=true refreshes before answering; the response says
			// "forced_refresh": true.
			n := c.createIndex(t, "rtrue", obj{"settings": obj{"index": obj{"refresh_interval": "-1"}}})
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?refresh=true", obj{"a": "x"}).wantStatus(http.StatusCreated).eq("forced_refresh", true)
			wantIDs(t, c.searchIDs(t, n, q(obj{"match_all": obj{}})), "1")
			c.do(t, http.MethodDelete, "/"+n+"/_doc/1?refresh=true", nil).wantStatus(http.StatusOK)
			wantIDs(t, c.searchIDs(t, n, q(obj{"match_all": obj{}})))
			// An empty refresh parameter means true.
			c.do(t, http.MethodPut, "/"+n+"/_doc/2?refresh", obj{"a": "y"}).wantStatus(http.StatusCreated)
			wantIDs(t, c.searchIDs(t, n, q(obj{"match_all": obj{}})), "2")
		}},
		{name: "refresh/wait_for", run: func(t *testing.T, c *client) {
			// refresh=wait_for returns once a refresh made the write visible.
			n := c.createIndex(t, "waitfor", obj{"settings": obj{"index": obj{"refresh_interval": "200ms"}}})
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?refresh=wait_for", obj{"a": "x"}).wantStatus(http.StatusCreated)
			wantIDs(t, c.searchIDs(t, n, q(obj{"match_all": obj{}})), "1")
			r := c.bulk(t, "/"+n+"/_bulk?refresh=wait_for", obj{"index": obj{"_id": "2"}}, obj{"a": "y"}).wantStatus(http.StatusOK)
			r.eq("errors", false)
			wantIDSet(t, c.searchIDs(t, n, q(obj{"match_all": obj{}})), "1", "2")
		}},
		{name: "refresh/wait_for_with_default_interval", run: func(t *testing.T, c *client) {
			n := c.createIndex(t, "waitdef", nil)
			c.do(t, http.MethodDelete, "/"+n+"/_doc/nope?refresh=wait_for", nil).wantStatus(http.StatusNotFound)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?refresh=wait_for", obj{"a": "x"}).wantStatus(http.StatusCreated)
			if got := c.count(t, n, nil); got != 1 {
				t.Errorf("count after wait_for = %d, want 1", got)
			}
		}},
		{name: "refresh/periodic_refresh_interval", run: func(t *testing.T, c *client) {
			// Without any explicit refresh, writes become searchable on their
			// own once refresh_interval (default 1s) has passed.
			for _, settings := range []obj{nil, {"settings": obj{"index": obj{"refresh_interval": "300ms"}}}} {
				n := c.createIndex(t, "periodic", settings)
				for i := 0; i < 3; i++ {
					c.do(t, http.MethodPut, fmt.Sprintf("/%s/_doc/%d", n, i), obj{"i": i}).wantStatus(http.StatusCreated)
				}
				eventually(t, 20*time.Second, func() string {
					if got := c.count(t, n, nil); got != 3 {
						return fmt.Sprintf("%s: count = %d, want 3", n, got)
					}
					return ""
				})
			}
		}},
	}
}
