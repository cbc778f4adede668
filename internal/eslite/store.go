package eslite

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The store keeps everything eslite must not lose in one bbolt file:
//
//	meta/cluster_uuid              the cluster uuid
//	indices/<name>                 indexMeta as JSON
//	docs-<uuid>/<id>               the entry of each id (document or tombstone)
//	seq/<uuid>                     the last sequence number assigned
//
// Every acknowledged write was committed (and fsynced) first, one
// transaction per request, as Elasticsearch's default request durability.
type store struct {
	db *bolt.DB
}

var (
	bucketMeta    = []byte("meta")
	bucketIndices = []byte("indices")
	bucketSeq     = []byte("seq")
)

// indexMeta is the persisted metadata of one index.
type indexMeta struct {
	Name     string               `json:"name"`
	UUID     string               `json:"uuid"`
	Created  int64                `json:"created"`
	Settings settings             `json:"settings"`
	Mapping  json.RawMessage      `json:"mapping,omitempty"`
	Aliases  map[string]aliasMeta `json:"aliases,omitempty"`
}

func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, "eslite.db"), 0o644, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketIndices, bucketSeq} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init store: %w", err)
	}
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

func docsBucket(uuid string) []byte { return []byte("docs-" + uuid) }

// clusterUUID returns the stored cluster uuid, storing fresh when there is
// none yet.
func (s *store) clusterUUID(fresh string) (string, error) {
	var out string
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta)
		if v := b.Get([]byte("cluster_uuid")); v != nil {
			out = string(v)
			return nil
		}
		out = fresh
		return b.Put([]byte("cluster_uuid"), []byte(fresh))
	})
	return out, err
}

func (s *store) loadMetas() ([]indexMeta, error) {
	var out []indexMeta
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketIndices).ForEach(func(k, v []byte) error {
			var m indexMeta
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("decode metadata of %s: %w", k, err)
			}
			out = append(out, m)
			return nil
		})
	})
	return out, err
}

// putMetas stores index metadata atomically (alias actions span indices).
func (s *store) putMetas(ms ...indexMeta) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, m := range ms {
			raw, err := json.Marshal(m)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketIndices).Put([]byte(m.Name), raw); err != nil {
				return err
			}
			if _, err := tx.CreateBucketIfNotExists(docsBucket(m.UUID)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *store) deleteIndex(name, uuid string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketIndices).Delete([]byte(name)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketSeq).Delete([]byte(uuid)); err != nil {
			return err
		}
		if err := tx.DeleteBucket(docsBucket(uuid)); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
			return err
		}
		return nil
	})
}

// commit persists one request's changes, the index's last sequence number
// and, when dynamic mapping changed it, the new mapping.
func (s *store) commit(uuid string, changes []change, seqNo int64, mapping []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(docsBucket(uuid))
		if err != nil {
			return err
		}
		for _, c := range changes {
			if err := b.Put([]byte(c.id), encodeEntry(c.entry)); err != nil {
				return err
			}
		}
		var seq [8]byte
		binary.BigEndian.PutUint64(seq[:], uint64(seqNo))
		if err := tx.Bucket(bucketSeq).Put([]byte(uuid), seq[:]); err != nil {
			return err
		}
		if mapping == nil {
			return nil
		}
		return updateMapping(tx, uuid, mapping)
	})
}

func updateMapping(tx *bolt.Tx, uuid string, mapping []byte) error {
	ib := tx.Bucket(bucketIndices)
	c := ib.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var m indexMeta
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		if m.UUID != uuid {
			continue
		}
		m.Mapping = mapping
		raw, err := json.Marshal(m)
		if err != nil {
			return err
		}
		return ib.Put(k, raw)
	}
	return nil
}

func (s *store) prune(uuid string, ids []string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(docsBucket(uuid))
		if b == nil {
			return nil
		}
		for _, id := range ids {
			if err := b.Delete([]byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
}

// loadDocs calls fn for every stored entry of the index and returns its last
// assigned sequence number (-1 when none).
func (s *store) loadDocs(uuid string, fn func(id string, e *docEntry)) (int64, error) {
	seqNo := int64(-1)
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketSeq).Get([]byte(uuid)); len(v) == 8 {
			seqNo = int64(binary.BigEndian.Uint64(v))
		}
		b := tx.Bucket(docsBucket(uuid))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			e, err := decodeEntry(v)
			if err != nil {
				return fmt.Errorf("decode entry %q: %w", k, err)
			}
			fn(string(k), e)
			return nil
		})
	})
	return seqNo, err
}

// source reads the stored _source of a live document.
func (s *store) source(uuid, id string) ([]byte, error) {
	var src []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(docsBucket(uuid))
		if b == nil {
			return fmt.Errorf("read source of %q: %w", id, errCorruptEntry)
		}
		v := b.Get([]byte(id))
		if v == nil {
			return fmt.Errorf("read source of %q: not in the store", id)
		}
		e, err := decodeEntry(v)
		if err != nil {
			return fmt.Errorf("read source of %q: %w", id, err)
		}
		src = e.source
		return nil
	})
	return src, err
}

// encodeEntry: flags byte, then varints version, seq_no, deleted-at, then
// the source bytes.
func encodeEntry(e *docEntry) []byte {
	buf := make([]byte, 1, 1+3*binary.MaxVarintLen64+len(e.source))
	if e.deleted {
		buf[0] = 1
	}
	buf = binary.AppendVarint(buf, e.version)
	buf = binary.AppendVarint(buf, e.seqNo)
	buf = binary.AppendVarint(buf, e.deletedAt)
	return append(buf, e.source...)
}

var errCorruptEntry = errors.New("corrupt entry")

func decodeEntry(b []byte) (*docEntry, error) {
	if len(b) < 1 {
		return nil, errCorruptEntry
	}
	e := &docEntry{deleted: b[0]&1 == 1}
	rest := b[1:]
	for _, dst := range []*int64{&e.version, &e.seqNo, &e.deletedAt} {
		v, n := binary.Varint(rest)
		if n <= 0 {
			return nil, errCorruptEntry
		}
		*dst = v
		rest = rest[n:]
	}
	if !e.deleted {
		e.source = append([]byte(nil), rest...)
	}
	return e, nil
}
