// Package search is eslite's search layer: Elasticsearch 8 mappings and dynamic
// mapping, value validation and coercion, a bleve-backed searchable index, the query
// DSL, sorting and paging (search_after, scroll cursors, the point-in-time _shard_doc
// tiebreaker over pinned views), _source filtering, docvalue_fields, highlighting,
// aggregations, _count and the matching behind _delete_by_query and _update_by_query,
// plus the Error type every eslite response uses for failures.
//
// It decides what a query matches, in what order, and what a search response body
// contains. It never speaks HTTP, never decides which indices or aliases exist, and
// never keeps the realtime document store, versions or refresh schedule: the engine
// owns those and hands this package refreshed operations through Index.Apply.
package search
