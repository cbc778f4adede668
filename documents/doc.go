// Package documents builds search documents from several related tables:
// an order with its customer and its items, kept exact as any of those
// rows changes.
//
// A definition (document.yaml beside a table's script) names a root table
// and the relations to embed, to any depth. Load reads and checks the
// definitions against PostgreSQL's catalog; the Assembler finds, for every
// change of a table a definition uses, the root rows it affects, and
// rebuilds those roots' documents from PostgreSQL with one generated query
// per batch, versioned with a WAL position read after the query's snapshot
// was taken (see docs/documents.md for why that version is safe).
//
// It reads PostgreSQL but never writes to it, and never talks to the search
// engine: its documents go through the transform stage like any other.
package documents
