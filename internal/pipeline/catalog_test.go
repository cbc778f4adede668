package pipeline

import (
	"context"
	"testing"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/bus/bustest"
	"github.com/walsearch/walsearch/capture"
	"github.com/walsearch/walsearch/internal/config"
	"github.com/walsearch/walsearch/transform"
)

// TestCatalogOfDocumentDefinitions: a definition's root index lists no
// columns, so the PostgreSQL fallback never answers for it with rows, and
// a table captured only for definitions has no index.
func TestCatalogOfDocumentDefinitions(t *testing.T) {
	ctx := context.Background()
	b := bustest.Open(t)
	for _, table := range []string{"orders", "order_items", "users"} {
		ts := &bus.TableSchema{V: 1, Schema: "public", Table: table, Key: []string{"id"},
			Columns: []bus.ColumnSchema{{Name: "id", Type: "bigint"}}}
		if err := bus.PutTableSchema(ctx, b.State(), ts); err != nil {
			t.Fatal(err)
		}
	}
	sc := transform.DefaultScriptConfig()
	sc.Dir, sc.ReloadInterval = t.TempDir(), 0
	scripts, err := transform.LoadScripts(sc)
	if err != nil {
		t.Fatal(err)
	}
	defer scripts.Close()
	cat := &catalog{cfg: config.Default(), state: b.State(), scripts: scripts,
		capture: func() *capture.Capture { return nil },
		built:   map[string]bool{"public.orders": true}, docOnly: map[string]bool{"public.order_items": true}}
	list, err := cat.Indices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, mi := range list {
		got[mi.Name] = len(mi.Columns)
	}
	if len(got) != 2 || got["orders"] != 0 || got["users"] != 1 {
		t.Fatalf("indices and their column counts: %v; want orders without columns, users with its column, no order_items", got)
	}
}
