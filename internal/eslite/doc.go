// Package eslite is an embedded, single-node engine that speaks the subset of
// the Elasticsearch 8 REST API Walsearch uses, built on bleve.
//
// It owns which indices exist, their settings, mappings and aliases, the
// realtime document store (current _source, _version, _seq_no and delete
// tombstones per id), versioning, refresh scheduling, persistence under
// Config.Dir and HTTP routing. What a query matches and what a _search body
// contains belongs to the search subpackage.
//
// eslite must never claim to be a cluster: it has no shards, replicas,
// snapshots or security, and it must never silently accept a request whose
// Elasticsearch semantics it cannot honour; it answers with the error
// Elasticsearch would give, or with a documented difference (docs/eslite.md).
package eslite
