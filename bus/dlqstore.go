package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrDeadLetterNotFound is wrapped by the errors of Get and Replay for a
// sequence that holds no dead letter.
var ErrDeadLetterNotFound = errors.New("not found")

// ErrNotReplayable is wrapped by Replay's error for an entry without an
// original subject or event (one whose event was too large to keep).
var ErrNotReplayable = errors.New("it has no original subject or event")

// DeadLetters reads and edits the dead-letter stream (DLQStream): the one
// place that lists, shows, replays, purges and counts dead letters, for the
// CLI and the API alike.
type DeadLetters struct {
	js    jetstream.JetStream
	tally *dlqTally
}

// NewDeadLetters returns the dead-letter store of js. Keep one for repeated
// CountByTable calls: it reads only the entries added since the last.
func NewDeadLetters(js jetstream.JetStream) *DeadLetters {
	return &DeadLetters{js: js, tally: newDLQTally(js)}
}

// DeadLetters returns the bus's dead-letter store.
func (b *Bus) DeadLetters() *DeadLetters { return NewDeadLetters(b.js) }

func (d *DeadLetters) stream(ctx context.Context) (jetstream.Stream, error) {
	s, err := d.js.Stream(ctx, DLQStream)
	if err != nil {
		return nil, fmt.Errorf("open dead-letter stream: %w", err)
	}
	return s, nil
}

// Each calls fn for every entry (of stage, if not empty) in sequence order
// until fn returns false.
func (d *DeadLetters) Each(ctx context.Context, stage string, fn func(seq uint64, dl *DeadLetter) bool) error {
	s, err := d.stream(ctx)
	if err != nil {
		return err
	}
	subject := DLQPrefix + ">"
	if stage != "" {
		subject = DLQSubject(stage)
	}
	for seq := uint64(1); ; seq++ {
		raw, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read dead letters: %w", err)
		}
		dl, err := decodeDeadLetter(raw)
		if err != nil {
			return err
		}
		if !fn(raw.Sequence, dl) {
			return nil
		}
		seq = raw.Sequence
	}
}

// Get returns entry seq.
func (d *DeadLetters) Get(ctx context.Context, seq uint64) (*DeadLetter, error) {
	s, err := d.stream(ctx)
	if err != nil {
		return nil, err
	}
	raw, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("dead letter %d: %w", seq, ErrDeadLetterNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read dead letter %d: %w", seq, err)
	}
	return decodeDeadLetter(raw)
}

func decodeDeadLetter(raw *jetstream.RawStreamMsg) (*DeadLetter, error) {
	var dl DeadLetter
	if err := Decode(raw.Data, &dl); err != nil {
		return nil, fmt.Errorf("dead letter %d: %w", raw.Sequence, err)
	}
	return &dl, nil
}

// Replay publishes the original event of entry seq again to the subject it
// was first published on, with a fresh message id (so that the duplicate
// window does not drop it), and removes the entry once JetStream stored the
// event.
func (d *DeadLetters) Replay(ctx context.Context, seq uint64) (*DeadLetter, error) {
	s, err := d.stream(ctx)
	if err != nil {
		return nil, err
	}
	dl, err := d.Get(ctx, seq)
	if err != nil {
		return nil, err
	}
	if dl.Subject == "" || strings.HasPrefix(dl.Subject, DLQPrefix) || len(dl.Event) == 0 {
		return nil, fmt.Errorf("replay dead letter %d: %w", seq, ErrNotReplayable)
	}
	id := fmt.Sprintf("%s:replay:%d:%d", dl.MsgID, seq, time.Now().UnixNano())
	if _, err := d.js.Publish(ctx, dl.Subject, dl.Event, jetstream.WithMsgID(id)); err != nil {
		return nil, fmt.Errorf("replay dead letter %d to %s: %w", seq, dl.Subject, err)
	}
	if err := s.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("remove replayed dead letter %d: %w", seq, err)
	}
	return dl, nil
}

// Purge deletes every entry, or stage's, and returns how many.
func (d *DeadLetters) Purge(ctx context.Context, stage string) (uint64, error) {
	s, err := d.stream(ctx)
	if err != nil {
		return 0, err
	}
	before, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("dead-letter stream info: %w", err)
	}
	var opts []jetstream.StreamPurgeOpt
	if stage != "" {
		opts = append(opts, jetstream.WithPurgeSubject(DLQSubject(stage)))
	}
	if err := s.Purge(ctx, opts...); err != nil {
		return 0, fmt.Errorf("purge dead letters: %w", err)
	}
	after, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("dead-letter stream info: %w", err)
	}
	return before.State.Msgs - after.State.Msgs, nil
}

// Count returns the number of dead letters stored.
func (d *DeadLetters) Count(ctx context.Context) (uint64, error) {
	s, err := d.stream(ctx)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("dead-letter stream info: %w", err)
	}
	return info.State.Msgs, nil
}

// CountByTable returns the number of dead letters and, by table of origin
// ("schema.table"), those whose table is known. When reading the entries
// fails it still returns the number, without the breakdown.
func (d *DeadLetters) CountByTable(ctx context.Context) (uint64, map[string]uint64, error) {
	return d.tally.count(ctx)
}
