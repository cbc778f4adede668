package sink

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// esBulkResponse is a response as Elasticsearch writes it for n indexed
// documents.
func esBulkResponse(n int, errors bool) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"took":3,"errors":%t,"items":[`, errors)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"index":{"_index":"items","_id":"%d","_version":23803720,"result":"created","_shards":{"total":2,"successful":1,"failed":0},"_seq_no":%d,"_primary_term":1,"status":201}}`, i, i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func TestSummarizeBulkAgreesWithEncodingJSON(t *testing.T) {
	bodies := [][]byte{
		esBulkResponse(0, false),
		esBulkResponse(1, false),
		esBulkResponse(1000, false),
		esBulkResponse(3, true),
		[]byte(" {\n \"items\" : [ {\"delete\":{\"status\":404,\"error\":{\"reason\":\"a \\\"]}\\\" b\"}}} , {} ] , \"errors\" : false , \"x\" : [1, -2.5e3, null, true, \"}\"] }\n"),
		[]byte(`{"errors":false,"items":[[],[[]],{"a":{"b":[{}]}}]}`),
		// As filtered by bulkFilterPath.
		[]byte(`{"errors":false,"items":[{"index":{"status":201}},{"delete":{"status":404}}]}`),
		[]byte(`{"errors":true,"items":[{"index":{"status":201}},{"index":{"status":400,"error":{"type":"document_parsing_exception","reason":"x"}}}]}`),
	}
	for i, body := range bodies {
		errs, items, ok := summarizeBulk(body)
		if !ok {
			t.Fatalf("body %d: not read: %s", i, body)
		}
		var want struct {
			Errors bool              `json:"errors"`
			Items  []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatalf("body %d: %v", i, err)
		}
		if errs != want.Errors || items != len(want.Items) {
			t.Fatalf("body %d: errors %t, %d items; encoding/json reads errors %t, %d items", i, errs, items, want.Errors, len(want.Items))
		}
	}
}

func TestSummarizeBulkLeavesTheUnexpectedToEncodingJSON(t *testing.T) {
	for _, body := range []string{
		``, `[]`, `{}`, `{"errors":false}`, `{"items":[]}`, `{"errors":"false","items":[]}`,
		`{"errors":false,"items":[}`, `{"errors":false,"items":[1,]}`, `{"errors":false,"items":[]`,
		`{"errors":false,"items":[]} x`, `{"errors":false,"items":["a]}`, `{"errors":false "items":[]}`,
		`{"errors":false,"items":[{"a" 1}]}`, `{"errors":false,"items":[{"a":}]}`, "{\"errors\":false,\"items\":[\"\x01\"]}",
		`{"errors":false,"items":[` + strings.Repeat("[", 2000) + strings.Repeat("]", 2000) + `]}`,
	} {
		if _, _, ok := summarizeBulk([]byte(body)); ok {
			t.Errorf("%.60q read as a bulk response", body)
		}
	}
}

func TestReadBulkResponseCountsItems(t *testing.T) {
	if _, err := readBulkResponse(esBulkResponse(10, false), 10); err != nil {
		t.Fatal(err)
	}
	if _, err := readBulkResponse(esBulkResponse(9, false), 10); err == nil || !strings.Contains(err.Error(), "9 items for 10 documents") {
		t.Fatalf("9 items for 10 documents read as %v", err)
	}
	br, err := readBulkResponse(esBulkResponse(2, true), 2)
	if err != nil || !br.Errors || len(br.Items) != 2 || br.Items[1].outcome().Status != 201 {
		t.Fatalf("a response with errors read as %+v, %v", br, err)
	}
	filtered := `{"errors":true,"items":[{"index":{"status":201}},{"delete":{"status":404}},{"index":{"status":400,"error":{"type":"document_parsing_exception","reason":"x"}}}]}`
	br, err = readBulkResponse([]byte(filtered), 3)
	if err != nil || !br.Errors || len(br.Items) != 3 || br.Items[1].outcome().Status != 404 ||
		br.Items[2].outcome().Status != 400 || !strings.Contains(string(br.Items[2].outcome().Error), "document_parsing_exception") {
		t.Fatalf("a filtered response with errors read as %+v, %v", br, err)
	}
}

func FuzzSummarizeBulk(f *testing.F) {
	f.Add(esBulkResponse(2, false))
	f.Add([]byte(`{"errors":true,"items":[{"index":{"status":409,"error":{"type":"x"}}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		errs, items, ok := summarizeBulk(body)
		if !ok || !json.Valid(body) {
			return
		}
		var want struct {
			Errors bool              `json:"errors"`
			Items  []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(body, &want); err != nil {
			return // valid JSON of another shape (encoding/json matches keys without case)
		}
		if errs != want.Errors || items != len(want.Items) {
			t.Fatalf("errors %t, %d items; encoding/json reads errors %t, %d items", errs, items, want.Errors, len(want.Items))
		}
	})
}

func BenchmarkReadBulkResponse(b *testing.B) {
	body := esBulkResponse(1000, false)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := readBulkResponse(body, 1000); err != nil {
			b.Fatal(err)
		}
	}
}
