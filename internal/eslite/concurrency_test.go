package eslite

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// Many writers race on the same ids with external versions; whatever the
// interleaving, every id ends at the highest version any writer sent, with
// that writer's source, and every rejected item is a 409.
func TestConcurrentExternalVersionsKeepTheHighest(t *testing.T) {
	for _, dir := range []string{"", t.TempDir()} {
		t.Run(fmt.Sprintf("persistent=%v", dir != ""), func(t *testing.T) {
			e := openTest(t, dir)
			const writers, ids, rounds = 8, 50, 20
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(w), 7))
					for range rounds {
						var b strings.Builder
						for _, id := range rng.Perm(ids) {
							v := rng.IntN(1000) * writers // distinct per writer
							v += w
							fmt.Fprintf(&b, "{\"index\":{\"_index\":\"c\",\"_id\":\"%d\",\"version\":%d,\"version_type\":\"external\"}}\n{\"v\":%d}\n", id, v, v)
						}
						r := do(t, e, "POST", "/_bulk", b.String())
						if r.status != 200 {
							t.Errorf("bulk: %d %s", r.status, r.raw)
							return
						}
						for _, it := range r.body["items"].([]any) {
							item := it.(map[string]any)["index"].(map[string]any)
							st := fmt.Sprint(item["status"])
							if st != "200" && st != "201" && st != "409" {
								t.Errorf("item status %s: %v", st, item)
							}
						}
					}
				}()
			}
			wg.Wait()
			// Recompute the expected maximum per id from the same streams.
			want := make([]int, ids)
			for i := range want {
				want[i] = -1
			}
			for w := range writers {
				rng := rand.New(rand.NewPCG(uint64(w), 7))
				for range rounds {
					for _, id := range rng.Perm(ids) {
						v := rng.IntN(1000)*writers + w
						want[id] = max(want[id], v)
					}
				}
			}
			for id, v := range want {
				g := do(t, e, "GET", fmt.Sprintf("/c/_doc/%d", id), "").must(t, 200)
				if g.get("_version") != int64(v) || g.get("_source.v") != int64(v) {
					t.Errorf("id %d: %s, want version %d", id, g.raw, v)
				}
			}
		})
	}
}

// Concurrent writers to different ids all succeed and sequence numbers are
// unique.
func TestConcurrentSeqNosAreUnique(t *testing.T) {
	e := openTest(t, "")
	const writers, per = 8, 50
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				r := do(t, e, "PUT", fmt.Sprintf("/s/_doc/%d-%d", w, i), `{"a":1}`)
				if r.status != 201 {
					t.Errorf("status %d: %s", r.status, r.raw)
					return
				}
				seq := r.get("_seq_no").(int64)
				mu.Lock()
				if seen[seq] {
					t.Errorf("_seq_no %d assigned twice", seq)
				}
				seen[seq] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != writers*per {
		t.Errorf("%d distinct seq_nos, want %d", len(seen), writers*per)
	}
}
