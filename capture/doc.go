// Package capture owns the PostgreSQL side of Walsearch: the publication and the
// logical replication slot, the consistent initial snapshot, pgoutput decoding,
// the conversion of PostgreSQL values to JSON-ready Go values (the type codec),
// and the acknowledgement of the slot position.
//
// It turns committed row changes into bus.Change events, in log order, and hands
// them to a Publisher. It must never confirm a slot position past a commit whose
// events the Publisher has not durably stored (Flush), never invent a value for
// a column PostgreSQL did not send (unchanged TOAST values are named, not filled
// in), and never write to the tables it captures.
package capture
