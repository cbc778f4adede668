package verify

import (
	"context"
	"slices"
	"strings"

	"github.com/walsearch/walsearch/capture"
)

// repair asks the running walsearch to re-read the rows of the drifted
// documents through capture's backfill path (rows published between
// watermarks at a new LSN; a key without a row becomes a delete, which the
// sink applies with version semantics), then checks them until they match
// or RepairWait passes. It returns the drift that remained.
func (v *verifier) repair(ctx context.Context, t *capture.Table, found []drift) ([]drift, error) {
	seen := map[string]bool{}
	var keys [][]string
	for _, d := range found {
		if d.key == nil {
			continue // an id that is no key of this table: nothing to re-read
		}
		k := strings.Join(d.key, "\x00")
		if !seen[k] {
			seen[k] = true
			keys = append(keys, d.key)
		}
	}
	slices.SortFunc(keys, func(a, b []string) int { return slices.Compare(a, b) })
	if len(keys) > 0 {
		id, err := capture.RequestRepair(ctx, v.cfg.URL, v.cfg.Slot, t.Schema()+"."+t.Name(), keys)
		if err != nil {
			return nil, err
		}
		v.cfg.Logger.Info("repair requested", "table", t.Schema()+"."+t.Name(), "keys", len(keys), "request", id)
	}
	cands := make([]candidate, len(found))
	for i, d := range found {
		cands[i] = d.candidate
	}
	// A document the repair did not fix by RepairWait is drift that remained.
	return v.confirm(ctx, t, cands, v.cfg.RepairWait, v.cfg.RepairWait+v.cfg.Settle*recheckLimit, false)
}
