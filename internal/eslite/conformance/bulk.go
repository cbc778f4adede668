package conformance

import (
	"net/http"
	"testing"
)

// bulkScenarios cover _bulk: every action, per-item results and statuses,
// the top-level errors flag, and request-level failures.
func bulkScenarios() []scenario {
	return []scenario{
		{name: "bulk/index_items", run: func(t *testing.T, c *client) {
			n := c.createIndex(t, "bidx", nil)
			r := c.bulk(t, "/_bulk?refresh=true",
				obj{"index": obj{"_index": n, "_id": "1"}}, obj{"a": 1},
				obj{"index": obj{"_index": n, "_id": "2"}}, obj{"a": 2},
				obj{"index": obj{"_index": n, "_id": "1"}}, obj{"a": 3},
			).wantStatus(http.StatusOK)
			r.eq("errors", false).length("items", 3).present("took")
			r.eq("items.0.index._index", n).eq("items.0.index._id", "1").eq("items.0.index.status", 201).
				eq("items.0.index.result", "created").eq("items.0.index._version", 1).absent("items.0.index.error")
			r.eq("items.1.index.status", 201).eq("items.1.index._id", "2")
			r.eq("items.2.index.status", 200).eq("items.2.index.result", "updated").eq("items.2.index._version", 2)
			if got := c.count(t, n, nil); got != 2 {
				t.Errorf("count = %d, want 2", got)
			}
		}},
		{name: "bulk/mixed_actions", run: func(t *testing.T, c *client) {
			// One item per action, keyed by the action name.
			n := c.createIndex(t, "bmix", nil)
			c.do(t, http.MethodPut, "/"+n+"/_doc/u", obj{"a": 1, "b": 1}).wantStatus(http.StatusCreated)
			c.do(t, http.MethodPut, "/"+n+"/_doc/d", obj{"a": 1}).wantStatus(http.StatusCreated)
			r := c.bulk(t, "/_bulk",
				obj{"index": obj{"_index": n, "_id": "i"}}, obj{"a": 1},
				obj{"create": obj{"_index": n, "_id": "c"}}, obj{"a": 2},
				obj{"update": obj{"_index": n, "_id": "u"}}, obj{"doc": obj{"b": 2}},
				obj{"delete": obj{"_index": n, "_id": "d"}},
			).wantStatus(http.StatusOK)
			r.eq("errors", false).length("items", 4)
			r.eq("items.0.index.status", 201).eq("items.0.index.result", "created")
			r.eq("items.1.create.status", 201).eq("items.1.create.result", "created")
			r.eq("items.2.update.status", 200).eq("items.2.update.result", "updated").eq("items.2.update._version", 2)
			r.eq("items.3.delete.status", 200).eq("items.3.delete.result", "deleted").eq("items.3.delete._version", 2)
			c.do(t, http.MethodGet, "/"+n+"/_doc/d", nil).wantStatus(http.StatusNotFound)
			c.do(t, http.MethodGet, "/"+n+"/_doc/c", nil).wantStatus(http.StatusOK).eq("_source", obj{"a": 2})
		}},
		{name: "bulk/index_default_from_path", run: func(t *testing.T, c *client) {
			// /{index}/_bulk supplies _index to items that omit it.
			n := c.createIndex(t, "bpath", nil)
			r := c.bulk(t, "/"+n+"/_bulk?refresh=true",
				obj{"index": obj{"_id": "1"}}, obj{"a": 1},
				obj{"create": obj{}}, obj{"a": 2},
			).wantStatus(http.StatusOK)
			r.eq("errors", false).eq("items.0.index._index", n).eq("items.1.create._index", n).eq("items.1.create.status", 201)
			if r.str("items.1.create._id") == "" {
				t.Errorf("generated _id is empty: %s", r)
			}
			if got := c.count(t, n, nil); got != 2 {
				t.Errorf("count = %d, want 2", got)
			}
		}},
		{name: "bulk/create_conflict_item", run: func(t *testing.T, c *client) {
			// A failed item carries status and error; the others still apply
			// and the top-level errors flag is true.
			n := c.createIndex(t, "bcreate", nil)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"a": 1}).wantStatus(http.StatusCreated)
			r := c.bulk(t, "/"+n+"/_bulk",
				obj{"create": obj{"_id": "1"}}, obj{"a": 2},
				obj{"index": obj{"_id": "2"}}, obj{"a": 3},
			).wantStatus(http.StatusOK)
			r.eq("errors", true)
			r.eq("items.0.create.status", 409).eq("items.0.create._id", "1").
				eq("items.0.create.error.type", "version_conflict_engine_exception").
				eq("items.0.create.error.reason", "[1]: version conflict, document already exists (current version [1])")
			r.eq("items.1.index.status", 201).absent("items.1.index.error")
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusOK).eq("_source.a", 1)
		}},
		{name: "bulk/update_doc_merge", run: func(t *testing.T, c *client) {
			// update with "doc" merges objects recursively into _source.
			n := c.createIndex(t, "bmerge", nil)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"a": 1, "b": 2, "o": obj{"x": 1, "y": 1}}).wantStatus(http.StatusCreated)
			r := c.bulk(t, "/"+n+"/_bulk", obj{"update": obj{"_id": "1"}}, obj{"doc": obj{"b": 3, "c": 4, "o": obj{"y": 2}}}).
				wantStatus(http.StatusOK)
			r.eq("errors", false).eq("items.0.update.result", "updated").eq("items.0.update.status", 200)
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusOK).
				eq("_source", obj{"a": 1, "b": 3, "c": 4, "o": obj{"x": 1, "y": 2}}).eq("_version", 2)
		}},
		{name: "bulk/update_noop", run: func(t *testing.T, c *client) {
			// detect_noop defaults to true: a doc that changes nothing is
			// result "noop" and keeps the version.
			n := c.createIndex(t, "bnoop", nil)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"a": 1}).wantStatus(http.StatusCreated)
			r := c.bulk(t, "/"+n+"/_bulk", obj{"update": obj{"_id": "1"}}, obj{"doc": obj{"a": 1}}).wantStatus(http.StatusOK)
			r.eq("errors", false).eq("items.0.update.status", 200).eq("items.0.update.result", "noop").eq("items.0.update._version", 1)
		}},
		{name: "bulk/doc_as_upsert", run: func(t *testing.T, c *client) {
			// doc_as_upsert on a missing document creates it from doc (201),
			// and merges on the next call.
			n := c.createIndex(t, "bupsert", nil)
			r := c.bulk(t, "/"+n+"/_bulk", obj{"update": obj{"_id": "1"}}, obj{"doc": obj{"a": 1}, "doc_as_upsert": true}).
				wantStatus(http.StatusOK)
			r.eq("errors", false).eq("items.0.update.status", 201).eq("items.0.update.result", "created").eq("items.0.update._version", 1)
			r = c.bulk(t, "/"+n+"/_bulk", obj{"update": obj{"_id": "1"}}, obj{"doc": obj{"b": 2}, "doc_as_upsert": true}).
				wantStatus(http.StatusOK)
			r.eq("items.0.update.status", 200).eq("items.0.update.result", "updated")
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusOK).eq("_source", obj{"a": 1, "b": 2})
		}},
		{name: "bulk/update_missing_document", run: func(t *testing.T, c *client) {
			// Item 404 document_missing_exception "[1]: document missing".
			n := c.createIndex(t, "bupmiss", nil)
			r := c.bulk(t, "/"+n+"/_bulk", obj{"update": obj{"_id": "1"}}, obj{"doc": obj{"a": 1}}).wantStatus(http.StatusOK)
			r.eq("errors", true).eq("items.0.update.status", 404).eq("items.0.update._id", "1").
				eq("items.0.update.error.type", "document_missing_exception").
				eq("items.0.update.error.reason", "[1]: document missing")
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusNotFound)
		}},
		{name: "bulk/delete_missing_is_not_an_error", run: func(t *testing.T, c *client) {
			// A delete of a missing document is item status 404 with result
			// not_found and no error object, so errors stays false.
			n := c.createIndex(t, "bdelmiss", nil)
			r := c.bulk(t, "/"+n+"/_bulk", obj{"delete": obj{"_id": "nope"}}).wantStatus(http.StatusOK)
			r.eq("errors", false).eq("items.0.delete.status", 404).eq("items.0.delete.result", "not_found").absent("items.0.delete.error")
		}},
		{name: "bulk/missing_trailing_newline", run: func(t *testing.T, c *client) {
			// "The bulk request must be terminated by a newline [\\n]" (a
			// backslash and an n, not a line feed), 400
			// illegal_argument_exception; nothing is indexed.
			n := c.createIndex(t, "bnl", nil)
			body := `{"index":{"_index":"` + n + `","_id":"1"}}` + "\n" + `{"a":1}`
			c.doContentType(t, http.MethodPost, "/_bulk", body, "application/x-ndjson").
				wantError(http.StatusBadRequest, "illegal_argument_exception", "illegal_argument_exception").
				eq("error.reason", `The bulk request must be terminated by a newline [\n]`)
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusNotFound)
		}},
		{name: "bulk/unknown_action", run: func(t *testing.T, c *client) {
			// "Malformed action/metadata line [1], expected one of [create,
			// delete, index, update] but found [upsert]", 400.
			n := c.createIndex(t, "bunk", nil)
			c.bulk(t, "/"+n+"/_bulk", obj{"upsert": obj{"_id": "1"}}, obj{"a": 1}).
				wantError(http.StatusBadRequest, "illegal_argument_exception", "illegal_argument_exception").
				contains("error.reason", "Malformed action/metadata line [1]")
		}},
		{name: "bulk/external_versions", run: func(t *testing.T, c *client) {
			// version and version_type in the action line behave as on the
			// single-document APIs, item by item.
			n := c.createIndex(t, "bver", nil)
			r := c.bulk(t, "/"+n+"/_bulk",
				obj{"index": obj{"_id": "1", "version": 5, "version_type": "external"}}, obj{"v": 5},
				obj{"index": obj{"_id": "1", "version": 5, "version_type": "external"}}, obj{"v": 55},
				obj{"index": obj{"_id": "1", "version": 5, "version_type": "external_gte"}}, obj{"v": 555},
				obj{"index": obj{"_id": "1", "version": 4, "version_type": "external_gte"}}, obj{"v": 4},
				obj{"delete": obj{"_id": "1", "version": 3, "version_type": "external"}},
				obj{"delete": obj{"_id": "1", "version": 7, "version_type": "external"}},
				obj{"index": obj{"_id": "1", "version": 6, "version_type": "external"}}, obj{"v": 6},
			).wantStatus(http.StatusOK)
			r.eq("errors", true)
			r.eq("items.0.index.status", 201).eq("items.0.index._version", 5)
			r.eq("items.1.index.status", 409).eq("items.1.index.error.type", "version_conflict_engine_exception")
			r.eq("items.2.index.status", 200).eq("items.2.index._version", 5)
			r.eq("items.3.index.status", 409)
			r.eq("items.4.delete.status", 409).eq("items.4.delete.error.type", "version_conflict_engine_exception")
			r.eq("items.5.delete.status", 200).eq("items.5.delete.result", "deleted").eq("items.5.delete._version", 7)
			r.eq("items.6.index.status", 409)
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusNotFound)
		}},
		{name: "bulk/document_parsing_error_item", run: func(t *testing.T, c *client) {
			n := c.createIndex(t, "bparse", obj{"mappings": obj{"properties": obj{"n": obj{"type": "long"}}}})
			r := c.bulk(t, "/"+n+"/_bulk",
				obj{"index": obj{"_id": "1"}}, obj{"n": "not a number"},
				obj{"index": obj{"_id": "2"}}, obj{"n": 2},
			).wantStatus(http.StatusOK)
			r.eq("errors", true).eq("items.0.index.status", 400).eq("items.0.index.error.type", "document_parsing_exception")
			r.eq("items.1.index.status", 201)
		}},
		{name: "bulk/auto_creates_index", run: func(t *testing.T, c *client) {
			n := c.name(t, "bauto")
			r := c.bulk(t, "/_bulk?refresh=true", obj{"index": obj{"_index": n, "_id": "1"}}, obj{"a": 1}).wantStatus(http.StatusOK)
			r.eq("errors", false).eq("items.0.index.status", 201)
			c.do(t, http.MethodHead, "/"+n, nil).wantStatus(http.StatusOK)
		}},
		{name: "bulk/missing_index_item_with_require_alias", run: func(t *testing.T, c *client) {
			// rest-api-spec bulk/10_basic.yml: require_alias on a name that is
			// no alias fails that item with 404 index_not_found_exception.
			n := c.createIndex(t, "breq", nil)
			missing := c.name(t, "breqmiss")
			r := c.bulk(t, "/_bulk",
				obj{"index": obj{"_index": missing, "require_alias": true}}, obj{"f": 1},
				obj{"index": obj{"_index": n, "_id": "1"}}, obj{"f": 2},
			).wantStatus(http.StatusOK)
			r.eq("errors", true).eq("items.0.index.status", 404).eq("items.0.index.error.type", "index_not_found_exception")
			r.eq("items.1.index.status", 201)
			c.do(t, http.MethodHead, "/"+missing, nil).wantStatus(http.StatusNotFound)
		}},
		{name: "bulk/empty_id_item", run: func(t *testing.T, c *client) {
			// rest-api-spec bulk/10_basic.yml "Empty _id": item 400
			// illegal_argument_exception "if _id is specified it must not be empty".
			n := c.createIndex(t, "bempty", nil)
			r := c.bulk(t, "/"+n+"/_bulk", obj{"index": obj{"_id": ""}}, obj{"f": 1}, obj{"index": obj{"_id": "id"}}, obj{"f": 2}).
				wantStatus(http.StatusOK)
			r.eq("errors", true).eq("items.0.index.status", 400).
				eq("items.0.index.error.type", "illegal_argument_exception").
				eq("items.0.index.error.reason", "if _id is specified it must not be empty")
			r.eq("items.1.index.result", "created")
		}},
		{name: "bulk/large_batch", run: func(t *testing.T, c *client) {
			// A few thousand items in one request: one result per item, in
			// request order, nothing lost.
			n := c.createIndex(t, "blarge", nil)
			const total = 2000
			var lines []any
			for i := 0; i < total; i++ {
				lines = append(lines, obj{"index": obj{"_id": itoa(i)}}, obj{"i": i, "text": "bulk document number " + itoa(i)})
			}
			r := c.bulk(t, "/"+n+"/_bulk?refresh=true", lines...).wantStatus(http.StatusOK)
			r.eq("errors", false).length("items", total)
			r.eq("items.0.index._id", "0").eq("items.1999.index._id", "1999").eq("items.1999.index.status", 201)
			if got := c.count(t, n, nil); got != total {
				t.Errorf("count = %d, want %d", got, total)
			}
			if got := c.count(t, n, q(obj{"range": obj{"i": obj{"gte": 1000}}})); got != 1000 {
				t.Errorf("count i >= 1000 = %d, want 1000", got)
			}
		}},
	}
}
