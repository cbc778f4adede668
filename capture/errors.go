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
