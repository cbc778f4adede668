package api_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/internal/config"
	"github.com/walsearch/walsearch/internal/eslite"
	"github.com/walsearch/walsearch/internal/faultes"
)

// routingScript sends European and American orders to their own indices
// and the rest to the table's index.
const routingScript = `var indices = ["orders-eu", "orders-us"];
function transform(doc, ctx) {
  if (doc.region === "eu" || doc.region === "us") { ctx.index = "orders-" + doc.region; }
  return doc;
}`

// TestLiveIndicesListTheIndicesScriptsRouteTo runs the pipeline with a
// script that routes rows to indices other than the table's, against an
// engine that also holds indices Walsearch does not manage: GET /indices
// lists the routed indices (and searches reach them) but never the others.
// With api.fallback: postgres, while the engine is down, the table without
// a script is answered from PostgreSQL, and the scripted table's indices,
// whose documents are not its rows as they are, are not.
func TestLiveIndicesListTheIndicesScriptsRouteTo(t *testing.T) {
	t.Parallel()
	eng, err := eslite.Open(eslite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	faults := faultes.Start(eng)
	t.Cleanup(faults.Close)

	lp := startLivePipelineWith(t, 20, liveOpts{
		setup: []string{
			`CREATE TABLE orders (id bigint PRIMARY KEY, region text NOT NULL, amount int)`,
			// id % 3: 0 eu, 1 us, 2 apac; ten of each.
			`INSERT INTO orders SELECT g, (ARRAY['eu', 'us', 'apac'])[g % 3 + 1], g FROM generate_series(1, 30) g`,
		},
		scripts: map[string]string{"orders": routingScript},
		cfg: func(c *config.Config) {
			c.Elasticsearch.URL = faults.URL
			c.API.Fallback = api.FallbackPostgres
		},
		ready: func(lp *livePipeline) error {
			for _, index := range []string{"orders-eu", "orders-us", "orders", "users"} {
				want := 10
				if index == "users" {
					want = 20
				}
				if n, err := lp.total(fmt.Sprintf(`{"index":%q}`, index)); err != nil || n != want {
					return fmt.Errorf("%s: %d documents, %v", index, n, err)
				}
			}
			return nil
		},
	})
	// Indices Walsearch does not manage, one of them named like the ones it
	// makes (an alias over a versioned index).
	ctx := context.Background()
	for _, req := range []esapi.Request{
		esapi.IndicesCreateRequest{Index: "unrelated"},
		esapi.IndicesCreateRequest{Index: ".system-like"},
		esapi.IndicesCreateRequest{Index: "lookalike_v1", Body: strings.NewReader(`{"aliases":{"lookalike":{"is_write_index":true}}}`)},
	} {
		res, err := req.Do(ctx, lp.es)
		if err != nil || res.IsError() {
			t.Fatalf("create an unrelated index: %v %v", err, res)
		}
		res.Body.Close()
	}

	// The list is cached for a moment, and keys are known once capture
	// stored the table's schema.
	lp.waitFor(t, 30*time.Second, func(lp *livePipeline) error {
		r := lp.do(t, "GET", "/indices", "")
		var list struct {
			Indices []api.ManagedIndex `json:"indices"`
		}
		r.decode(t, &list)
		var names []string
		for _, mi := range list.Indices {
			names = append(names, mi.Name)
		}
		if r.code != 200 || !slices.Equal(names, []string{"orders", "orders-eu", "orders-us", "users"}) {
			return fmt.Errorf("indices: %d %s", r.code, r.body)
		}
		if !strings.Contains(string(r.body), `{"name":"orders-eu","schema":"public","table":"orders","key":["id"]}`) {
			return fmt.Errorf("a routed index does not name the table it is fed from: %s", r.body)
		}
		return nil
	})
	for _, index := range []string{"unrelated", "lookalike", "lookalike_v1", ".system-like"} {
		if r := lp.search(t, fmt.Sprintf(`{"index":%q}`, index)); r.code != 404 && r.code != 400 {
			t.Errorf("unmanaged index %s: %d %s", index, r.code, r.body)
		}
	}
	if r := lp.do(t, "GET", "/indices/orders-us/fields", ""); r.code != 200 || !strings.Contains(string(r.body), `"region"`) {
		t.Errorf("fields of a routed index: %d %s", r.code, r.body)
	}
	st := lp.status(t)
	for _, index := range []string{"orders-eu", "orders-us"} {
		if _, ok := st.tableDLQ(index); !ok {
			t.Errorf("/status has no line for the routed index %s", index)
		}
	}

	// The routed indices' fields are mapped dynamically with their first
	// documents: wait until the API's cached mapping has them, so that
	// what follows is about the outage, not about a field not seen yet.
	for _, index := range []string{"orders", "orders-eu", "orders-us"} {
		lp.waitFor(t, 30*time.Second, func(lp *livePipeline) error {
			if r := lp.search(t, fmt.Sprintf(`{"index":%q,"query_fields":{"region":"eu"}}`, index)); r.code != 200 {
				return fmt.Errorf("%s: %d %s", index, r.code, r.body)
			}
			return nil
		})
	}

	// The engine goes down.
	faults.Inject(faultes.Fault{Drop: true, All: true})
	lp.waitFor(t, 30*time.Second, func(lp *livePipeline) error {
		r := lp.search(t, `{"index":"users","query_fields":{"status":"active"},"fields":["id","name"]}`)
		if r.code != 200 || !strings.Contains(string(r.body), `"source":"postgres"`) || !strings.Contains(string(r.body), `"total_records":10`) {
			return fmt.Errorf("users while the engine is down: %d %s", r.code, r.body)
		}
		return nil
	})
	for _, index := range []string{"orders", "orders-eu", "orders-us"} {
		r := lp.search(t, fmt.Sprintf(`{"index":%q,"query_fields":{"region":"eu"}}`, index))
		if r.code != 503 || r.header.Get("Retry-After") == "" {
			t.Errorf("%s (scripted) while the engine is down: %d %s, want 503", index, r.code, r.body)
		}
	}
}
