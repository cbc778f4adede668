package eslite

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestExternalVersioning(t *testing.T) {
	tests := []struct {
		name     string
		vtype    string
		stored   int64
		given    int64
		accepted bool
		reason   string
	}{
		{"external higher", "external", 5, 6, true, ""},
		{"external equal", "external", 5, 5, false, "[1]: version conflict, current version [5] is higher or equal to the one provided [5]"},
		{"external lower", "external", 5, 3, false, "[1]: version conflict, current version [5] is higher or equal to the one provided [3]"},
		{"external_gte equal", "external_gte", 5, 5, true, ""},
		{"external_gte lower", "external_gte", 5, 3, false, "[1]: version conflict, current version [5] is higher than the one provided [3]"},
		{"external_gt is external", "external_gt", 5, 5, false, "is higher or equal to the one provided [5]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := openTest(t, "")
			do(t, e, "PUT", fmt.Sprintf("/v/_doc/1?version=%d&version_type=external", tt.stored), `{"n":1}`).must(t, 201)
			r := do(t, e, "PUT", fmt.Sprintf("/v/_doc/1?version=%d&version_type=%s", tt.given, tt.vtype), `{"n":2}`)
			if tt.accepted {
				r.must(t, 200)
				if got := r.get("_version"); got != tt.given {
					t.Errorf("_version = %v, want %d", got, tt.given)
				}
				return
			}
			r.must(t, 409)
			if got := r.get("error.type"); got != "version_conflict_engine_exception" {
				t.Errorf("error.type = %v", got)
			}
			if got, _ := r.get("error.reason").(string); !strings.Contains(got, tt.reason) {
				t.Errorf("reason = %q, want %q", got, tt.reason)
			}
			if got := r.get("error.shard"); got != "0" {
				t.Errorf("error.shard = %v, want \"0\"", got)
			}
			g := do(t, e, "GET", "/v/_doc/1", "").must(t, 200)
			if g.get("_version") != tt.stored || g.get("_source.n") != int64(1) {
				t.Errorf("stored document changed: %s", g.raw)
			}
		})
	}
}

func TestVersionValidation(t *testing.T) {
	e := openTest(t, "")
	cases := []struct{ path, reason string }{
		{"/v/_doc/1?version_type=external", "illegal version value [-3] for version type [EXTERNAL]"},
		{"/v/_doc/1?version=-2&version_type=external", "illegal version value [-2] for version type [EXTERNAL]"},
		{"/v/_doc/1?version=3", "internal versioning can not be used for optimistic concurrency control"},
		{"/v/_doc/1?if_seq_no=1", "ifSeqNo is set, but primary term is [0]"},
		{"/v/_doc/1?if_primary_term=1", "ifSeqNo is unassigned, but primary term is [1]"},
		{"/v/_doc/1?if_seq_no=1&if_primary_term=1&version=2&version_type=external", "compare and write operations can not use versioning"},
		{"/v/_create/1?version=2&version_type=external", "create operations only support internal versioning. use index instead"},
	}
	for _, c := range cases {
		r := do(t, e, "PUT", c.path, `{}`).must(t, 400)
		if r.get("error.type") != "action_request_validation_exception" {
			t.Errorf("%s: type %v", c.path, r.get("error.type"))
		}
		if got, _ := r.get("error.reason").(string); !strings.HasPrefix(got, "Validation Failed: 1: ") || !strings.Contains(got, c.reason) {
			t.Errorf("%s: reason %q, want it to contain %q", c.path, got, c.reason)
		}
	}
	r := do(t, e, "PUT", "/v/_doc/1?version=abc&version_type=external", `{}`).must(t, 400)
	if r.get("error.reason") != "Failed to parse long parameter [version] with value [abc]" {
		t.Errorf("reason = %v", r.get("error.reason"))
	}
}

