package transform

import (
	"errors"
	"fmt"
)

// ErrTimeout is wrapped by a ScriptError when a call ran past the script time
// limit and was interrupted.
var ErrTimeout = errors.New("script exceeded its time limit")

// ErrDocTooLarge is wrapped by the error of a document larger than the
// configured limit; the change is dead-lettered instead of indexed.
var ErrDocTooLarge = errors.New("document too large")

// ErrBadResult is wrapped by a ScriptError when transform returned something
// that is not an object, null or undefined, or set ctx.index or
// ctx.unchanged to something unusable.
var ErrBadResult = errors.New("unusable script result")

// ScriptError is an error raised by a table's script, with the script's stack
// trace when there is one.
type ScriptError struct {
	Table string
	Err   error
	Stack string
}

func (e *ScriptError) Error() string { return "script for " + e.Table + ": " + e.Err.Error() }

func (e *ScriptError) Unwrap() error { return e.Err }

// LoadError reports a script that could not be loaded: it does not compile,
// its top-level code throws, or it does not define transform. Line and Column
// are 0 when the error has no position.
type LoadError struct {
	Path   string
	Line   int
	Column int
	Err    error
}

func (e *LoadError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("load script %s:%d:%d: %v", e.Path, e.Line, e.Column, e.Err)
	}
	return fmt.Sprintf("load script %s: %v", e.Path, e.Err)
}

func (e *LoadError) Unwrap() error { return e.Err }
