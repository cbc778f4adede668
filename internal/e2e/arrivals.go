package e2e

import (
	"sync"
	"time"
)

// Arrivals records when a consumer first received each row of a workload
// whose rows have the ids 1..n, and counts the warm-up rows (ids ≤ 0)
// received before it. It is safe for concurrent use.
type Arrivals struct {
	mu   sync.Mutex
	at   []time.Time // at[id-1]; zero until received
	seen int
	warm map[int64]struct{}
	// dup counts rows received again; stray ids beyond n.
	dup, stray int
}

// NewArrivals records the rows 1..n.
func NewArrivals(n int) *Arrivals {
	return &Arrivals{at: make([]time.Time, n), warm: map[int64]struct{}{}}
}

// Record notes that the rows ids were received at t.
func (a *Arrivals) Record(t time.Time, ids ...int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, id := range ids {
		switch {
		case id <= 0:
			a.warm[id] = struct{}{}
		case id > int64(len(a.at)):
			a.stray++
		case a.at[id-1].IsZero():
			a.at[id-1] = t
			a.seen++
		default:
			a.dup++
		}
	}
}

// Stray records that something not naming a row was received.
func (a *Arrivals) Stray() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stray++
}

// Counts says how many distinct rows and warm-up rows were received, how
// many rows were received more than once and how many ids were not rows.
func (a *Arrivals) Counts() (rows, warm, dup, stray int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seen, len(a.warm), a.dup, a.stray
}

// Times returns when each row was first received (index id-1; zero when
// not received).
func (a *Arrivals) Times() []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.at...)
}

// Missing returns up to max ids not received.
func (a *Arrivals) Missing(max int) []int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []int64
	for i, t := range a.at {
		if t.IsZero() {
			if len(out) == max {
				break
			}
			out = append(out, int64(i+1))
		}
	}
	return out
}
