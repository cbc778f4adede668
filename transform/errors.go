package transform

// ScriptError is an error raised by a table's script, with the script's stack
// trace when there is one.
type ScriptError struct {
	Table string
	Err   error
	Stack string
}

func (e *ScriptError) Error() string { return "script for " + e.Table + ": " + e.Err.Error() }

func (e *ScriptError) Unwrap() error { return e.Err }
