package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/walsearch/walsearch/api"
	"github.com/walsearch/walsearch/bus"
)

// deadLetterStore gives the API the running pipeline's dead letters, for
// GET /dlq and POST /dlq/{seq}/replay, through the bus's dead-letter store
// (the one walsearch dlq uses).
type deadLetterStore struct {
	dl *bus.DeadLetters
}

var _ api.DeadLetterStore = (*deadLetterStore)(nil)

// List implements api.DeadLetterStore.
func (d *deadLetterStore) List(ctx context.Context, limit int, keep func(api.DeadLetter) bool) ([]api.DeadLetter, error) {
	var out []api.DeadLetter
	err := d.dl.Each(ctx, "", func(seq uint64, dl *bus.DeadLetter) bool {
		if a := toAPI(seq, dl); keep(a) {
			out = append(out, a)
		}
		return len(out) < limit
	})
	return out, err
}

// Get implements api.DeadLetterStore.
func (d *deadLetterStore) Get(ctx context.Context, seq uint64) (api.DeadLetter, error) {
	dl, err := d.dl.Get(ctx, seq)
	if err != nil {
		return api.DeadLetter{}, apiError(err)
	}
	return toAPI(seq, dl), nil
}

// Replay implements api.DeadLetterStore.
func (d *deadLetterStore) Replay(ctx context.Context, seq uint64) error {
	_, err := d.dl.Replay(ctx, seq)
	return apiError(err)
}

// apiError maps the bus's dead-letter errors to the API's.
func apiError(err error) error {
	switch {
	case errors.Is(err, bus.ErrDeadLetterNotFound):
		return fmt.Errorf("%w: %w", api.ErrDeadLetterNotFound, err)
	case errors.Is(err, bus.ErrNotReplayable):
		return fmt.Errorf("%w: %w", api.ErrNotReplayable, err)
	}
	return err
}

func toAPI(seq uint64, dl *bus.DeadLetter) api.DeadLetter {
	out := api.DeadLetter{Seq: seq, Time: dl.Time, Stage: dl.Stage, Subject: dl.Subject,
		Error: dl.Error, Stack: dl.Stack, Event: dl.Event}
	if table := dl.Origin(); table != "" {
		out.Schema, out.Table, _ = strings.Cut(table, ".")
	}
	return out
}
