package conformance

import (
	"net/http"
	"testing"
)

// documentScenarios cover single-document index, get, delete, create and
// optimistic concurrency with if_seq_no/if_primary_term, and _mget.
func documentScenarios() []scenario {
	return []scenario{
		{name: "documents/index_new_then_replace", run: func(t *testing.T, c *client) {
			// index API: 201 "created" at _version 1, then 200 "updated" at 2.
			n := c.createIndex(t, "crud", nil)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"a": 1}).wantStatus(http.StatusCreated).
				eq("_index", n).eq("_id", "1").eq("_version", 1).eq("result", "created").
				eq("_shards.failed", 0).present("_seq_no").eq("_primary_term", 1)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"a": 2}).wantStatus(http.StatusOK).
				eq("_version", 2).eq("result", "updated")
			c.do(t, http.MethodPost, "/"+n+"/_doc/1", obj{"a": 3}).wantStatus(http.StatusOK).
				eq("_version", 3).eq("result", "updated")
		}},
		{name: "documents/get_found", run: func(t *testing.T, c *client) {
			n := c.createIndex(t, "get", nil)
			src := obj{"name": "Zoë", "tags": arr{"a", "b"}, "nested": obj{"x": 1.5, "y": nil}, "empty": arr{}}
			c.do(t, http.MethodPut, "/"+n+"/_doc/doc-1", src).wantStatus(http.StatusCreated)
			c.do(t, http.MethodGet, "/"+n+"/_doc/doc-1", nil).wantStatus(http.StatusOK).
				eq("_index", n).eq("_id", "doc-1").eq("_version", 1).eq("found", true).
				present("_seq_no").eq("_primary_term", 1).eq("_source", src)
		}},
		{name: "documents/get_missing_document", run: func(t *testing.T, c *client) {
			// {"_index":"x","_id":"nope","found":false} with 404.
			n := c.createIndex(t, "getmiss", nil)
			r := c.do(t, http.MethodGet, "/"+n+"/_doc/nope", nil).wantStatus(http.StatusNotFound).
				eq("_index", n).eq("_id", "nope").eq("found", false)
			r.absent("_source").absent("error")
		}},
		{name: "documents/get_missing_index", run: func(t *testing.T, c *client) {
			n := c.name(t, "getnoidx")
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).
				wantError(http.StatusNotFound, "index_not_found_exception", "index_not_found_exception")
		}},
		{name: "documents/delete", run: func(t *testing.T, c *client) {
			// delete API: 200 "deleted", version incremented; then GET 404.
			n := c.createIndex(t, "delete", nil)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"a": 1}).wantStatus(http.StatusCreated)
			c.do(t, http.MethodDelete, "/"+n+"/_doc/1", nil).wantStatus(http.StatusOK).
				eq("_index", n).eq("_id", "1").eq("result", "deleted").eq("_version", 2)
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusNotFound).eq("found", false)
			// Indexing again after a delete creates the document anew, with a
			// version above the tombstone's.
			c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"a": 2}).wantStatus(http.StatusCreated).
				eq("result", "created").eq("_version", 3)
		}},
		{name: "documents/delete_missing_document", run: func(t *testing.T, c *client) {
			// Deleting a missing document is a 404 with result "not_found",
			// not an error envelope (rest-api-spec delete/60_missing.yml).
			n := c.createIndex(t, "delmiss", nil)
			c.do(t, http.MethodDelete, "/"+n+"/_doc/nope", nil).wantStatus(http.StatusNotFound).
				eq("_index", n).eq("_id", "nope").eq("result", "not_found").absent("error")
		}},
		{name: "documents/auto_id", run: func(t *testing.T, c *client) {
			// POST /{index}/_doc generates an _id and answers 201 created.
			n := c.createIndex(t, "autoid", nil)
			r := c.do(t, http.MethodPost, "/"+n+"/_doc", obj{"a": 1}).wantStatus(http.StatusCreated).
				eq("result", "created").eq("_version", 1)
			id := r.str("_id")
			if id == "" {
				t.Fatalf("empty generated _id: %s", r)
			}
			c.do(t, http.MethodGet, "/"+n+"/_doc/"+id, nil).wantStatus(http.StatusOK).eq("_source.a", 1)
		}},
		{name: "documents/op_type_create_conflict", run: func(t *testing.T, c *client) {
			// op_type=create on an existing id fails with 409
			// version_conflict_engine_exception "[1]: version conflict,
			// document already exists (current version [1])".
			n := c.createIndex(t, "create", nil)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?op_type=create", obj{"a": 1}).wantStatus(http.StatusCreated).eq("result", "created")
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?op_type=create", obj{"a": 2}).
				wantError(http.StatusConflict, "version_conflict_engine_exception", "version_conflict_engine_exception").
				eq("error.reason", "[1]: version conflict, document already exists (current version [1])").
				eq("error.index", n)
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusOK).eq("_source.a", 1).eq("_version", 1)
		}},
		{name: "documents/if_seq_no_if_primary_term", run: func(t *testing.T, c *client) {
			// Optimistic concurrency control: a write carrying the current
			// _seq_no and _primary_term succeeds, a stale pair is a 409.
			n := c.createIndex(t, "cas", nil)
			first := c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"a": 1}).wantStatus(http.StatusCreated)
			seq, term := first.int("_seq_no"), first.int("_primary_term")
			g := c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusOK)
			g.eq("_seq_no", seq).eq("_primary_term", term)
			path := func(s, p int) string {
				return "/" + n + "/_doc/1?if_seq_no=" + itoa(s) + "&if_primary_term=" + itoa(p)
			}
			second := c.do(t, http.MethodPut, path(seq, term), obj{"a": 2}).wantStatus(http.StatusOK).eq("result", "updated")
			if second.int("_seq_no") <= seq {
				t.Errorf("_seq_no did not grow: %d then %s", seq, second)
			}
			c.do(t, http.MethodPut, path(seq, term), obj{"a": 3}).
				wantError(http.StatusConflict, "version_conflict_engine_exception", "version_conflict_engine_exception").
				contains("error.reason", "required seqNo ["+itoa(seq)+"]")
			c.do(t, http.MethodDelete, path(seq, term), nil).
				wantError(http.StatusConflict, "version_conflict_engine_exception", "version_conflict_engine_exception")
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusOK).eq("_source.a", 2)
		}},
		{name: "documents/get_source_filtering", run: func(t *testing.T, c *client) {
			// GET _doc with _source_includes / _source=false.
			n := c.createIndex(t, "getsrc", nil)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"a": 1, "b": obj{"c": 2, "d": 3}}).wantStatus(http.StatusCreated)
			c.do(t, http.MethodGet, "/"+n+"/_doc/1?_source_includes=b.c", nil).wantStatus(http.StatusOK).
				eq("_source", obj{"b": obj{"c": 2}})
			c.do(t, http.MethodGet, "/"+n+"/_doc/1?_source=false", nil).wantStatus(http.StatusOK).
				eq("found", true).absent("_source")
		}},
		{name: "documents/mget_docs", run: func(t *testing.T, c *client) {
			// POST /_mget {"docs":[{"_index","_id"}]}: one entry per request,
			// in order, found or not.
			n := c.createIndex(t, "mget", nil)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"a": 1}).wantStatus(http.StatusCreated)
			c.do(t, http.MethodPut, "/"+n+"/_doc/2", obj{"a": 2}).wantStatus(http.StatusCreated)
			r := c.do(t, http.MethodPost, "/_mget", obj{"docs": arr{
				obj{"_index": n, "_id": "2"}, obj{"_index": n, "_id": "nope"}, obj{"_index": n, "_id": "1"},
			}}).wantStatus(http.StatusOK).length("docs", 3)
			r.eq("docs.0._id", "2").eq("docs.0.found", true).eq("docs.0._source", obj{"a": 2}).eq("docs.0._index", n).eq("docs.0._version", 1)
			r.eq("docs.1._id", "nope").eq("docs.1.found", false).absent("docs.1._source")
			r.eq("docs.2._id", "1").eq("docs.2.found", true).eq("docs.2._source", obj{"a": 1})
		}},
		{name: "documents/mget_ids_on_index", run: func(t *testing.T, c *client) {
			// POST /{index}/_mget {"ids":[…]}.
			n := c.createIndex(t, "mgetids", nil)
			c.do(t, http.MethodPut, "/"+n+"/_doc/a", obj{"v": "A"}).wantStatus(http.StatusCreated)
			c.do(t, http.MethodPut, "/"+n+"/_doc/b", obj{"v": "B"}).wantStatus(http.StatusCreated)
			r := c.do(t, http.MethodPost, "/"+n+"/_mget", obj{"ids": arr{"b", "a", "c"}}).wantStatus(http.StatusOK).length("docs", 3)
			r.eq("docs.0._source.v", "B").eq("docs.1._source.v", "A").eq("docs.2.found", false)
		}},
		{name: "documents/mget_missing_index_item", run: func(t *testing.T, c *client) {
			// A missing index fails only its own item, with an error object
			// (elastic/elasticsearch#3272: "creates a failure for this item
			// without failing the whole request").
			n := c.createIndex(t, "mgetmi", nil)
			missing := c.name(t, "mgetnoidx")
			c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"a": 1}).wantStatus(http.StatusCreated)
			r := c.do(t, http.MethodPost, "/_mget", obj{"docs": arr{obj{"_index": missing, "_id": "1"}, obj{"_index": n, "_id": "1"}}}).
				wantStatus(http.StatusOK)
			r.eq("docs.0._index", missing).eq("docs.0.error.type", "index_not_found_exception")
			r.eq("docs.1.found", true)
		}},
		{name: "documents/realtime_get_before_refresh", run: func(t *testing.T, c *client) {
			// GET by id is realtime: it sees a write that search cannot see
			// yet (refresh_interval -1 disables periodic refresh).
			n := c.createIndex(t, "rtget", obj{"settings": obj{"index": obj{"refresh_interval": "-1"}}})
			c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"a": 1}).wantStatus(http.StatusCreated)
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusOK).eq("found", true).eq("_source.a", 1)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"a": 2}).wantStatus(http.StatusOK)
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusOK).eq("_source.a", 2).eq("_version", 2)
			if got := c.count(t, n, nil); got != 0 {
				t.Errorf("count before refresh = %d, want 0", got)
			}
		}},
		{name: "documents/write_auto_creates_index", run: func(t *testing.T, c *client) {
			// action.auto_create_index defaults to true: indexing into a
			// missing index creates it with dynamic mappings.
			n := c.name(t, "autocreate")
			c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"a": "x"}).wantStatus(http.StatusCreated).eq("_index", n)
			c.do(t, http.MethodHead, "/"+n, nil).wantStatus(http.StatusOK)
			c.do(t, http.MethodGet, "/"+n+"/_mapping", nil).wantStatus(http.StatusOK).eq(n+".mappings.properties.a.type", "text")
		}},
		{name: "documents/malformed_json_body", run: func(t *testing.T, c *client) {
			// A body that is not JSON is a 400 (document_parsing_exception
			// in 8.x) and indexes nothing.
			n := c.createIndex(t, "badjson", nil)
			r := c.do(t, http.MethodPut, "/"+n+"/_doc/1", `{"a": `)
			r.wantStatus(http.StatusBadRequest).eq("status", http.StatusBadRequest)
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusNotFound)
		}},
		{name: "documents/ids_with_special_characters", run: func(t *testing.T, c *client) {
			// Any string is a valid _id: escaped in the URL path, plain in
			// bulk metadata and in responses.
			n := c.createIndex(t, "oddids", nil)
			for _, tc := range []struct{ id, escaped string }{
				{"a/b c", "a%2Fb%20c"},
				{"ünï-çødé", "%C3%BCn%C3%AF-%C3%A7%C3%B8d%C3%A9"},
				{"x?y#z", "x%3Fy%23z"},
				{"42|7", "42%7C7"},
			} {
				c.do(t, http.MethodPut, "/"+n+"/_doc/"+tc.escaped, obj{"id": tc.id}).wantStatus(http.StatusCreated).eq("_id", tc.id)
				c.do(t, http.MethodGet, "/"+n+"/_doc/"+tc.escaped, nil).wantStatus(http.StatusOK).eq("_id", tc.id).eq("_source.id", tc.id)
			}
			r := c.bulk(t, "/"+n+"/_bulk?refresh=true", obj{"index": obj{"_id": "p/q r"}}, obj{"id": "p/q r"}).wantStatus(http.StatusOK)
			r.eq("errors", false).eq("items.0.index._id", "p/q r")
			c.do(t, http.MethodGet, "/"+n+"/_doc/p%2Fq%20r", nil).wantStatus(http.StatusOK)
			wantIDSet(t, c.searchIDs(t, n, q(obj{"ids": obj{"values": arr{"a/b c", "p/q r"}}})), "a/b c", "p/q r")
		}},
		{name: "documents/realtime_get_after_delete", run: func(t *testing.T, c *client) {
			// A delete is visible to GET at once, and to search only after a
			// refresh.
			n := c.createIndex(t, "rtdel", obj{"settings": obj{"index": obj{"refresh_interval": "-1"}}})
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?refresh=true", obj{"a": 1}).wantStatus(http.StatusCreated)
			c.do(t, http.MethodDelete, "/"+n+"/_doc/1", nil).wantStatus(http.StatusOK)
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusNotFound).eq("found", false)
			if got := c.count(t, n, nil); got != 1 {
				t.Errorf("count before refresh = %d, want 1 (the delete is not searchable yet)", got)
			}
			c.refresh(t, n)
			if got := c.count(t, n, nil); got != 0 {
				t.Errorf("count after refresh = %d, want 0", got)
			}
		}},
	}
}

func itoa(i int) string {
	return jsonString(i)
}
