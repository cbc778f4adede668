package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// DeadLetter is an event a stage could not process, kept with the reason so it
// can be inspected and replayed.
type DeadLetter struct {
	V     int       `json:"v"`
	Stage string    `json:"stage"`
	Error string    `json:"error"`
	Stack string    `json:"stack,omitempty"`
	Time  time.Time `json:"time"`
	// Subject and MsgID are where the original event was published.
	Subject string `json:"subject"`
	MsgID   string `json:"msg_id,omitempty"`
	// Event is the original event, unchanged.
	Event json.RawMessage `json:"event"`
}

// DeadLetter stores dl on the stage's dead-letter subject and waits for
// JetStream to acknowledge it.
//
// An event so large that, with the reason, it exceeds the bus's message size
// limit is not kept: the entry keeps the reason and names the message the
// event was, and has no subject, so that replay refuses it (there is
// nothing to replay). Failing instead would stop the stage at every retry.
func (b *Bus) DeadLetter(ctx context.Context, dl *DeadLetter) error {
	dl.V = SchemaVersion
	if dl.Time.IsZero() {
		dl.Time = time.Now().UTC()
	}
	err := b.publishDeadLetter(ctx, dl)
	if errors.Is(err, nats.ErrMaxPayload) && len(dl.Event) > 0 {
		dl.Error = fmt.Sprintf("%s (the event, %d bytes, is not kept: with the reason it exceeds the bus's message size limit; it was message %s on %s)",
			dl.Error, len(dl.Event), dl.MsgID, dl.Subject)
		dl.Event, dl.Subject = nil, ""
		err = b.publishDeadLetter(ctx, dl)
	}
	if err != nil {
		return fmt.Errorf("publish dead letter for %s: %w", dl.Stage, err)
	}
	return nil
}

func (b *Bus) publishDeadLetter(ctx context.Context, dl *DeadLetter) error {
	data, err := json.Marshal(dl)
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	_, err = b.js.Publish(ctx, DLQSubject(dl.Stage), data)
	return err
}

// DLQCount returns the number of dead letters stored.
func (b *Bus) DLQCount(ctx context.Context) (uint64, error) { return b.DeadLetters().Count(ctx) }
