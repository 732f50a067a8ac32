package kv

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/shoaldb/shoal/internal/keys"
)

// CheckIndex verifies what record.go promises of the user data of slots
// [first, last] in r: every record decodes and sits in its key's slot,
// every record with an expiry has exactly one index entry, at that time,
// every index entry belongs to such a record, and a slot's count record,
// where there is one, counts the slot's entries. It returns the first
// violation it finds, for tests and consistency checks.
func CheckIndex(r Reader, first, last int) error {
	records := map[string]int64{} // user key -> expireAt, for records with one
	entries := map[string][]int64{}
	counts := map[int]uint64{}      // slot -> its count record
	slotEntries := map[int]uint64{} // slot -> its index entries
	var bad error
	lo, hi := keys.SlotSpan(first, last)
	err := r.Iterate(lo, hi, func(k, v []byte) bool {
		if len(k) < 4 {
			bad = fmt.Errorf("kv: unexpected key %q in the user span", k)
			return false
		}
		slot := int(binary.BigEndian.Uint16(k[1:3]))
		switch {
		case keys.IsExpiryCount(k):
			if len(v) != 8 {
				bad = fmt.Errorf("kv: count record %q = %q, want 8 bytes", k, v)
				return false
			}
			counts[slot] = binary.BigEndian.Uint64(v)
		case keys.IsData(k):
			rec, err := decodeRecord(v)
			if err != nil {
				bad = fmt.Errorf("kv: record %q: %w", k, err)
				return false
			}
			if keys.Slot(keys.DataUserKey(k)) != slot {
				bad = fmt.Errorf("kv: record %q stored under the wrong slot", k)
				return false
			}
			if rec.expireAt != 0 {
				records[string(keys.DataUserKey(k))] = rec.expireAt
			}
		case len(k) >= 12 && k[3] == 'x':
			if len(v) != 0 {
				bad = fmt.Errorf("kv: index entry %q has value %q, want empty", k, v)
				return false
			}
			key, at := keys.DecodeExpiry(k)
			entries[string(key)] = append(entries[string(key)], at)
			slotEntries[slot]++
		default:
			bad = fmt.Errorf("kv: unexpected key %q in the user span", k)
			return false
		}
		return true
	})
	if err != nil {
		return err
	}
	if bad != nil {
		return bad
	}
	for key, at := range records {
		if e := entries[key]; len(e) != 1 || e[0] != at {
			return fmt.Errorf("kv: key %q expires at %d but its index entries are %v", key, at, e)
		}
	}
	for key, e := range entries {
		if _, ok := records[key]; !ok {
			return fmt.Errorf("kv: index entries %v for key %q, which has no expiry", e, key)
		}
	}
	for _, slot := range slices.Sorted(maps.Keys(counts)) {
		if counts[slot] != slotEntries[slot] {
			return fmt.Errorf("kv: slot %d counts %d index entries, has %d", slot, counts[slot], slotEntries[slot])
		}
	}
	return nil
}
