package conformance

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// versioningScenarios cover external versioning on index and delete, and
// the delete tombstones kept for index.gc_deletes.
func versioningScenarios() []scenario {
	return []scenario{
		{name: "versioning/external", run: func(t *testing.T, c *client) {
			// rest-api-spec index/35_external_version.yml: with
			// version_type=external the given version must be strictly higher.
			n := c.createIndex(t, "ext", nil)
			put := func(v int) *response {
				return c.do(t, http.MethodPut, fmt.Sprintf("/%s/_doc/1?version=%d&version_type=external", n, v), obj{"v": v})
			}
			put(5).wantStatus(http.StatusCreated).eq("_version", 5).eq("result", "created")
			put(5).wantError(http.StatusConflict, "version_conflict_engine_exception", "version_conflict_engine_exception").
				eq("error.reason", "[1]: version conflict, current version [5] is higher or equal to the one provided [5]")
			put(3).wantError(http.StatusConflict, "version_conflict_engine_exception", "version_conflict_engine_exception")
			put(6).wantStatus(http.StatusOK).eq("_version", 6).eq("result", "updated")
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusOK).eq("_version", 6).eq("_source.v", 6)
		}},
		{name: "versioning/external_zero", run: func(t *testing.T, c *client) {
			// External versions start at 0 (index/35_external_version.yml).
			n := c.createIndex(t, "extzero", nil)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?version=0&version_type=external", obj{}).wantStatus(http.StatusCreated).eq("_version", 0)
		}},
		{name: "versioning/external_gte", run: func(t *testing.T, c *client) {
			// rest-api-spec index/36_external_gte_version.yml: an equal
			// version is accepted, a lower one is a conflict.
			n := c.createIndex(t, "extgte", nil)
			put := func(v int, body obj) *response {
				return c.do(t, http.MethodPut, fmt.Sprintf("/%s/_doc/1?version=%d&version_type=external_gte", n, v), body)
			}
			put(5, obj{"foo": "bar"}).wantStatus(http.StatusCreated).eq("_version", 5)
			put(5, obj{"foo": "bar2"}).wantStatus(http.StatusOK).eq("_version", 5).eq("result", "updated")
			put(4, obj{"foo": "stale"}).wantError(http.StatusConflict, "version_conflict_engine_exception", "version_conflict_engine_exception")
			put(6, obj{"foo": "bar3"}).wantStatus(http.StatusOK).eq("_version", 6)
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusOK).eq("_source.foo", "bar3")
		}},
		{name: "versioning/external_on_delete", run: func(t *testing.T, c *client) {
			// rest-api-spec delete/25_external_version.yml.
			n := c.createIndex(t, "extdel", nil)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?version=5&version_type=external", obj{"a": 1}).wantStatus(http.StatusCreated)
			c.do(t, http.MethodDelete, "/"+n+"/_doc/1?version=4&version_type=external", nil).
				wantError(http.StatusConflict, "version_conflict_engine_exception", "version_conflict_engine_exception")
			c.do(t, http.MethodDelete, "/"+n+"/_doc/1?version=5&version_type=external", nil).
				wantError(http.StatusConflict, "version_conflict_engine_exception", "version_conflict_engine_exception")
			c.do(t, http.MethodDelete, "/"+n+"/_doc/1?version=6&version_type=external", nil).
				wantStatus(http.StatusOK).eq("_version", 6).eq("result", "deleted")
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusNotFound)
		}},
		{name: "versioning/delete_tombstone_blocks_stale_index", run: func(t *testing.T, c *client) {
			// index-modules: index.gc_deletes (default 60s) is how long a
			// deleted document's version stays available for further
			// versioned operations. Within it a stale re-index is a 409; a
			// newer one creates the document again.
			n := c.createIndex(t, "tomb", nil)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?version=5&version_type=external", obj{"a": 1}).wantStatus(http.StatusCreated)
			c.do(t, http.MethodDelete, "/"+n+"/_doc/1?version=10&version_type=external", nil).wantStatus(http.StatusOK)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?version=7&version_type=external", obj{"a": 2}).
				wantError(http.StatusConflict, "version_conflict_engine_exception", "version_conflict_engine_exception")
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?version=10&version_type=external", obj{"a": 2}).
				wantError(http.StatusConflict, "version_conflict_engine_exception", "version_conflict_engine_exception")
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusNotFound)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?version=11&version_type=external", obj{"a": 3}).
				wantStatus(http.StatusCreated).eq("result", "created").eq("_version", 11)
		}},
		{name: "versioning/delete_tombstone_external_gte", run: func(t *testing.T, c *client) {
			// external_gte against a tombstone: equal passes, lower conflicts.
			n := c.createIndex(t, "tombgte", nil)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?version=3&version_type=external_gte", obj{"a": 1}).wantStatus(http.StatusCreated)
			c.do(t, http.MethodDelete, "/"+n+"/_doc/1?version=8&version_type=external_gte", nil).wantStatus(http.StatusOK).eq("_version", 8)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?version=7&version_type=external_gte", obj{"a": 2}).
				wantError(http.StatusConflict, "version_conflict_engine_exception", "version_conflict_engine_exception")
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?version=8&version_type=external_gte", obj{"a": 3}).
				wantStatus(http.StatusCreated).eq("_version", 8).eq("result", "created")
		}},
		{name: "versioning/delete_missing_with_external_version_keeps_tombstone", run: func(t *testing.T, c *client) {
			// A versioned delete of a document that does not exist answers
			// 404 "not_found" but still records the delete's version
			// (InternalEngine plans it as a normal deletion of a deleted doc),
			// so an older index arriving later, within gc_deletes, is a 409.
			n := c.createIndex(t, "delmissext", nil)
			c.do(t, http.MethodDelete, "/"+n+"/_doc/1?version=9&version_type=external", nil).
				wantStatus(http.StatusNotFound).eq("result", "not_found").eq("_version", 9)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?version=4&version_type=external", obj{"a": 1}).
				wantError(http.StatusConflict, "version_conflict_engine_exception", "version_conflict_engine_exception")
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?version=10&version_type=external", obj{"a": 1}).
				wantStatus(http.StatusCreated).eq("_version", 10)
		}},
		{name: "versioning/tombstone_expires_after_gc_deletes", run: func(t *testing.T, c *client) {
			// Once index.gc_deletes has passed, the tombstone is forgotten
			// and a lower external version creates the document. Polled with
			// a deadline; a refresh lets the engine prune tombstones.
			n := c.createIndex(t, "gc", obj{"settings": obj{"index": obj{"gc_deletes": "1s"}}})
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?version=5&version_type=external", obj{"a": 1}).wantStatus(http.StatusCreated)
			c.do(t, http.MethodDelete, "/"+n+"/_doc/1?version=10&version_type=external", nil).wantStatus(http.StatusOK)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?version=3&version_type=external", obj{"a": 2}).
				wantError(http.StatusConflict, "version_conflict_engine_exception", "version_conflict_engine_exception")
			eventually(t, 30*time.Second, func() string {
				c.refresh(t, n)
				r := c.do(t, http.MethodPut, "/"+n+"/_doc/1?version=3&version_type=external", obj{"a": 2})
				if r.status == http.StatusConflict {
					return "re-index with a version below the tombstone still conflicts"
				}
				r.wantStatus(http.StatusCreated).eq("result", "created").eq("_version", 3)
				return ""
			})
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusOK).eq("_version", 3).eq("_source.a", 2)
		}},
		{name: "versioning/internal_version_param_rejected", run: func(t *testing.T, c *client) {
			// Since 7.0 internal versioning cannot be used for optimistic
			// concurrency control: 400 action_request_validation_exception
			// pointing to if_seq_no and if_primary_term.
			n := c.createIndex(t, "intver", nil)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"a": 1}).wantStatus(http.StatusCreated)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?version=1", obj{"a": 2}).
				wantError(http.StatusBadRequest, "action_request_validation_exception", "action_request_validation_exception").
				contains("error.reason", "if_seq_no")
		}},
		{name: "versioning/concurrent_external_gte_converges", run: func(t *testing.T, c *client) {
			// Whatever order concurrent writers arrive in, external versions
			// leave the document at the highest version; every lower write
			// either applied earlier or got a 409.
			n := c.createIndex(t, "extconc", nil)
			const writers, perWriter = 4, 10
			var wg sync.WaitGroup
			errs := make(chan string, writers*perWriter)
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < perWriter; i++ {
						v := i*writers + w + 1
						r := c.do(t, http.MethodPut, fmt.Sprintf("/%s/_doc/1?version=%d&version_type=external_gte", n, v), obj{"v": v})
						if r.status != http.StatusOK && r.status != http.StatusCreated && r.status != http.StatusConflict {
							errs <- r.String()
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Errorf("unexpected answer: %s", e)
			}
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusOK).
				eq("_version", writers*perWriter).eq("_source.v", writers*perWriter)
		}},
	}
}
