package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// lagMeter measures commit → indexed lag: it inserts a marker row every
// interval and polls the search engine (past the fault injection) for its
// document; the time between the commit returning and the document being
// found is the marker's lag.
type lagMeter struct {
	url    string
	engine http.RoundTripper

	mu      sync.Mutex
	next    int64
	pending map[int64]time.Time // committed, not indexed yet
	lags    []time.Duration
	worst   time.Duration
	worstAt time.Time // when the worst marker was committed
	// indexedCommit is the newest commit time of an indexed marker.
	indexedCommit time.Time
}

func newLagMeter(url string, engine http.RoundTripper) *lagMeter {
	return &lagMeter{url: url, engine: engine, pending: map[int64]time.Time{}}
}

// write inserts a marker every interval until ctx is done.
func (m *lagMeter) write(ctx context.Context, interval time.Duration) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if conn == nil || conn.IsClosed() {
			c, err := pgx.Connect(ctx, m.url)
			if err != nil {
				continue // PostgreSQL is restarting
			}
			conn = c
		}
		m.mu.Lock()
		m.next++
		id := m.next
		m.mu.Unlock()
		if _, err := conn.Exec(ctx, `INSERT INTO markers (id) VALUES ($1)`, id); err != nil {
			continue // not committed, or not known to be: not measured
		}
		m.mu.Lock()
		m.pending[id] = time.Now()
		m.mu.Unlock()
	}
}

// poll looks for the pending markers' documents every interval until ctx
// is done.
func (m *lagMeter) poll(ctx context.Context, interval time.Duration) {
	client := &http.Client{Transport: m.engine, Timeout: 10 * time.Second}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		m.mu.Lock()
		ids := make([]string, 0, len(m.pending))
		for id := range m.pending {
			ids = append(ids, strconv.FormatInt(id, 10))
		}
		m.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		found, err := foundIDs(ctx, client, "markers", ids)
		if err != nil {
			continue // the index does not exist yet
		}
		now := time.Now()
		m.mu.Lock()
		for _, s := range found {
			id, _ := strconv.ParseInt(s, 10, 64)
			at, ok := m.pending[id]
			if !ok {
				continue
			}
			delete(m.pending, id)
			lag := now.Sub(at)
			m.lags = append(m.lags, lag)
			if lag > m.worst {
				m.worst, m.worstAt = lag, at
			}
			if at.After(m.indexedCommit) {
				m.indexedCommit = at
			}
		}
		m.mu.Unlock()
	}
}

// IndexedSince reports whether a marker committed after t is indexed.
func (m *lagMeter) IndexedSince(t time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.indexedCommit.After(t)
}

// LagStats summarises the markers' lags.
type LagStats struct {
	Markers        int
	Median, P99    time.Duration
	Worst          time.Duration
	WorstCommitted time.Time
}

// Stats returns the lags measured so far.
func (m *lagMeter) Stats() LagStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := LagStats{Markers: len(m.lags), Worst: m.worst, WorstCommitted: m.worstAt}
	if len(m.lags) > 0 {
		sorted := slices.Clone(m.lags)
		slices.Sort(sorted)
		s.Median = sorted[len(sorted)/2]
		s.P99 = sorted[len(sorted)*99/100]
	}
	return s
}

// foundIDs returns which of ids index holds (a realtime _mget).
func foundIDs(ctx context.Context, client *http.Client, index string, ids []string) ([]string, error) {
	body, _ := json.Marshal(map[string]any{"ids": ids})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://engine/"+index+"/_mget", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("mget %s: HTTP %d", index, res.StatusCode)
	}
	var r struct {
		Docs []struct {
			ID    string `json:"_id"`
			Found bool   `json:"found"`
		} `json:"docs"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("mget %s: %w", index, err)
	}
	var out []string
	for _, d := range r.Docs {
		if d.Found {
			out = append(out, d.ID)
		}
	}
	return out, nil
}
