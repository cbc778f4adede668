package conformance

import (
	"net/http"
	"testing"
)

// aliasScenarios cover POST /_aliases (atomic add/remove), GET /_alias,
// and reading and writing through aliases.
func aliasScenarios() []scenario {
	return []scenario{
		{name: "aliases/add_and_get", run: func(t *testing.T, c *client) {
			// GET /_alias/{name} answers {"<index>":{"aliases":{"<alias>":{}}}}.
			n := c.createIndex(t, "al", nil)
			a := c.aliasName(t, "al-a")
			c.do(t, http.MethodPost, "/_aliases", obj{"actions": arr{obj{"add": obj{"index": n, "alias": a}}}}).
				wantStatus(http.StatusOK).eq("acknowledged", true)
			c.do(t, http.MethodGet, "/_alias/"+a, nil).wantStatus(http.StatusOK).eq(n, obj{"aliases": obj{a: obj{}}})
			c.do(t, http.MethodGet, "/_alias", nil).wantStatus(http.StatusOK).eq(n+".aliases."+a, obj{})
			c.do(t, http.MethodGet, "/_alias/"+c.aliasName(t, "al-none"), nil).wantStatus(http.StatusNotFound)
		}},
		{name: "aliases/search_over_two_indices", run: func(t *testing.T, c *client) {
			x := c.createIndex(t, "alx", nil)
			y := c.createIndex(t, "aly", nil)
			a := c.aliasName(t, "al-xy")
			c.do(t, http.MethodPost, "/_aliases", obj{"actions": arr{
				obj{"add": obj{"index": x, "alias": a}},
				obj{"add": obj{"index": y, "alias": a}},
			}}).wantStatus(http.StatusOK)
			c.do(t, http.MethodPut, "/"+x+"/_doc/1?refresh=true", obj{"k": "v"}).wantStatus(http.StatusCreated)
			c.do(t, http.MethodPut, "/"+y+"/_doc/2?refresh=true", obj{"k": "v"}).wantStatus(http.StatusCreated)
			r := c.search(t, a, nil).wantStatus(http.StatusOK)
			r.eq("hits.total.value", 2)
			wantIDSet(t, r.ids(), "1", "2")
			got := map[string]string{}
			for i := 0; i < 2; i++ {
				hit := "hits.hits." + itoa(i)
				got[r.str(hit+"._id")] = r.str(hit + "._index")
			}
			if got["1"] != x || got["2"] != y {
				t.Errorf("hits report the alias or wrong indices: %v, want 1→%s 2→%s", got, x, y)
			}
			if n := c.count(t, a, nil); n != 2 {
				t.Errorf("_count through alias = %d, want 2", n)
			}
		}},
		{name: "aliases/write_through_single_index_alias", run: func(t *testing.T, c *client) {
			// An alias over exactly one index is its write index: writes and
			// realtime GETs go through, responses name the concrete index.
			n := c.createIndex(t, "alw", nil)
			a := c.aliasName(t, "al-w")
			c.do(t, http.MethodPost, "/_aliases", obj{"actions": arr{obj{"add": obj{"index": n, "alias": a}}}}).wantStatus(http.StatusOK)
			c.do(t, http.MethodPut, "/"+a+"/_doc/1", obj{"v": 1}).wantStatus(http.StatusCreated).eq("_index", n)
			c.do(t, http.MethodGet, "/"+a+"/_doc/1", nil).wantStatus(http.StatusOK).eq("_index", n).eq("_source.v", 1)
			r := c.bulk(t, "/_bulk?refresh=true", obj{"index": obj{"_index": a, "_id": "2"}}, obj{"v": 2}).wantStatus(http.StatusOK)
			r.eq("errors", false).eq("items.0.index._index", n)
			c.do(t, http.MethodGet, "/"+n+"/_doc/2", nil).wantStatus(http.StatusOK)
			c.do(t, http.MethodDelete, "/"+a+"/_doc/1?refresh=true", nil).wantStatus(http.StatusOK).eq("_index", n)
			wantIDs(t, c.searchIDs(t, a, nil), "2")
		}},
		{name: "aliases/write_index_choice", run: func(t *testing.T, c *client) {
			// rest-api-spec bulk/10_basic.yml: an alias over two indices with
			// no write index rejects writes ("no write index is defined for
			// alias [...]"); is_write_index picks one.
			x := c.createIndex(t, "alwx", nil)
			y := c.createIndex(t, "alwy", nil)
			a := c.aliasName(t, "al-wi")
			c.do(t, http.MethodPost, "/_aliases", obj{"actions": arr{
				obj{"add": obj{"index": x, "alias": a}}, obj{"add": obj{"index": y, "alias": a}},
			}}).wantStatus(http.StatusOK)
			r := c.bulk(t, "/_bulk", obj{"index": obj{"_index": a, "_id": "1"}}, obj{"f": 1}).wantStatus(http.StatusOK)
			r.eq("errors", true).eq("items.0.index.status", 400).eq("items.0.index.error.type", "illegal_argument_exception").
				contains("items.0.index.error.reason", "no write index is defined for alias ["+a+"]")
			c.do(t, http.MethodPut, "/"+a+"/_doc/1", obj{"f": 1}).
				wantError(http.StatusBadRequest, "illegal_argument_exception", "illegal_argument_exception")
			c.do(t, http.MethodPost, "/_aliases", obj{"actions": arr{
				obj{"add": obj{"index": y, "alias": a, "is_write_index": true}},
			}}).wantStatus(http.StatusOK)
			c.do(t, http.MethodPut, "/"+a+"/_doc/1", obj{"f": 1}).wantStatus(http.StatusCreated).eq("_index", y)
		}},
		{name: "aliases/atomic_swap", run: func(t *testing.T, c *client) {
			// Remove and add in one request switch readers from the old index
			// to the new one with no moment where neither or both answer.
			old := c.createIndex(t, "alold", nil)
			next := c.createIndex(t, "alnew", nil)
			a := c.aliasName(t, "al-swap")
			c.do(t, http.MethodPut, "/"+old+"/_doc/old?refresh=true", obj{}).wantStatus(http.StatusCreated)
			c.do(t, http.MethodPut, "/"+next+"/_doc/new?refresh=true", obj{}).wantStatus(http.StatusCreated)
			c.do(t, http.MethodPost, "/_aliases", obj{"actions": arr{obj{"add": obj{"index": old, "alias": a}}}}).wantStatus(http.StatusOK)
			wantIDs(t, c.searchIDs(t, a, nil), "old")
			c.do(t, http.MethodPost, "/_aliases", obj{"actions": arr{
				obj{"remove": obj{"index": old, "alias": a}},
				obj{"add": obj{"index": next, "alias": a}},
			}}).wantStatus(http.StatusOK).eq("acknowledged", true)
			wantIDs(t, c.searchIDs(t, a, nil), "new")
			c.do(t, http.MethodGet, "/_alias/"+a, nil).wantStatus(http.StatusOK).eq(next, obj{"aliases": obj{a: obj{}}}).absent(old)
		}},
		{name: "aliases/batch_with_bad_action_changes_nothing", run: func(t *testing.T, c *client) {
			// Alias actions apply atomically: an add on a missing index fails
			// the whole request with 404 index_not_found_exception.
			n := c.createIndex(t, "alatom", nil)
			missing := c.name(t, "alatommiss")
			a := c.aliasName(t, "al-atom")
			c.do(t, http.MethodPost, "/_aliases", obj{"actions": arr{
				obj{"add": obj{"index": n, "alias": a}},
				obj{"add": obj{"index": missing, "alias": a}},
			}}).wantError(http.StatusNotFound, "index_not_found_exception", "index_not_found_exception")
			c.do(t, http.MethodGet, "/_alias/"+a, nil).wantStatus(http.StatusNotFound)
			c.do(t, http.MethodHead, "/"+missing, nil).wantStatus(http.StatusNotFound)
		}},
		{name: "aliases/remove_must_exist", run: func(t *testing.T, c *client) {
			// rest-api-spec indices.update_aliases/40_must_exist.yml: removing
			// a missing alias with must_exist true is a 404 and the add in
			// the same request does not happen.
			n := c.createIndex(t, "almust", nil)
			a := c.aliasName(t, "al-must")
			b := c.aliasName(t, "al-must-b")
			r := c.do(t, http.MethodPost, "/_aliases", obj{"actions": arr{
				obj{"remove": obj{"index": n, "alias": a, "must_exist": true}},
				obj{"add": obj{"index": n, "alias": b}},
			}})
			r.wantStatus(http.StatusNotFound)
			c.do(t, http.MethodGet, "/_alias/"+b, nil).wantStatus(http.StatusNotFound)
		}},
		{name: "aliases/deleted_with_index", run: func(t *testing.T, c *client) {
			n := c.createIndex(t, "aldel", nil)
			a := c.aliasName(t, "al-del")
			c.do(t, http.MethodPost, "/_aliases", obj{"actions": arr{obj{"add": obj{"index": n, "alias": a}}}}).wantStatus(http.StatusOK)
			c.do(t, http.MethodDelete, "/"+n, nil).wantStatus(http.StatusOK)
			c.do(t, http.MethodGet, "/_alias/"+a, nil).wantStatus(http.StatusNotFound)
			c.search(t, a, nil).wantError(http.StatusNotFound, "index_not_found_exception", "index_not_found_exception")
		}},
		{name: "aliases/create_index_with_alias", run: func(t *testing.T, c *client) {
			// The create index body may declare aliases.
			a := c.aliasName(t, "al-create")
			n := c.createIndex(t, "alcreate", obj{"aliases": obj{a: obj{}}})
			c.do(t, http.MethodGet, "/_alias/"+a, nil).wantStatus(http.StatusOK).eq(n, obj{"aliases": obj{a: obj{}}})
		}},
		{name: "aliases/alias_name_clashing_with_index", run: func(t *testing.T, c *client) {
			// An alias cannot take an existing index's name (400
			// invalid_alias_name_exception "an index or data stream exists
			// with the same name as the alias").
			x := c.createIndex(t, "alclx", nil)
			y := c.createIndex(t, "alcly", nil)
			r := c.do(t, http.MethodPost, "/_aliases", obj{"actions": arr{obj{"add": obj{"index": x, "alias": y}}}})
			r.wantStatus(http.StatusBadRequest).eq("error.type", "invalid_alias_name_exception")
		}},
	}
}
