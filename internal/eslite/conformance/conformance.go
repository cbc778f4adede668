// Package conformance is a black-box suite of Elasticsearch 8 REST behaviours.
//
// It owns the scenarios that any Elasticsearch-compatible target must pass
// to stand in for Elasticsearch in Walsearch: the embedded eslite engine
// always, and a real cluster whenever one is configured. Every expectation
// is taken from Elasticsearch's documentation or its own REST tests, never
// from what an implementation happens to do. Scenarios create and delete
// only their own uniquely named indices (conf-<area>-<random>), so the suite
// can run against a shared cluster; it must never touch any other index.
package conformance

import (
	"net/http"
	"net/url"
	"testing"
)

// Target is one Elasticsearch-compatible cluster under test.
type Target struct {
	Name string
	// URL is the base URL. For the in-process target any host works,
	// e.g. http://eslite.invalid.
	URL *url.URL
	// Transport carries every request. nil = http.DefaultTransport.
	Transport http.RoundTripper
	// Username and Password are optional basic-auth credentials.
	Username, Password string
	// Restart stops and restarts the cluster keeping its data; afterwards
	// requests through Transport reach the restarted cluster. nil = cannot
	// restart: scenarios needing it skip, saying why.
	Restart func(t testing.TB)
}

// scenario is one observable Elasticsearch behaviour.
type scenario struct {
	name string
	// restart marks scenarios that restart the target; they never run in
	// parallel with anything else on the same target.
	restart bool
	run     func(t *testing.T, c *client)
}

// scenarios lists every scenario, grouped by area.
func scenarios() []scenario {
	var all []scenario
	for _, area := range [][]scenario{
		clusterScenarios(),
		adminScenarios(),
		mappingScenarios(),
		documentScenarios(),
		versioningScenarios(),
		bulkScenarios(),
		refreshScenarios(),
		searchQueryScenarios(),
		dateQueryScenarios(),
		sortScenarios(),
		longPrecisionScenarios(),
		pagingScenarios(),
		responseShapeScenarios(),
		aggregationScenarios(),
		deleteByQueryScenarios(),
		aliasScenarios(),
		scrollScenarios(),
		pitScenarios(),
		msearchScenarios(),
		updateByQueryScenarios(),
		fetchScenarios(),
		updateSourceScenarios(),
		goClientScenarios(),
		restartScenarios(),
	} {
		all = append(all, area...)
	}
	return all
}

// Run runs every scenario against target as a subtest: the independent ones
// in parallel, then the ones that restart the target one at a time.
func Run(t *testing.T, target Target) {
	t.Helper()
	if target.URL == nil {
		t.Fatalf("conformance target %q has no URL", target.Name)
	}
	c := newClient(target)
	all := scenarios()
	t.Run("parallel", func(t *testing.T) {
		for _, s := range all {
			if s.restart {
				continue
			}
			t.Run(s.name, func(t *testing.T) {
				t.Parallel()
				s.run(t, c)
			})
		}
	})
	t.Run("serial", func(t *testing.T) {
		for _, s := range all {
			if !s.restart {
				continue
			}
			t.Run(s.name, func(t *testing.T) {
				if target.Restart == nil {
					t.Skipf("target %q cannot be restarted by the suite", target.Name)
				}
				s.run(t, c)
			})
		}
	})
}
