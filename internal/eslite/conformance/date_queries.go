package conformance

import (
	"net/http"
	"testing"
	"time"
)

// dateQueryScenarios cover range queries on date fields: absolute bounds,
// formats, date math relative to now and to an anchor date.
func dateQueryScenarios() []scenario {
	return []scenario{
		{name: "dates/range_absolute", run: func(t *testing.T, c *client) {
			n := c.seedProducts(t, "dabs")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"range": obj{"created": obj{"gte": "2024-01-01", "lt": "2024-02-01"}}})), "1", "2")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"range": obj{"created": obj{"gt": "2024-03-01T00:00:00Z"}}})), "5")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"range": obj{"created": obj{"gte": "2024-03-01T00:00:00Z"}}})), "4", "5")
			// Numbers are epoch milliseconds for the default date format.
			wantIDSet(t, c.searchIDs(t, n, q(obj{"range": obj{"created": obj{"lt": epochMillis(t, "2024-01-06T00:00:00Z")}}})), "1")
		}},
		{name: "dates/range_with_format", run: func(t *testing.T, c *client) {
			// range "format" parses the bounds; missing time components of
			// gte/lt default to the start of the day.
			n := c.seedProducts(t, "dfmt")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"range": obj{"created": obj{
				"gte": "01/02/2024", "lt": "10/03/2024", "format": "dd/MM/yyyy",
			}}})), "3", "4")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"range": obj{"created": obj{
				"gte": "2024", "lt": "2025", "format": "yyyy",
			}}})), "1", "2", "3", "4", "5")
		}},
		{name: "dates/range_date_math_now", run: func(t *testing.T, c *client) {
			// Date math: now-1d/d rounds down to the start of yesterday (UTC),
			// so something an hour old is in and something ten days old is out.
			n := c.createIndex(t, "dnow", obj{"mappings": obj{"properties": obj{"at": obj{"type": "date"}}}})
			now := time.Now().UTC()
			c.bulkOK(t, n,
				obj{"index": obj{"_id": "recent"}}, obj{"at": now.Add(-time.Hour).Format(time.RFC3339)},
				obj{"index": obj{"_id": "old"}}, obj{"at": now.Add(-10 * 24 * time.Hour).Format(time.RFC3339)},
				obj{"index": obj{"_id": "future"}}, obj{"at": now.Add(10 * 24 * time.Hour).Format(time.RFC3339)},
			)
			wantIDs(t, c.searchIDs(t, n, q(obj{"range": obj{"at": obj{"gte": "now-1d/d", "lte": "now"}}})), "recent")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"range": obj{"at": obj{"lt": "now-7d"}}})), "old")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"range": obj{"at": obj{"gt": "now+1d/d"}}})), "future")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"range": obj{"at": obj{"gte": "now-30d/d", "lt": "now+1M"}}})), "recent", "old", "future")
		}},
		{name: "dates/range_anchored_date_math", run: func(t *testing.T, c *client) {
			// "2024-01-01||+1M" is February 1st; "||/M" rounds to the month.
			n := c.seedProducts(t, "danchor")
			wantIDSet(t, c.searchIDs(t, n, q(obj{"range": obj{"created": obj{"gte": "2024-01-01||+1M"}}})), "3", "4", "5")
			// gte with rounding rounds down: 2024-02-14||/M is February 1st.
			wantIDSet(t, c.searchIDs(t, n, q(obj{"range": obj{"created": obj{"gte": "2024-02-14||/M", "lt": "2024-03-01"}}})), "3")
		}},
		{name: "dates/epoch_millis_field", run: func(t *testing.T, c *client) {
			// A date field with format epoch_millis takes numbers and
			// numeric strings; _source keeps what was sent.
			n := c.createIndex(t, "depoch", obj{"mappings": obj{"properties": obj{"ts": obj{"type": "date", "format": "epoch_millis"}}}})
			c.bulkOK(t, n,
				obj{"index": obj{"_id": "a"}}, obj{"ts": 1700000000000},
				obj{"index": obj{"_id": "b"}}, obj{"ts": "1800000000000"},
			)
			wantIDs(t, c.searchIDs(t, n, q(obj{"range": obj{"ts": obj{"gte": 1750000000000}}})), "b")
			wantIDs(t, c.searchIDs(t, n, q(obj{"range": obj{"ts": obj{"lt": "1750000000000"}}})), "a")
			c.do(t, http.MethodGet, "/"+n+"/_doc/b", nil).wantStatus(http.StatusOK).eq("_source.ts", "1800000000000")
		}},
		{name: "dates/default_format_accepts_millis", run: func(t *testing.T, c *client) {
			// The default date format is strict_date_optional_time||epoch_millis.
			n := c.createIndex(t, "dmix", obj{"mappings": obj{"properties": obj{"at": obj{"type": "date"}}}})
			c.bulkOK(t, n,
				obj{"index": obj{"_id": "millis"}}, obj{"at": epochMillis(t, "2024-01-01T00:00:00Z")},
				obj{"index": obj{"_id": "iso"}}, obj{"at": "2024-01-01T00:00:00.001Z"},
				obj{"index": obj{"_id": "offset"}}, obj{"at": "2024-01-01T02:00:00+02:00"},
			)
			wantIDSet(t, c.searchIDs(t, n, q(obj{"range": obj{"at": obj{"gte": "2024-01-01T00:00:00Z", "lte": "2024-01-01T00:00:00Z"}}})), "millis", "offset")
			wantIDs(t, c.searchIDs(t, n, q(obj{"range": obj{"at": obj{"gt": "2024-01-01T00:00:00Z"}}})), "iso")
		}},
		{name: "dates/invalid_date_rejected", run: func(t *testing.T, c *client) {
			n := c.createIndex(t, "dbad", obj{"mappings": obj{"properties": obj{"at": obj{"type": "date"}}}})
			c.do(t, http.MethodPut, "/"+n+"/_doc/1", obj{"at": "not a date"}).
				wantError(http.StatusBadRequest, "document_parsing_exception", "document_parsing_exception").
				contains("error.reason", "failed to parse field [at] of type [date]")
		}},
		{name: "dates/sub_millisecond_precision_is_truncated", run: func(t *testing.T, c *client) {
			// The date type has millisecond resolution: microseconds are
			// accepted by strict_date_optional_time and dropped when indexed,
			// while _source keeps the original string.
			n := c.createIndex(t, "dmicro", obj{"mappings": obj{"properties": obj{"at": obj{"type": "date"}}}})
			c.bulkOK(t, n,
				obj{"index": obj{"_id": "micro"}}, obj{"at": "2024-01-01T10:00:00.123456Z"},
				obj{"index": obj{"_id": "later"}}, obj{"at": "2024-01-01T10:00:00.124Z"},
			)
			r := c.search(t, n, obj{"sort": arr{obj{"at": "asc"}}}).wantStatus(http.StatusOK)
			wantIDs(t, r.ids(), "micro", "later")
			r.eq("hits.hits.0.sort", arr{epochMillis(t, "2024-01-01T10:00:00Z") + 123})
			r.eq("hits.hits.0._source.at", "2024-01-01T10:00:00.123456Z")
			wantIDs(t, c.searchIDs(t, n, q(obj{"range": obj{"at": obj{"lte": "2024-01-01T10:00:00.123Z"}}})), "micro")
		}},
	}
}
