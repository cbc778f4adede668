package api

import (
	"encoding/json"
	"fmt"

	"github.com/gofiber/fiber/v2"
)

// obj is a JSON object in the OpenAPI document.
type obj = map[string]any

func ref(name string) obj { return obj{"$ref": "#/components/schemas/" + name} }

func jsonBody(schema obj) obj {
	return obj{"content": obj{"application/json": obj{"schema": schema}}}
}

func reply(desc string, schema obj) obj {
	r := jsonBody(schema)
	r["description"] = desc
	return r
}

func errorReplies(codes ...string) obj {
	out := obj{}
	for _, c := range codes {
		out[c] = reply("error", ref("Error"))
	}
	return out
}

func merge(a, b obj) obj {
	for k, v := range b {
		a[k] = v
	}
	return a
}

func param(name, in, desc string, schema obj, required bool) obj {
	return obj{"name": name, "in": in, "description": desc, "schema": schema, "required": required}
}

// openAPI is the OpenAPI 3 description of every route in routes(); a test
// checks that the two agree.
func openAPI() obj {
	auth := []any{obj{"bearer": []any{}}, obj{"apiKey": []any{}}}
	str := obj{"type": "string"}
	integer := obj{"type": "integer"}
	boolean := obj{"type": "boolean"}
	strList := obj{"type": "array", "items": str}
	anyObj := obj{"type": "object", "additionalProperties": true}
	lsnHdr := param(MinLSNHeader, "header", "read-your-writes: wait until every change committed before this LSN is searchable", str, false)
	return obj{
		"openapi": "3.0.3",
		"info": obj{"title": "Walsearch search API", "version": "1",
			"description": "Search PostgreSQL data indexed by Walsearch. Errors are {\"error\":{\"code\",\"message\"}}."},
		"security": auth,
		"paths": obj{
			"/search": obj{"post": obj{
				"summary": "Search an index with filters, free text, facets and highlights", "operationId": "search",
				"parameters":  []any{lsnHdr},
				"requestBody": merge(jsonBody(ref("SearchRequest")), obj{"required": true}),
				"responses":   merge(obj{"200": reply("a page of results", ref("SearchResponse"))}, errorReplies("400", "401", "404", "413", "429", "503", "504")),
			}},
			"/search/{index}/scroll": obj{"get": obj{
				"summary": "Page through any result set with a signed cursor", "operationId": "scroll",
				"parameters": []any{
					param("index", "path", "index name", str, true),
					param("cursor", "query", "next_cursor of the previous page; absent on the first call", str, false),
					param("size", "query", "documents per page (1-1000, default 10)", integer, false),
					param("fields", "query", "comma-separated fields to return", str, false),
					param("exclude_fields", "query", "first call: comma-separated fields to leave out", str, false),
					param("query_fields", "query", "first call: filters as a JSON object, as in POST /search", str, false),
					param("q", "query", "first call: free text", str, false),
					param("sort_by", "query", "first call: \"field:asc,other:desc\" or a JSON object", str, false),
					param("min_lsn", "query", "read-your-writes LSN", str, false),
					lsnHdr,
				},
				"responses": merge(obj{"200": reply("a page of results", ref("ScrollResponse"))}, errorReplies("400", "401", "404", "429", "503", "504")),
			}},
			"/indices": obj{"get": obj{
				"summary": "The indices Walsearch manages", "operationId": "listIndices",
				"responses": merge(obj{"200": reply("managed indices", ref("IndicesResponse"))}, errorReplies("401", "429", "503")),
			}},
			"/indices/{index}/fields": obj{"get": obj{
				"summary": "The searchable fields of an index and their types", "operationId": "listFields",
				"parameters": []any{param("index", "path", "index name", str, true)},
				"responses":  merge(obj{"200": reply("fields", ref("FieldsResponse"))}, errorReplies("400", "401", "404", "429", "503")),
			}},
			"/health": obj{"get": obj{
				"summary": "Overall and per-component health; 503 when searches cannot be answered", "operationId": "health",
				"security":  []any{},
				"responses": obj{"200": reply("serving", ref("Health")), "503": reply("not serving", ref("Health"))},
			}},
			"/health/live": obj{"get": obj{
				"summary": "200 while the process serves HTTP, whatever its dependencies: for liveness probes", "operationId": "live",
				"security":  []any{},
				"responses": obj{"200": reply("alive", anyObj)},
			}},
			"/status": obj{"get": obj{
				"summary": "Per-table indexing progress, lag, slot lag, bus backlog and dead letters", "operationId": "status",
				"responses": merge(obj{"200": reply("pipeline status", anyObj)}, errorReplies("401", "429", "503")),
			}},
			"/metrics": obj{"get": obj{
				"summary": "Prometheus metrics (a key limited to some indices gets 403)", "operationId": "metrics",
				"responses": merge(obj{"200": obj{"description": "Prometheus text format",
					"content": obj{"text/plain": obj{"schema": str}}}}, errorReplies("401", "403", "429")),
			}},
			"/engine": obj{"get": obj{
				"summary": "The search engine's circuit breaker, and each index's current version and document count", "operationId": "engine",
				"responses": merge(obj{"200": reply("engine state", anyObj)}, errorReplies("401", "429", "503")),
			}},
			"/dlq": obj{"get": obj{
				"summary": "Dead letters, oldest first, with their errors (a key limited to some indices sees its tables' only)", "operationId": "listDeadLetters",
				"parameters": []any{param("limit", "query", fmt.Sprintf("at most this many (1-%d, default %d)", MaxDLQLimit, DefaultDLQLimit), integer, false)},
				"responses":  merge(obj{"200": reply("dead letters", anyObj)}, errorReplies("400", "401", "429", "503")),
			}},
			"/dlq/{seq}/replay": obj{"post": obj{
				"summary": "Publish a dead letter's event again and remove the entry (send Content-Type: application/json)", "operationId": "replayDeadLetter",
				"parameters": []any{param("seq", "path", "the dead letter's sequence number (GET /dlq)", integer, true)},
				"responses":  merge(obj{"200": reply("replayed", anyObj)}, errorReplies("400", "401", "404", "409", "415", "429", "503")),
			}},
			"/ui": obj{"get": obj{
				"summary": "The web console (a page that asks for the API key and then calls this API)", "operationId": "console",
				"security":  []any{},
				"responses": obj{"200": obj{"description": "HTML page", "content": obj{"text/html": obj{"schema": str}}}},
			}},
			"/ui/{file}": obj{"get": obj{
				"summary": "The web console's scripts and style sheets", "operationId": "consoleFile",
				"security":   []any{},
				"parameters": []any{param("file", "path", "file name", str, true)},
				"responses":  obj{"200": obj{"description": "static file"}, "404": obj{"description": "no such file"}},
			}},
			"/openapi.json": obj{"get": obj{
				"summary": "This document", "operationId": "openapi", "security": []any{},
				"responses": obj{"200": reply("OpenAPI 3 document", anyObj)},
			}},
		},
		"components": obj{
			"securitySchemes": obj{
				"bearer": obj{"type": "http", "scheme": "bearer"},
				"apiKey": obj{"type": "apiKey", "in": "header", "name": "X-API-Key"},
			},
			"schemas": obj{
				"Error": obj{"type": "object", "required": []string{"error"}, "properties": obj{"error": obj{
					"type": "object", "required": []string{"code", "message"},
					"properties": obj{"code": str, "message": str}}}},
				"SearchRequest": obj{"type": "object", "required": []string{"index"}, "additionalProperties": false,
					"properties": obj{
						"index": str,
						"query_fields": obj{"type": "object", "description": "field → scalar (exact), list (any of), {gte,gt,lte,lt} (range) or null (missing)",
							"additionalProperties": true},
						"fields": strList, "exclude_fields": strList,
						"size":      obj{"type": "integer", "minimum": 1, "maximum": MaxPageSize, "description": "alias of page_size"},
						"page_size": obj{"type": "integer", "minimum": 1, "maximum": MaxPageSize, "default": DefaultPageSize},
						"page":      obj{"type": "integer", "minimum": 1, "default": 1, "description": "page × page_size ≤ 10000; deeper: scroll"},
						"sort_by":   obj{"type": "object", "additionalProperties": obj{"type": "string", "enum": []string{"asc", "desc"}}},
						"q":         obj{"type": "string", "maxLength": MaxQueryLength, "description": "free text: words, \"phrases\", +, |, -, ( )"},
						"highlight": boolean,
						"facets":    obj{"type": "array", "items": str, "maxItems": MaxFacets},
						"min_lsn":   obj{"type": "string", "example": "0/16B3748"},
					}},
				"SearchResponse": obj{"type": "object", "required": []string{"data", "meta"}, "properties": obj{
					"data": obj{"type": "array", "items": anyObj},
					"meta": obj{"type": "object", "required": []string{"total_records", "page_size", "current_page", "total_pages", "has_next", "has_previous", "selected_fields"},
						"properties": obj{
							"total_records": integer, "page_size": integer, "current_page": integer, "total_pages": integer,
							"has_next": boolean, "has_previous": boolean, "selected_fields": strList,
							"facets": obj{"type": "object", "additionalProperties": obj{"type": "array", "items": obj{
								"type": "object", "properties": obj{"value": obj{}, "count": integer}}}},
							"source": obj{"type": "string", "enum": []string{"postgres"}},
						}},
				}},
				"ScrollResponse": obj{"type": "object", "required": []string{"data", "meta"}, "properties": obj{
					"data": obj{"type": "array", "items": anyObj},
					"meta": obj{"type": "object", "required": []string{"total_records", "page_size", "has_next", "has_previous", "next_cursor", "selected_fields"},
						"properties": obj{
							"total_records": integer, "page_size": integer, "has_next": boolean, "has_previous": boolean,
							"next_cursor": obj{"type": "string", "nullable": true}, "selected_fields": strList,
						}},
				}},
				"IndicesResponse": obj{"type": "object", "required": []string{"indices"}, "properties": obj{
					"indices": obj{"type": "array", "items": obj{"type": "object", "required": []string{"name"}, "properties": obj{
						"name": str, "schema": str, "table": str, "key": strList}}},
				}},
				"FieldsResponse": obj{"type": "object", "required": []string{"index", "fields", "field_types"}, "properties": obj{
					"index": str, "fields": strList, "field_types": obj{"type": "object", "additionalProperties": str},
				}},
				"Health": obj{"type": "object", "required": []string{"status", "serving", "components"}, "properties": obj{
					"status":  obj{"type": "string", "enum": []string{HealthOK, HealthDegraded}},
					"serving": boolean, "fallback": str,
					"components": obj{"type": "object", "additionalProperties": obj{"type": "object", "properties": obj{
						"status": obj{"type": "string", "enum": []string{HealthOK, HealthDegraded, HealthDown}}, "error": str}}},
				}},
			},
		},
	}
}

// OpenAPI returns the OpenAPI 3 document served at /openapi.json.
func OpenAPI() ([]byte, error) { return json.Marshal(openAPI()) }

// openAPIHandler answers GET /openapi.json.
func (s *Server) openAPIHandler(c *fiber.Ctx) error {
	doc, err := OpenAPI()
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(doc)
}
