// Package scaleout holds the end-to-end tests of walsearch run as separate
// processes (--role) on a NATS cluster: two capture processes electing a
// leader, transform, sink and api apart, failover and the stale leader's
// fence. It has no code of its own.
package scaleout
