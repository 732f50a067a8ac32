package kv

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/shoaldb/shoal/internal/keys"
)

// A key's record lives at keys.Data(key). Its layout is
//
//	offset  size  field
//	0       1     type: 1 string (2 hash, 3 list, 4 set, 5 zset reserved)
//	1       8     expireAt: Unix ms, big-endian; 0 means no expiry
//	9       8     lastWrite: Unix ms of the last command that wrote the record
//	17      ...   payload: for a string, its bytes
//
// Every record with expireAt != 0 has exactly one expiry index entry
// keys.Expiry(key, expireAt) with an empty value, and the index holds no
// other entries. A slot's count record keys.ExpiryCount(slot), where there
// is one, holds the number of the slot's index entries (8 bytes,
// big-endian). All writes go through db.store and db.remove (and the
// sweep's db.dropEntry, for an entry without its record), which keep the
// three in step.
//
// The count is what lets a SET skip reading the record it replaces, the
// costliest part of a SET of a new key (a search of every memtable and
// level): in a slot without index entries no record has an expiry, so
// there is no entry to move and the write is the same whatever the key
// held. The slots of a new cluster's shards start with a count of 0
// (WriteEmptySlots); a slot without one (written by an older version, or
// after FLUSHALL deleted it) gets it from its first such SET
// (db.slotExpires), and writes leave it absent until then.
//
// A record whose expireAt <= Env.NowMs is logically absent (lazy expiry):
// reads skip it, writes that touch it delete it first, and SHOAL.SWEEP
// deletes it through the index (active expiry).

// Record types. The type byte is what WRONGTYPE checks compare.
const (
	typeString byte = 1
	typeHash   byte = 2
	typeList   byte = 3
	typeSet    byte = 4
	typeZSet   byte = 5
)

const headerLen = 17

// ErrCorrupt reports a stored record kv cannot decode.
var ErrCorrupt = errors.New("kv: corrupt record")

// typeName is the name TYPE and SCAN ... TYPE use for a record type.
func typeName(t byte) string {
	switch t {
	case typeString:
		return "string"
	case typeHash:
		return "hash"
	case typeList:
		return "list"
	case typeSet:
		return "set"
	case typeZSet:
		return "zset"
	}
	return "none"
}

type record struct {
	typ       byte
	expireAt  int64
	lastWrite int64
	payload   []byte
}

// expired reports whether the record is logically absent at nowMs.
func (r *record) expired(nowMs int64) bool {
	return r.expireAt != 0 && r.expireAt <= nowMs
}

func (r *record) encode() []byte {
	b := make([]byte, headerLen+len(r.payload))
	b[0] = r.typ
	binary.BigEndian.PutUint64(b[1:], uint64(r.expireAt))
	binary.BigEndian.PutUint64(b[9:], uint64(r.lastWrite))
	copy(b[headerLen:], r.payload)
	return b
}

// decodeRecord parses v; the payload aliases v.
func decodeRecord(v []byte) (record, error) {
	if len(v) < headerLen || v[0] < typeString || v[0] > typeZSet {
		return record{}, ErrCorrupt
	}
	return record{
		typ:       v[0],
		expireAt:  int64(binary.BigEndian.Uint64(v[1:])),
		lastWrite: int64(binary.BigEndian.Uint64(v[9:])),
		payload:   v[headerLen:],
	}, nil
}

// db is one command's view of the shard: its data, its environment and,
// when the command runs as a write, the batch to write to.
type db struct {
	r   Reader
	w   Writer // nil when serving Read
	env Env
}

// lookup returns the live record of key. A record that has expired is
// reported absent and, when d can write, deleted together with its index
// entry.
func (d *db) lookup(key []byte) (record, bool, error) {
	v, ok, err := d.r.Get(keys.Data(key))
	if err != nil || !ok {
		return record{}, false, err
	}
	rec, err := decodeRecord(v)
	if err != nil {
		return record{}, false, fmt.Errorf("kv: key %q: %w", key, err)
	}
	if rec.expired(d.env.NowMs) {
		if d.w != nil {
			if err := d.remove(key, rec.expireAt); err != nil {
				return record{}, false, err
			}
		}
		return record{}, false, nil
	}
	return rec, true, nil
}

