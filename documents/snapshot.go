package documents

import (
	"fmt"
	"strconv"
	"strings"
)

// snapshot is pg_current_snapshot(): transactions below xmin have ended,
// those at or above xmax had not started, those in xip were running.
type snapshot struct {
	xmax uint64
	xip  []uint64
}

// parseSnapshot reads the text form "xmin:xmax:xip,xip,…".
func parseSnapshot(s string) (snapshot, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return snapshot{}, fmt.Errorf("read snapshot %q: want xmin:xmax:xip", s)
	}
	var snap snapshot
	var err error
	if snap.xmax, err = strconv.ParseUint(parts[1], 10, 64); err != nil {
		return snapshot{}, fmt.Errorf("read snapshot %q: %w", s, err)
	}
	if parts[2] != "" {
		for _, x := range strings.Split(parts[2], ",") {
			v, err := strconv.ParseUint(x, 10, 64)
			if err != nil {
				return snapshot{}, fmt.Errorf("read snapshot %q: %w", s, err)
			}
			snap.xip = append(snap.xip, v)
		}
	}
	return snap, nil
}

// sees reports whether the snapshot sees committed transaction xid, as
// the log gives it (its low 32 bits): it did not start at or after xmax
// and was not running when the snapshot was taken. Comparisons are
// modulo 2^32, as PostgreSQL's own: xid is recent, it was just read from
// the log.
func (s snapshot) sees(xid uint32) bool {
	if int32(xid-uint32(s.xmax)) >= 0 {
		return false
	}
	for _, x := range s.xip {
		if uint32(x) == xid {
			return false
		}
	}
	return true
}
