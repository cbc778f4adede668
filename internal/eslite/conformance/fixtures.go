package conformance

import (
	"testing"
	"time"
)

// obj is a JSON object literal.
type obj = map[string]any

// arr is a JSON array literal.
type arr = []any

// productsMapping maps the shared search fixture explicitly, so that
// query expectations do not depend on dynamic mapping.
func productsMapping() obj {
	return obj{
		"settings": obj{"number_of_shards": 1},
		"mappings": obj{"properties": obj{
			"title":     obj{"type": "text", "fields": obj{"keyword": obj{"type": "keyword"}}},
			"body":      obj{"type": "text"},
			"category":  obj{"type": "keyword"},
			"tags":      obj{"type": "keyword"},
			"price":     obj{"type": "long"},
			"rating":    obj{"type": "double"},
			"stock":     obj{"type": "integer"},
			"available": obj{"type": "boolean"},
			"created":   obj{"type": "date"},
		}},
	}
}

// products is the shared search fixture: six documents, the sixth without
// price, rating, stock, availability, date or tags.
func products() map[string]obj {
	return map[string]obj{
		"1": {"title": "Quick brown fox", "body": "a fox that jumps", "category": "animals", "tags": arr{"wild", "fast"},
			"price": 10, "rating": 4.5, "stock": 3, "available": true, "created": "2024-01-05T10:00:00Z"},
		"2": {"title": "Lazy brown dog", "body": "a dog sleeping all day", "category": "animals", "tags": arr{"pet"},
			"price": 20, "rating": 3.0, "stock": 0, "available": false, "created": "2024-01-20T08:30:00Z"},
		"3": {"title": "Quick red car", "body": "a car that is fast", "category": "vehicles", "tags": arr{"fast"},
			"price": 30, "rating": 4.0, "stock": 7, "available": true, "created": "2024-02-14T12:00:00Z"},
		"4": {"title": "Slow blue truck", "body": "heavy and slow", "category": "vehicles",
			"price": 40, "rating": 2.5, "stock": 1, "available": true, "created": "2024-03-01T00:00:00Z"},
		"5": {"title": "The fox and the hound", "body": "a story about friendship", "category": "books", "tags": arr{"classic"},
			"price": 50, "rating": 5.0, "stock": 12, "available": false, "created": "2024-03-15T18:45:00Z"},
		"6": {"title": "Untitled draft", "body": "nothing here yet", "category": "books"},
	}
}

// seedProducts creates a fresh index holding the products fixture, refreshed.
func (c *client) seedProducts(t testing.TB, short string) string {
	t.Helper()
	idx := c.createIndex(t, short, productsMapping())
	var lines []any
	for _, id := range []string{"1", "2", "3", "4", "5", "6"} {
		lines = append(lines, obj{"index": obj{"_id": id}}, products()[id])
	}
	c.bulkOK(t, idx, lines...)
	return idx
}

// epochMillis converts an RFC 3339 timestamp to the epoch milliseconds
// Elasticsearch uses for date sort values and histogram keys.
func epochMillis(t testing.TB, s string) int64 {
	t.Helper()
	ts, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return ts.UnixMilli()
}

// q builds a search body with just a query.
func q(query obj) obj { return obj{"query": query} }
