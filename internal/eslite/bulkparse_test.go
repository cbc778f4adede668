package eslite

import (
	"strings"
	"testing"
)

func TestParseBulk(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr string // substring of type: reason
		check   func(t *testing.T, items []*bulkItem)
	}{
		{
			name: "all four actions",
			body: "{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"x\":1}\n" +
				"{\"create\":{\"_id\":\"2\"}}\n{\"y\":2}\n" +
				"{\"update\":{\"_id\":\"1\",\"if_seq_no\":3,\"if_primary_term\":1}}\n{\"doc\":{\"x\":2},\"doc_as_upsert\":true}\n" +
				"{\"delete\":{\"_id\":\"2\",\"version\":7,\"version_type\":\"external\"}}\n",
			check: func(t *testing.T, items []*bulkItem) {
				if len(items) != 4 {
					t.Fatalf("got %d items, want 4", len(items))
				}
				if items[0].req.kind != opIndex || items[0].index != "a" || items[0].req.id != "1" || string(items[0].req.source) != `{"x":1}` {
					t.Errorf("item 0 = %+v", items[0])
				}
				if items[1].req.kind != opCreate || items[1].index != "" || items[1].line != 3 {
					t.Errorf("item 1 = %+v", items[1])
				}
				u := items[2]
				if u.req.kind != opUpdate || u.req.ifSeqNo != 3 || u.req.ifPrimaryTerm != 1 || !u.req.update.docAsUpsert || string(u.req.update.doc) != `{"x":2}` {
					t.Errorf("item 2 = %+v", u)
				}
				d := items[3]
				if d.req.kind != opDelete || d.req.version != 7 || d.req.vtype != vtExternal {
					t.Errorf("item 3 = %+v", d)
				}
			},
		},
		{
			name: "op_type create turns index into create",
			body: "{\"index\":{\"_id\":\"1\",\"op_type\":\"create\"}}\n{}\n",
			check: func(t *testing.T, items []*bulkItem) {
				if items[0].req.kind != opCreate {
					t.Errorf("kind = %v, want create", items[0].req.kind)
				}
			},
		},
		{
			name: "carriage returns and empty lines",
			body: "\n{\"index\":{\"_id\":\"1\"}}\r\n{\"x\":1}\r\n\n",
			check: func(t *testing.T, items []*bulkItem) {
				if len(items) != 1 || string(items[0].req.source) != `{"x":1}` || items[0].line != 2 {
					t.Fatalf("items = %+v", items)
				}
			},
		},
		{
			name: "version as a string",
			body: "{\"index\":{\"_id\":\"1\",\"version\":\"5\",\"version_type\":\"external_gte\"}}\n{}\n",
			check: func(t *testing.T, items []*bulkItem) {
				if items[0].req.version != 5 || items[0].req.vtype != vtExternalGTE {
					t.Errorf("item = %+v", items[0].req)
				}
			},
		},
		{
			name:    "no trailing newline",
			body:    "{\"index\":{\"_id\":\"1\"}}\n{\"x\":1}",
			wantErr: "illegal_argument_exception: The bulk request must be terminated by a newline [\\n]",
		},
		{
			name:    "action line without newline",
			body:    "{\"delete\":{\"_id\":\"1\"}}",
			wantErr: "The bulk request must be terminated by a newline [\\n]",
		},
		{
			name:    "unknown action",
			body:    "{\"upsert\":{\"_id\":\"1\"}}\n{}\n",
			wantErr: "Malformed action/metadata line [1], expected field [create], [delete], [index] or [update] but found [upsert]",
		},
		{
			name:    "array action line",
			body:    "[1]\n",
			wantErr: "Malformed action/metadata line [1], expected START_OBJECT but found [START_ARRAY]",
		},
		{
			name:    "empty object",
			body:    "{}\n",
			wantErr: "Malformed action/metadata line [1], expected FIELD_NAME but found [END_OBJECT]",
		},
		{
			name:    "action is a string",
			body:    "{\"index\":\"x\"}\n{}\n",
			wantErr: "Malformed action/metadata line [1], expected START_OBJECT or END_OBJECT but found [VALUE_STRING]",
		},
		{
			name:    "two actions on one line",
			body:    "{\"index\":{},\"delete\":{}}\n{}\n",
			wantErr: "Malformed action/metadata line [1], expected END_OBJECT but found [FIELD_NAME]",
		},
		{
			name:    "unknown parameter",
			body:    "{\"index\":{\"_type\":\"doc\"}}\n{}\n",
			wantErr: "Action/metadata line [1] contains an unknown parameter [_type]",
		},
		{
			name:    "array parameter",
			body:    "{\"index\":{\"_id\":[1]}}\n{}\n",
			wantErr: "Malformed action/metadata line [1], expected a simple value for field [_id] but found [START_ARRAY]",
		},
		{
			name:    "line numbers count source lines",
			body:    "{\"index\":{}}\n{}\n{\"nope\":{}}\n",
			wantErr: "Malformed action/metadata line [3]",
		},
		{
			name:    "invalid json",
			body:    "{\"index\":{\n",
			wantErr: "x_content_parse_exception",
		},
		{
			name:    "bad version type",
			body:    "{\"index\":{\"version_type\":\"force\"}}\n{}\n",
			wantErr: "No version type match [force]",
		},
		{
			name:    "update with version",
			body:    "{\"update\":{\"_id\":\"1\",\"version\":2}}\n{\"doc\":{}}\n",
			wantErr: "Update requests do not support versioning. Please use `if_seq_no` and `if_primary_term` instead",
		},
		{
			name:    "update with an unknown field",
			body:    "{\"update\":{\"_id\":\"1\"}}\n{\"dock\":{}}\n",
			wantErr: "x_content_parse_exception: [1:2] [UpdateRequest] unknown field [dock]",
		},
		{
			name: "index without source at the end is dropped",
			body: "{\"index\":{\"_id\":\"1\"}}\n",
			check: func(t *testing.T, items []*bulkItem) {
				if len(items) != 0 {
					t.Errorf("items = %d, want 0", len(items))
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, err := parseBulk([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("no error, want %q", tt.wantErr)
				}
				if err.Status != 400 {
					t.Errorf("status = %d, want 400", err.Status)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %q, want it to contain %q", err.Error(), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			tt.check(t, items)
		})
	}
}

func FuzzParseBulk(f *testing.F) {
	for _, seed := range []string{
		"{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"x\":1}\n",
		"{\"delete\":{\"_id\":\"1\",\"version\":3,\"version_type\":\"external\"}}\n",
		"{\"update\":{\"_id\":\"1\"}}\n{\"doc\":{\"a\":{\"b\":1}},\"doc_as_upsert\":true}\n",
		"{\"create\":{}}\r\n{}\r\n\n",
		"[1]\n",
		"{\"index\":{}}\n{\"x\":1}",
		"{\"index\":{\"_id\":[1]}}\n",
		"\n\n\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		items, err := parseBulk(body)
		if err != nil {
			if err.Status != 400 || err.Type == "" || err.Reason == "" {
				t.Fatalf("error without status, type or reason: %+v", err)
			}
			return
		}
		for _, it := range items {
			if it.line < 1 {
				t.Fatalf("item with line %d", it.line)
			}
			switch it.req.kind {
			case opDelete:
				if it.req.source != nil || it.req.update != nil {
					t.Fatalf("delete with a source line: %+v", it)
				}
			case opUpdate:
				if it.req.update == nil {
					t.Fatalf("update without a body: %+v", it)
				}
			default:
				if it.req.source == nil {
					t.Fatalf("%v without a source line", it.req.kind)
				}
			}
		}
	})
}
