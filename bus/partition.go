package bus

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Partitions: with Config.Partitions P above 1, every change and document
// subject carries a trailing partition token k in [0, P): a document's
// changes all land in one partition (k is a hash of the primary key), and
// each partition is read by its own durable consumer, held by one process
// at a time, so that P processes can share the work while each document's
// changes stay in order. With P = 1 subjects carry no partition token.
const (
	// DefaultPartitions keeps one partition: subjects, consumers and
	// stages exactly as without partitioning.
	DefaultPartitions = 1
	// MaxPartitions bounds Config.Partitions.
	MaxPartitions = 64
)

// PartitionsKey is the state bucket key where the partition count of a
// deployment is recorded at its first start; every process must agree.
const PartitionsKey = "bus.partitions"

// ErrPartitionsMismatch means a process was started with another partition
// count than the deployment's.
var ErrPartitionsMismatch = errors.New("nats.partitions differs from the deployment's")

// PartitionOf returns the partition of the document whose primary key is
// key: FNV-1a over its document id (DocumentID), modulo partitions. The
// document id is what the search engine stores, so a row read by a
// snapshot and the same row streamed later hash alike.
func PartitionOf(key []Column, partitions int) int {
	if partitions <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(DocumentID(key)))
	return int(h.Sum32() % uint32(partitions))
}

// PartitionChangeSubject is ChangeSubject in partition k of partitions:
// with more than one partition the partition is a trailing token.
func PartitionChangeSubject(schema, table string, k, partitions int) string {
	if partitions <= 1 {
		return ChangeSubject(schema, table)
	}
	return ChangeSubject(schema, table) + "." + strconv.Itoa(k)
}

// PartitionDocSubject is DocSubject in partition k of partitions.
func PartitionDocSubject(index string, k, partitions int) string {
	if partitions <= 1 {
		return DocSubject(index)
	}
	return DocSubject(index) + "." + strconv.Itoa(k)
}

// ChangeFilter returns the subjects the transform of partition k reads.
// Partition 0 also reads unpartitioned subjects, so that nothing published
// on them (by a tool, or a replayed dead letter of an unpartitioned
// deployment) is left unread.
func ChangeFilter(k, partitions int) []string {
	if partitions <= 1 {
		return nil
	}
	f := []string{ChangePrefix + "*.*." + strconv.Itoa(k)}
	if k == 0 {
		f = append(f, ChangePrefix+"*.*")
	}
	return f
}

// DocFilter returns the subjects the sink of partition k reads (see
// ChangeFilter).
func DocFilter(k, partitions int) []string {
	if partitions <= 1 {
		return nil
	}
	f := []string{DocPrefix + "*." + strconv.Itoa(k)}
	if k == 0 {
		f = append(f, DocPrefix+"*")
	}
	return f
}

// PartitionName suffixes name (a consumer, a lease or a state key) with
// partition k: unchanged with one partition, "name-k" or "name.k" (sep)
// otherwise.
func PartitionName(name, sep string, k, partitions int) string {
	if partitions <= 1 {
		return name
	}
	return name + sep + strconv.Itoa(k)
}

// cutPartition removes a trailing partition token from the tokens after a
// subject prefix: "a.b.3" with want 2 gives "a.b".
func cutPartition(rest string, want int) (string, bool) {
	n := strings.Count(rest, ".") + 1
	switch n {
	case want:
		return rest, true
	case want + 1:
		i := strings.LastIndexByte(rest, '.')
		if k, err := strconv.Atoi(rest[i+1:]); err != nil || k < 0 || k >= MaxPartitions {
			return "", false
		}
		return rest[:i], true
	}
	return "", false
}

// AgreePartitions records partitions as the deployment's partition count
// when none is recorded yet, and fails with ErrPartitionsMismatch when
// another one is: processes that disagree would publish and read different
// subjects.
func (b *Bus) AgreePartitions(ctx context.Context, partitions int) error {
	want := strconv.Itoa(partitions)
	for {
		e, err := b.state.kv.Get(ctx, PartitionsKey)
		if err == nil {
			got := string(e.Value())
			if got == want {
				return nil
			}
			return fmt.Errorf("%w: this process has nats.partitions %s, the deployment on this NATS was started with %s "+
				"(state key %s in %s): set nats.partitions to %s in every process; to change the count, stop the captures, "+
				"let the change and document streams empty, stop every process, delete the old count's consumers "+
				"(transform and sink, or transform-<k> and sink-<k> for each partition), delete the key (nats kv del %s %s) "+
				"and start them all with the new value (docs/scale-out.md, \"Partitions: transform and sink processes that share the work\")",
				ErrPartitionsMismatch, want, got, PartitionsKey, StateBucket, got, StateBucket, PartitionsKey)
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted) {
			return fmt.Errorf("read %s: %w", PartitionsKey, err)
		}
		if _, err := b.state.kv.Create(ctx, PartitionsKey, []byte(want)); err == nil {
			return nil
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("record %s: %w", PartitionsKey, err)
		}
		// Another process recorded it first: compare with its value.
	}
}

// Partitions is the partition count this bus publishes and reads with.
func (b *Bus) Partitions() int { return max(1, b.cfg.Partitions) }

// AckWait is how long a delivered message may stay unacknowledged.
func (b *Bus) AckWait() time.Duration { return b.cfg.AckWait }
