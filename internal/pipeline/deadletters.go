package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/bus"
)

// deadLetterStore gives the API the dead-letter stream of the running
// pipeline's bus, for GET /dlq and POST /dlq/{seq}/replay. Replay works as
// walsearch dlq replay does: the original event goes back to its subject
// with a fresh message id, and only once JetStream stored it is the entry
// removed.
type deadLetterStore struct {
	js jetstream.JetStream
}

var _ api.DeadLetterStore = (*deadLetterStore)(nil)

func (d *deadLetterStore) stream(ctx context.Context) (jetstream.Stream, error) {
	s, err := d.js.Stream(ctx, bus.DLQStream)
	if err != nil {
		return nil, fmt.Errorf("open dead-letter stream: %w", err)
	}
	return s, nil
}

// List implements api.DeadLetterStore.
func (d *deadLetterStore) List(ctx context.Context, limit int, keep func(api.DeadLetter) bool) ([]api.DeadLetter, error) {
	s, err := d.stream(ctx)
	if err != nil {
		return nil, err
	}
	var out []api.DeadLetter
	for seq := uint64(1); len(out) < limit; seq++ {
		// The next entry at or after seq: replayed entries leave gaps.
		raw, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(bus.DLQPrefix+">"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read dead letters: %w", err)
		}
		seq = raw.Sequence
		dl, err := decodeDeadLetter(raw)
		if err != nil {
			return nil, err
		}
		if keep(dl) {
			out = append(out, dl)
		}
	}
	return out, nil
}

// Get implements api.DeadLetterStore.
func (d *deadLetterStore) Get(ctx context.Context, seq uint64) (api.DeadLetter, error) {
	s, err := d.stream(ctx)
	if err != nil {
		return api.DeadLetter{}, err
	}
	raw, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return api.DeadLetter{}, fmt.Errorf("dead letter %d: %w", seq, api.ErrDeadLetterNotFound)
	}
	if err != nil {
		return api.DeadLetter{}, fmt.Errorf("read dead letter %d: %w", seq, err)
	}
	return decodeDeadLetter(raw)
}

// Replay implements api.DeadLetterStore.
func (d *deadLetterStore) Replay(ctx context.Context, seq uint64) error {
	s, err := d.stream(ctx)
	if err != nil {
		return err
	}
	raw, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("dead letter %d: %w", seq, api.ErrDeadLetterNotFound)
	}
	if err != nil {
		return fmt.Errorf("read dead letter %d: %w", seq, err)
	}
	var dl bus.DeadLetter
	if err := bus.Decode(raw.Data, &dl); err != nil {
		return fmt.Errorf("dead letter %d: %w", seq, err)
	}
	if dl.Subject == "" || strings.HasPrefix(dl.Subject, bus.DLQPrefix) || len(dl.Event) == 0 {
		return fmt.Errorf("dead letter %d has no original subject or event: %w", seq, api.ErrNotReplayable)
	}
	id := fmt.Sprintf("%s:replay:%d:%d", dl.MsgID, seq, time.Now().UnixNano())
	if _, err := d.js.Publish(ctx, dl.Subject, dl.Event, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("replay dead letter %d to %s: %w", seq, dl.Subject, err)
	}
	if err := s.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("remove replayed dead letter %d: %w", seq, err)
	}
	return nil
}

func decodeDeadLetter(raw *jetstream.RawStreamMsg) (api.DeadLetter, error) {
	var dl bus.DeadLetter
	if err := bus.Decode(raw.Data, &dl); err != nil {
		return api.DeadLetter{}, fmt.Errorf("dead letter %d: %w", raw.Sequence, err)
	}
	out := api.DeadLetter{Seq: raw.Sequence, Time: dl.Time, Stage: dl.Stage, Subject: dl.Subject,
		Error: dl.Error, Stack: dl.Stack, Event: dl.Event}
	if table := deadLetterTable(raw.Data); table != "" {
		out.Schema, out.Table, _ = strings.Cut(table, ".")
	}
	return out, nil
}
