package documents

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/walsearch/walsearch/bus"
)

// work is what one round asks to rebuild.
type work struct {
	byPlan     map[*compiled]*planWork
	xids       map[uint32]bool // transactions the snapshot must see
	commitTime time.Time       // the latest change's
}

// note records what every rebuild of the round must reflect.
func (w *work) note(c *bus.Change) {
	if c.Xid != 0 {
		if w.xids == nil {
			w.xids = map[uint32]bool{}
		}
		w.xids[c.Xid] = true
	}
	if c.CommitTime.After(w.commitTime) {
		w.commitTime = c.CommitTime
	}
}

func (w *work) plan(c *compiled) *planWork {
	pw := w.byPlan[c]
	if pw == nil {
		pw = &planWork{root: c.plan.Root.Table, keys: map[string][]bus.Column{}, text: map[string][]string{},
			lookups: map[*entry][][]string{}, seen: map[*entry]map[string]bool{}}
		w.byPlan[c] = pw
	}
	return pw
}

// planWork is the roots of one definition to rebuild, coalesced: each root
// once, in the order the round first asked for it.
type planWork struct {
	root  *TableInfo
	order []string                // root document ids
	keys  map[string][]bus.Column // by id
	text  map[string][]string     // key values as text, by id
	// lookups are the changed rows whose roots a query finds: the values
	// of the entry's columns, as text, each tuple once.
	lookups map[*entry][][]string
	seen    map[*entry]map[string]bool
	// truncate: the root table was truncated; all: a table below it was,
	// so every root is rebuilt.
	truncate, all bool
}

// addRoot asks for the root with key to be rebuilt.
func (pw *planWork) addRoot(key []bus.Column) {
	text := make([]string, len(key))
	for i, c := range key {
		s, ok := textOf(c.Value)
		if !ok {
			return
		}
		text[i] = s
	}
	id := bus.DocumentID(key)
	if _, ok := pw.keys[id]; ok {
		return
	}
	pw.order = append(pw.order, id)
	pw.keys[id], pw.text[id] = key, text
}

// add records what change c of the table of t asks for.
func (pw *planWork) add(t target, c *bus.Change) {
	e := t.e
	switch c.Op {
	case bus.OpTruncate:
		if e.root {
			pw.truncate = true
		} else {
			pw.all = true
		}
		return
	case bus.OpRead:
		// A snapshot or backfill of the root rebuilds its documents; the
		// rows of the tables below it are read by those rebuilds.
		if !e.root {
			return
		}
	}
	// The row's values before and after the change: a row that moved to
	// another parent affects both documents.
	var rows []map[string]any
	if c.Row != nil {
		rows = append(rows, c.Row)
	}
	if c.Old != nil {
		rows = append(rows, c.Old)
	}
	if len(c.Key) > 0 {
		key := make(map[string]any, len(c.Key))
		for _, k := range c.Key {
			key[k.Name] = k.Value
		}
		rows = append(rows, key)
	}
	for _, row := range rows {
		vals, ok := values(row, e.cols)
		if !ok {
			continue
		}
		switch {
		case e.root || e.direct:
			key := make([]bus.Column, len(vals))
			for i, n := range pw.root.Key {
				key[i] = bus.Column{Name: n, Value: vals[i]}
			}
			pw.addRoot(key)
		default:
			text := make([]string, len(vals))
			for i, v := range vals {
				if text[i], ok = textOf(v); !ok {
					break
				}
			}
			if !ok {
				continue
			}
			id := strings.Join(text, "\x00")
			if pw.seen[e] == nil {
				pw.seen[e] = map[string]bool{}
			}
			if !pw.seen[e][id] {
				pw.seen[e][id] = true
				pw.lookups[e] = append(pw.lookups[e], text)
			}
		}
	}
}

// values takes cols from row; false when one is missing or null (a row
// that references nothing leads to no document).
func values(row map[string]any, cols []string) ([]any, bool) {
	out := make([]any, len(cols))
	for i, c := range cols {
		v, ok := row[c]
		if !ok || v == nil {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

// textOf is a key value as PostgreSQL reads it back as text.
func textOf(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case int:
		return strconv.Itoa(x), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", false
	}
	return string(b), true
}
