package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/bus/bustest"
)

func keyOf(id int) []bus.Column {
	return []bus.Column{{Name: "id", Value: json.Number(strconv.Itoa(id))}}
}

// TestPartitionedMessagesKeepEachKeyInOnePartition: a transaction's run of
// one table is split by the partition of each key, in order; a key
// change's delete goes with its insert (the new key's partition);
// truncates go to every partition in their place; message ids are
// distinct.
func TestPartitionedMessagesKeepEachKeyInOnePartition(t *testing.T) {
	t.Parallel()
	const parts = 4
	lsn := bus.LSN(0x16B3748)
	var evs []*bus.Change
	pos := uint64(0)
	add := func(c *bus.Change) {
		c.Schema, c.Table, c.LSN, c.Pos = "public", "users", lsn, pos
		pos++
		evs = append(evs, c)
	}
	for i := range 20 {
		add(&bus.Change{Op: bus.OpInsert, Key: keyOf(i), Row: map[string]any{"id": i}})
	}
	add(&bus.Change{Op: bus.OpTruncate})
	// Key change 3 -> 1000: the delete of 3 goes with the insert of 1000.
	add(&bus.Change{Op: bus.OpDelete, Key: keyOf(3)})
	add(&bus.Change{Op: bus.OpInsert, Key: keyOf(1000), From: keyOf(3), Row: map[string]any{"id": 1000}})
	for i := range 5 {
		add(&bus.Change{Op: bus.OpUpdate, Key: keyOf(i), Row: map[string]any{"id": i}})
	}
	msgs, err := bus.PartitionedMessages(evs, parts)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	seen := map[uint64]int{} // position -> times seen
	truncates := 0
	for _, m := range msgs {
		if ids[m.ID] {
			t.Fatalf("message id %s used twice", m.ID)
		}
		ids[m.ID] = true
		i := strings.LastIndexByte(m.Subject, '.')
		k, err := strconv.Atoi(m.Subject[i+1:])
		if err != nil || k < 0 || k >= parts || !strings.HasSuffix(m.ID, "@"+strconv.Itoa(k)) {
			t.Fatalf("message %s on %s: no partition token matching its id", m.ID, m.Subject)
		}
		if s, tb, ok := bus.ParseChangeSubject(m.Subject); !ok || s != "public" || tb != "users" {
			t.Fatalf("ParseChangeSubject(%s) = %s %s %v", m.Subject, s, tb, ok)
		}
		cs, err := bus.DecodeChanges(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		last := int64(-1)
		for j, c := range cs {
			if int64(c.Pos) <= last {
				t.Fatalf("partition %d: position %d after %d: out of order", k, c.Pos, last)
			}
			last = int64(c.Pos)
			seen[c.Pos]++
			switch {
			case c.Op == bus.OpTruncate:
				truncates++
			case c.Op == bus.OpDelete && j+1 < len(cs) && len(cs[j+1].From) > 0:
				if want := bus.PartitionOf(cs[j+1].Key, parts); want != k {
					t.Fatalf("the key change's delete is in partition %d, its insert's is %d", k, want)
				}
			case c.Op == bus.OpDelete:
				t.Fatalf("the key change's delete travels without its insert")
			default:
				if want := bus.PartitionOf(c.Key, parts); want != k {
					t.Fatalf("key %s in partition %d, want %d", bus.DocumentID(c.Key), k, want)
				}
			}
		}
	}
	if truncates != parts {
		t.Fatalf("the truncate reached %d partitions, want %d", truncates, parts)
	}
	for _, c := range evs {
		if want := 1; c.Op != bus.OpTruncate && seen[c.Pos] != want {
			t.Fatalf("change at position %d published %d times", c.Pos, seen[c.Pos])
		}
	}
}

// TestReadBatchesSplitByPartitionLikeStreamedChanges: a snapshot row goes
// to the partition its streamed changes go to.
func TestReadBatchesSplitByPartitionLikeStreamedChanges(t *testing.T) {
	t.Parallel()
	const parts = 3
	b := bus.NewReadBatches("public", "users", []string{"id"}, 7, parts)
	var msgs []bus.Message
	for i := range 100 {
		row := []byte(`{"id":` + strconv.Itoa(i) + `}`)
		if m, full := b.Add(uint64(i), row, func() []bus.Column { return keyOf(i) }); full {
			msgs = append(msgs, m)
		}
	}
	for {
		m, ok := b.Take()
		if !ok {
			break
		}
		msgs = append(msgs, m)
	}
	rows := 0
	for _, m := range msgs {
		cs, err := bus.DecodeChanges(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			rows++
			if want := bus.PartitionChangeSubject("public", "users", bus.PartitionOf(c.Key, parts), parts); m.Subject != want {
				t.Fatalf("row %s on %s, want %s", bus.DocumentID(c.Key), m.Subject, want)
			}
		}
	}
	if rows != 100 {
		t.Fatalf("%d rows in the messages, want 100", rows)
	}
}

// TestUnpartitionedSubjectsAreUnchanged: with one partition subjects,
// names and ids are those of an unpartitioned deployment.
func TestUnpartitionedSubjectsAreUnchanged(t *testing.T) {
	t.Parallel()
	if got := bus.PartitionChangeSubject("public", "users", 0, 1); got != bus.ChangeSubject("public", "users") {
		t.Fatal(got)
	}
	if got := bus.PartitionDocSubject("users", 0, 1); got != bus.DocSubject("users") {
		t.Fatal(got)
	}
	if got := bus.PartitionName("transform", "-", 0, 1); got != "transform" {
		t.Fatal(got)
	}
	if bus.ChangeFilter(0, 1) != nil || bus.DocFilter(0, 1) != nil {
		t.Fatal("a filter with one partition")
	}
	if _, _, ok := bus.ParseChangeSubject("walsearch.change.public.users.x"); ok {
		t.Fatal("a non-numeric fourth token parsed as a partition")
	}
}

// TestProcessesMustAgreeOnPartitions: the first process records its
// partition count; one started with another is refused, saying what to do.
func TestProcessesMustAgreeOnPartitions(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t)
	ctx := context.Background()
	if err := b.AgreePartitions(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if err := b.AgreePartitions(ctx, 4); err != nil {
		t.Fatalf("the same count refused: %v", err)
	}
	err := b.AgreePartitions(ctx, 2)
	if !errors.Is(err, bus.ErrPartitionsMismatch) || !strings.Contains(err.Error(), "set nats.partitions to 4") {
		t.Fatalf("a different count: %v, want ErrPartitionsMismatch saying which value to set", err)
	}
}
