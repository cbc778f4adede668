package bus

import "errors"

// ErrClosed is returned by operations on a closed Bus or publisher.
var ErrClosed = errors.New("bus closed")

// ErrNewerSchema is returned when an event was written by a newer Walsearch
// whose encoding this build does not know.
var ErrNewerSchema = errors.New("event written by a newer walsearch (schema version too high): upgrade this process")

// PublishError reports a publish JetStream did not acknowledge.
type PublishError struct {
	Subject string
	MsgID   string
	Err     error
}

func (e *PublishError) Error() string {
	return "publish " + e.Subject + " (id " + e.MsgID + "): " + e.Err.Error()
}

func (e *PublishError) Unwrap() error { return e.Err }
