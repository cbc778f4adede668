package bus

import (
	"context"
	"errors"
	"net"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

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

// Transient reports whether err, from Open against an external NATS, may
// go away by itself: no server answered yet, or JetStream did not answer
// in time or answered that it is not available yet (a cluster still
// electing its leader). A refused login, a bad
// credentials or TLS file, or a stream with the wrong settings is not.
func Transient(err error) bool {
	var netErr net.Error
	// A JetStream API answering 503 (err_code 10008, "JetStream system
	// temporarily unavailable") has no meta leader yet.
	var apiErr *jetstream.APIError
	var natsAPIErr *nats.APIError
	if errors.As(err, &apiErr) && apiErr.Code == 503 || errors.As(err, &natsAPIErr) && natsAPIErr.Code == 503 {
		return true
	}
	return errors.Is(err, nats.ErrNoServers) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) ||
		errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.As(err, &netErr)
}
