package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/internal/config"
)

// statusAs is GET /status with key; an error until the API answers.
func (lp *livePipeline) statusAs(key string) (liveStatus, error) {
	req, err := http.NewRequest("GET", lp.base+"/status", nil)
	if err != nil {
		return liveStatus{}, err
	}
	req.Header.Set("X-API-Key", key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return liveStatus{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return liveStatus{}, err
	}
	if res.StatusCode != 200 {
		return liveStatus{}, fmt.Errorf("status: %d %s", res.StatusCode, raw)
	}
	var st liveStatus
	return st, json.Unmarshal(raw, &st)
}

// healthNow is one GET /health (cached by the server for a second).
func (lp *livePipeline) healthNow(t *testing.T) (healthReply, string) {
	t.Helper()
	r := lp.do(t, "GET", "/health", "")
	var h healthReply
	if err := json.Unmarshal(r.body, &h); err != nil {
		t.Fatalf("health: %d %s", r.code, r.body)
	}
	h.code = r.code
	return h, string(r.body)
}

// TestLiveDeadLettersDegradeHealthUntilPurged makes real dead letters in two
// tables (scripts that throw on some rows) and checks that /health says
// degraded while any are waiting — still answering 200 and serving, with the
// dead_letters component saying what to do and nothing of the tables — that
// /status counts them per table for a key allowed every index, and only its
// own table's for a key limited to one index, and that health is ok again
// once they are gone: one removed as a replay does leaves it degraded, the
// purge of the rest makes it ok.
func TestLiveDeadLettersDegradeHealthUntilPurged(t *testing.T) {
	t.Parallel()
	const keyAll, keyOrders = "all-indices-key-0123456789", "orders-only-key-0123456789"
	byTable := map[string]uint64{"public.users": 3, "public.orders": 4}
	lp := startLivePipelineWith(t, 30, liveOpts{
		setup: []string{
			`CREATE TABLE orders (id bigint PRIMARY KEY, amount int NOT NULL)`,
			`INSERT INTO orders SELECT g, g * 10 FROM generate_series(1, 20) g`,
		},
		scripts: map[string]string{
			// ids 10, 20, 30 of users and 5, 10, 15, 20 of orders.
			"users":  `function transform(doc) { if (doc.id % 10 === 0) { throw new Error("no tens"); } return doc; }`,
			"orders": `function transform(doc) { if (doc.id % 5 === 0) { throw new Error("no fives"); } return doc; }`,
		},
		cfg: func(c *config.Config) {
			c.API.Keys = []config.APIKey{{Key: keyAll}, {Key: keyOrders, Indices: []string{"orders"}}}
		},
		ready: func(lp *livePipeline) error {
			st, err := lp.statusAs(keyAll)
			if err != nil {
				return err
			}
			return st.wantDeadLetters(7, byTable)
		},
	})

	degraded := func(h healthReply) error {
		dl := h.Components["dead_letters"]
		if h.code != 200 || h.Status != "degraded" || !h.Serving || dl.Status != "degraded" ||
			!strings.Contains(dl.Error, "walsearch dlq") || strings.Contains(dl.Error, "users") || strings.Contains(dl.Error, "orders") {
			return fmt.Errorf("health %d %+v, want 200, degraded and serving, with dead_letters degraded saying what to do", h.code, h)
		}
		for name, c := range h.Components {
			if name != "dead_letters" && c.Status != "ok" {
				return fmt.Errorf("component %s is %s (%s): only the dead letters should degrade health", name, c.Status, c.Error)
			}
		}
		return nil
	}
	lp.waitFor(t, 30*time.Second, func(lp *livePipeline) error {
		h, _ := lp.healthNow(t)
		return degraded(h)
	})

	// The key limited to orders sees the dead letters of orders only.
	st, err := lp.statusAs(keyOrders)
	if err != nil {
		t.Fatal(err)
	}
	if st.DLQCount != 4 || len(st.DLQByTable) != 1 || st.DLQByTable["public.orders"] != 4 {
		t.Errorf("orders-only key: dlq_count %d, dlq_by_table %v; want 4 and only public.orders", st.DLQCount, st.DLQByTable)
	}
	for _, ts := range st.Tables {
		if ts.Index != "orders" {
			t.Errorf("orders-only key sees the line of %s", ts.Index)
		} else if ts.DLQCount != 4 {
			t.Errorf("orders line: dlq_count %d, want 4", ts.DLQCount)
		}
	}

	// Removing one entry, as `walsearch dlq replay` does, leaves the others.
	ctx := context.Background()
	dlq, err := lp.p.Bus.JetStream().Stream(ctx, bus.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	first, err := dlq.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(bus.DLQSubject("transform")))
	if err != nil {
		t.Fatal(err)
	}
	if err := dlq.DeleteMsg(ctx, first.Sequence); err != nil {
		t.Fatal(err)
	}
	lp.waitFor(t, 30*time.Second, func(lp *livePipeline) error {
		st, err := lp.statusAs(keyAll)
		if err != nil || st.DLQCount != 6 {
			return fmt.Errorf("dlq_count %d (%v), want 6 after one was removed", st.DLQCount, err)
		}
		return nil
	})
	// Six are left: still degraded.
	if h, body := lp.healthNow(t); degraded(h) != nil {
		t.Fatalf("health with 6 dead letters left: %s", body)
	}

	// Purging the rest, as `walsearch dlq purge --all` does.
	if err := dlq.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	lp.waitFor(t, 30*time.Second, func(lp *livePipeline) error {
		h, body := lp.healthNow(t)
		if h.code != 200 || h.Status != "ok" || !h.Serving || h.Components["dead_letters"].Status != "ok" {
			return fmt.Errorf("health after the purge: %d %s, want ok", h.code, body)
		}
		return nil
	})
	if st, err := lp.statusAs(keyAll); err != nil || st.DLQCount != 0 || len(st.DLQByTable) != 0 {
		t.Errorf("status after the purge: dlq_count %d, dlq_by_table %v (%v)", st.DLQCount, st.DLQByTable, err)
	}
}
