package conformance

import (
	"net/http"
	"testing"
)

// restartScenarios check that what Elasticsearch keeps durable survives a
// restart of the target: documents, versions, delete tombstones within
// gc_deletes, mappings, settings and aliases. They run one at a time.
func restartScenarios() []scenario {
	return []scenario{
		{name: "restart/external_version_survives", restart: true, run: func(t *testing.T, c *client) {
			n := c.createIndex(t, "rsver", nil)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?version=5&version_type=external", obj{"v": 5}).wantStatus(http.StatusCreated)
			c.restart(t)
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusOK).eq("_version", 5).eq("_source.v", 5)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?version=5&version_type=external", obj{"v": 55}).
				wantError(http.StatusConflict, "version_conflict_engine_exception", "version_conflict_engine_exception")
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?version=4&version_type=external_gte", obj{"v": 4}).
				wantError(http.StatusConflict, "version_conflict_engine_exception", "version_conflict_engine_exception")
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?version=6&version_type=external", obj{"v": 6}).
				wantStatus(http.StatusOK).eq("_version", 6)
		}},
		{name: "restart/delete_tombstone_survives", restart: true, run: func(t *testing.T, c *client) {
			// The tombstone of a versioned delete lasts gc_deletes (60s by
			// default), restart or not.
			n := c.createIndex(t, "rstomb", nil)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?version=5&version_type=external", obj{"v": 5}).wantStatus(http.StatusCreated)
			c.do(t, http.MethodDelete, "/"+n+"/_doc/1?version=9&version_type=external", nil).wantStatus(http.StatusOK)
			c.restart(t)
			c.do(t, http.MethodGet, "/"+n+"/_doc/1", nil).wantStatus(http.StatusNotFound)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?version=7&version_type=external", obj{"v": 7}).
				wantError(http.StatusConflict, "version_conflict_engine_exception", "version_conflict_engine_exception")
			c.do(t, http.MethodPut, "/"+n+"/_doc/1?version=10&version_type=external", obj{"v": 10}).
				wantStatus(http.StatusCreated).eq("_version", 10)
		}},
		{name: "restart/index_state_survives", restart: true, run: func(t *testing.T, c *client) {
			// Documents acknowledged before the restart, the mapping (explicit
			// and dynamic), settings and aliases are all there afterwards.
			n := c.createIndex(t, "rsstate", obj{
				"settings": obj{"index": obj{"max_result_window": 50}},
				"mappings": obj{"properties": obj{"k": obj{"type": "keyword"}}},
			})
			a := c.aliasName(t, "rs-alias")
			c.do(t, http.MethodPost, "/_aliases", obj{"actions": arr{obj{"add": obj{"index": n, "alias": a}}}}).wantStatus(http.StatusOK)
			c.bulkOK(t, n,
				obj{"index": obj{"_id": "1"}}, obj{"k": "a", "extra": 1},
				obj{"index": obj{"_id": "2"}}, obj{"k": "b", "extra": 2},
			)
			// Acknowledged but never refreshed before the restart.
			c.do(t, http.MethodPut, "/"+n+"/_doc/3", obj{"k": "c", "extra": 3}).wantStatus(http.StatusCreated)
			c.do(t, http.MethodDelete, "/"+n+"/_doc/2", nil).wantStatus(http.StatusOK)
			c.restart(t)
			c.do(t, http.MethodHead, "/"+n, nil).wantStatus(http.StatusOK)
			r := c.do(t, http.MethodGet, "/"+n+"/_mapping", nil).wantStatus(http.StatusOK)
			r.eq(n+".mappings.properties.k.type", "keyword").eq(n+".mappings.properties.extra.type", "long")
			c.do(t, http.MethodGet, "/"+n+"/_doc/3", nil).wantStatus(http.StatusOK).eq("_source.k", "c")
			c.do(t, http.MethodGet, "/"+n+"/_doc/2", nil).wantStatus(http.StatusNotFound)
			c.refresh(t, n)
			wantIDSet(t, c.searchIDs(t, a, q(obj{"range": obj{"extra": obj{"gte": 1}}})), "1", "3")
			c.search(t, n, obj{"from": 50, "size": 1}).
				wantError(http.StatusBadRequest, "search_phase_execution_exception", "illegal_argument_exception")
			c.do(t, http.MethodGet, "/_alias/"+a, nil).wantStatus(http.StatusOK).eq(n, obj{"aliases": obj{a: obj{}}})
		}},
		{name: "restart/deleted_index_stays_deleted", restart: true, run: func(t *testing.T, c *client) {
			n := c.createIndex(t, "rsgone", nil)
			c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"a": 1}).wantStatus(http.StatusCreated)
			c.do(t, http.MethodDelete, "/"+n, nil).wantStatus(http.StatusOK)
			c.restart(t)
			c.do(t, http.MethodHead, "/"+n, nil).wantStatus(http.StatusNotFound)
		}},
	}
}