func TestInternalVersionsAndSeqNo(t *testing.T) {
	e := openTest(t, "")
	r := do(t, e, "PUT", "/v/_doc/1", `{"a":1}`).must(t, 201)
	if r.get("_version") != int64(1) || r.get("_seq_no") != int64(0) || r.get("result") != "created" {
		t.Fatalf("first write: %s", r.raw)
	}
	r = do(t, e, "PUT", "/v/_doc/1", `{"a":2}`).must(t, 200)
	if r.get("_version") != int64(2) || r.get("_seq_no") != int64(1) || r.get("result") != "updated" {
		t.Fatalf("second write: %s", r.raw)
	}
	r = do(t, e, "PUT", "/v/_doc/1?if_seq_no=0&if_primary_term=1", `{"a":3}`).must(t, 409)
	if want := "[1]: version conflict, required seqNo [0], primary term [1]. current document has seqNo [1] and primary term [1]"; r.get("error.reason") != want {
		t.Errorf("reason = %v, want %s", r.get("error.reason"), want)
	}
	do(t, e, "PUT", "/v/_doc/1?if_seq_no=1&if_primary_term=1", `{"a":3}`).must(t, 200)
	r = do(t, e, "PUT", "/v/_create/1", `{"a":4}`).must(t, 409)
	if want := "[1]: version conflict, document already exists (current version [3])"; r.get("error.reason") != want {
		t.Errorf("reason = %v, want %s", r.get("error.reason"), want)
	}
	r = do(t, e, "DELETE", "/v/_doc/1", "").must(t, 200)
	if r.get("_version") != int64(4) || r.get("result") != "deleted" {
		t.Fatalf("delete: %s", r.raw)
	}
	// The tombstone keeps the version: the next write continues from it.
	r = do(t, e, "PUT", "/v/_create/1", `{"a":5}`).must(t, 201)
	if r.get("_version") != int64(5) || r.get("result") != "created" {
		t.Fatalf("create after delete: %s", r.raw)
	}
	r = do(t, e, "DELETE", "/v/_doc/missing", "").must(t, 404)
	if r.get("result") != "not_found" || r.get("_version") != int64(1) {
		t.Fatalf("delete of a missing doc: %s", r.raw)
	}
}

func TestExternalDeleteTombstoneExpires(t *testing.T) {
	e := openTest(t, "")
	clock := setClock(e, time.Unix(1_700_000_000, 0))
	do(t, e, "PUT", "/v", `{"settings":{"index":{"gc_deletes":"60s"}}}`).must(t, 200)
	do(t, e, "PUT", "/v/_doc/1?version=10&version_type=external", `{}`).must(t, 201)
	do(t, e, "DELETE", "/v/_doc/1?version=20&version_type=external", "").must(t, 200)

	r := do(t, e, "PUT", "/v/_doc/1?version=20&version_type=external", `{}`).must(t, 409)
	if want := "[1]: version conflict, current version [20] is higher or equal to the one provided [20]"; r.get("error.reason") != want {
		t.Errorf("reason = %v", r.get("error.reason"))
	}
	do(t, e, "PUT", "/v/_doc/1?version=20&version_type=external_gte", `{}`).must(t, 201)
	do(t, e, "DELETE", "/v/_doc/1?version=30&version_type=external", "").must(t, 200)
	do(t, e, "PUT", "/v/_doc/1?version=15&version_type=external", `{}`).must(t, 409)

	clock.add(61 * time.Second)
	r = do(t, e, "PUT", "/v/_doc/1?version=15&version_type=external", `{}`).must(t, 201)
	if r.get("result") != "created" || r.get("_version") != int64(15) {
		t.Fatalf("write after gc_deletes: %s", r.raw)
	}
}

func TestUpdateSemantics(t *testing.T) {
	e := openTest(t, "")
	r := do(t, e, "POST", "/u/_update/1", `{"doc":{"a":1}}`).must(t, 404)
	if r.get("error.type") != "document_missing_exception" || r.get("error.reason") != "[1]: document missing" {
		t.Fatalf("missing doc: %s", r.raw)
	}
	do(t, e, "POST", "/u/_update/1", `{"doc":{"a":1,"o":{"x":1}},"doc_as_upsert":true}`).must(t, 201)
	r = do(t, e, "POST", "/u/_update/1", `{"doc":{"a":1}}`).must(t, 200)
	if r.get("result") != "noop" || r.get("_version") != int64(1) || r.get("_shards.total") != int64(0) {
		t.Fatalf("noop: %s", r.raw)
	}
	r = do(t, e, "POST", "/u/_update/1", `{"doc":{"a":1},"detect_noop":false}`).must(t, 200)
	if r.get("result") != "updated" || r.get("_version") != int64(2) {
		t.Fatalf("detect_noop=false: %s", r.raw)
	}
	do(t, e, "POST", "/u/_update/1", `{"doc":{"o":{"y":2},"b":true}}`).must(t, 200)
	g := do(t, e, "GET", "/u/_doc/1", "").must(t, 200)
	if got := string(g.raw[strings.Index(string(g.raw), `"_source":`)+10 : len(g.raw)-1]); got != `{"a":1,"o":{"x":1,"y":2},"b":true}` {
		t.Errorf("merged source = %s", got)
	}
	r = do(t, e, "POST", "/u/_update/2", `{"doc":{"a":1},"upsert":{"a":0}}`).must(t, 201)
	if g := do(t, e, "GET", "/u/_doc/2", ""); g.get("_source.a") != int64(0) {
		t.Errorf("upsert source: %s", g.raw)
	}
}