// store writes rec as key's record, stamping its last-write time, and moves
// the expiry index entry from oldExpireAt (the expireAt of the record it
// replaces, 0 if none) to rec.expireAt. A record that would already be
// expired is not written: the key is removed instead.
func (d *db) store(key []byte, oldExpireAt int64, rec record) error {
	if rec.expired(d.env.NowMs) {
		return d.remove(key, oldExpireAt)
	}
	rec.lastWrite = d.env.NowMs
	if err := d.w.Set(keys.Data(key), rec.encode()); err != nil {
		return err
	}
	if oldExpireAt == rec.expireAt {
		return nil
	}
	var entries int64
	if oldExpireAt != 0 {
		if err := d.w.Delete(keys.Expiry(key, oldExpireAt)); err != nil {
			return err
		}
		entries--
	}
	if rec.expireAt != 0 {
		if err := d.w.Set(keys.Expiry(key, rec.expireAt), nil); err != nil {
			return err
		}
		entries++
		if d.env.Effects != nil {
			d.env.Effects.ExpiryAdded = true
		}
	}
	return d.countExpiries(keys.Slot(key), entries)
}

// remove deletes key's record and, if it had one, its expiry index entry.
func (d *db) remove(key []byte, expireAt int64) error {
	if err := d.w.Delete(keys.Data(key)); err != nil {
		return err
	}
	if expireAt != 0 {
		if err := d.w.Delete(keys.Expiry(key, expireAt)); err != nil {
			return err
		}
		return d.countExpiries(keys.Slot(key), -1)
	}
	return nil
}

// countExpiries adds delta to slot's count of index entries, if it has one.
func (d *db) countExpiries(slot int, delta int64) error {
	if delta == 0 {
		return nil
	}
	k := keys.ExpiryCount(slot)
	n, ok, err := d.expiryCount(k)
	if err != nil || !ok {
		return err
	}
	return d.w.Set(k, binary.BigEndian.AppendUint64(nil, uint64(int64(n)+delta)))
}

// expiryCount reads the count record k.
func (d *db) expiryCount(k []byte) (n uint64, ok bool, err error) {
	v, ok, err := d.r.Get(k)
	if err != nil || !ok {
		return 0, false, err
	}
	if len(v) != 8 {
		return 0, false, fmt.Errorf("kv: expiry count %q: %w", k, ErrCorrupt)
	}
	return binary.BigEndian.Uint64(v), true, nil
}

// WriteEmptySlots writes what the slots [first, last] of a new, empty
// shard start with: a count of no expiry index entries each, so that their
// first writes need not count them.
func WriteEmptySlots(w Writer, first, last int) error {
	zero := make([]byte, 8)
	for slot := max(first, 0); slot <= min(last, keys.SlotCount-1); slot++ {
		if err := w.Set(keys.ExpiryCount(slot), zero); err != nil {
			return err
		}
	}
	return nil
}

// slotExpires reports whether slot holds a key with an expiry. The first
// call for a slot without a count counts its index entries and writes the
// count, which writes keep from then on.
func (d *db) slotExpires(slot int) (bool, error) {
	k := keys.ExpiryCount(slot)
	n, ok, err := d.expiryCount(k)
	if err != nil || ok {
		return n != 0, err
	}
	lo, hi := keys.ExpiryIndexSpan(slot)
	err = d.r.Iterate(lo, hi, func(_, _ []byte) bool {
		n++
		return true
	})
	if err != nil {
		return false, err
	}
	return n != 0, d.w.Set(k, binary.BigEndian.AppendUint64(nil, n))
}

// slots returns the shard's slot range clamped to valid slots; ok is false
// if it is empty.
func (d *db) slots() (first, last int, ok bool) {
	first = max(d.env.FirstSlot, 0)
	last = min(d.env.LastSlot, keys.SlotCount-1)
	return first, last, first <= last
}

// ownsSlot reports whether slot is in the shard's range.
func (d *db) ownsSlot(slot int) bool {
	first, last, ok := d.slots()
	return ok && slot >= first && slot <= last
}

// scanLive calls fn for every live record in the Pebble span [lo, hi),
// skipping expiry index entries and expired records, until fn returns
// false. key and rec alias the iterator's buffers: copy what you keep.
func (d *db) scanLive(lo, hi []byte, fn func(key []byte, rec record) bool) error {
	var derr error
	err := d.r.Iterate(lo, hi, func(k, v []byte) bool {
		if !keys.IsData(k) {
			return true
		}
		rec, err := decodeRecord(v)
		if err != nil {
			derr = fmt.Errorf("kv: key %q: %w", keys.DataUserKey(k), err)
			return false
		}
		if rec.expired(d.env.NowMs) {
			return true
		}
		return fn(keys.DataUserKey(k), rec)
	})
	if err != nil {
		return err
	}
	return derr
}
