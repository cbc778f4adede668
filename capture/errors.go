package capture

import (
	"errors"
	"fmt"
)

// ErrClosed is returned by Run after Close.
var ErrClosed = errors.New("capture is closed")

// ErrRunning is returned by Run while another Run of the same Capture is active.
var ErrRunning = errors.New("capture is already running")

// ErrWALLevel means the server cannot do logical decoding.
var ErrWALLevel = errors.New("wal_level is not logical: set wal_level = logical in postgresql.conf and restart PostgreSQL")

// ErrNotOwned means the replication slot or publication belongs to another
// walsearch instance, or exists without a record and nothing proves it is
// this instance's: capture never alters or drops it.
var ErrNotOwned = errors.New("not owned by this walsearch instance")

// ErrSlotLost means the replication slot this instance's snapshot was taken
// from is gone or invalidated: changes were lost, and only a fresh snapshot
// can rebuild the index.
var ErrSlotLost = errors.New("replication slot lost")

// SetupError is a problem an operator must fix before capture can run:
// wrong credentials, a missing database or table, missing privileges,
// wal_level, or a slot or publication capture must not touch. Retrying does
// not help, so Fatal reports true and a supervisor stops instead.
type SetupError struct{ Err error }

func (e *SetupError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *SetupError) Unwrap() error { return e.Err }

// Fatal reports that retrying cannot fix the error.
func (e *SetupError) Fatal() bool { return true }

// ErrProtocol means the replication stream did not follow the pgoutput protocol
// (for example a row change outside a transaction or for an unknown relation).
var ErrProtocol = errors.New("pgoutput protocol violation")

// ErrUnidentifiableRow means an update did not carry the key of the row it
// changed (a TOASTed key column sent as unchanged without an old key).
var ErrUnidentifiableRow = errors.New("row cannot be identified")

// PublishError is returned by Run when the Publisher failed: the events from
// the last confirmed position on are replayed when Run is called again.
type PublishError struct {
	Op  string // "publish" or "flush"
	Err error
}

func (e *PublishError) Error() string { return fmt.Sprintf("%s changes: %v", e.Op, e.Err) }

// Unwrap returns the Publisher's error.
func (e *PublishError) Unwrap() error { return e.Err }
