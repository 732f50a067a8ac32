// Package keys maps Redis keys to hash slots and defines every key shoal
// writes to Pebble. All functions are pure.
//
// Layout of the Pebble keyspace:
//
//	'n' "ident"                          node identity (node id, cluster id)
//	'r' shard(8) 'h'                     raft hard state of a replica
//	'r' shard(8) 'a'                     applied state (index, term, conf state)
//	'r' shard(8) 't'                     truncated state (index, term of last compacted entry)
//	'r' shard(8) 'd'                     replica descriptor (what the shard is)
//	'r' shard(8) 'l' index(8)            raft log entry
//	'm' ...                              meta shard state
//	'u' slot(2) 'c'                      number of the slot's expiry index entries
//	'u' slot(2) 'd' userkey              user data record
//	'u' slot(2) 'x' expireAt(8) userkey  expiry index entry (empty value)
//
// User data is slot-first, so a shard owning slots [lo, hi] owns the single
// contiguous span ['u' lo, 'u' hi+1).
package keys

import (
	"encoding/binary"
)

// SlotCount is the number of Redis Cluster hash slots.
const SlotCount = 16384

const (
	prefixIdent = 'n'
	prefixRaft  = 'r'
	prefixMeta  = 'm'
	prefixUser  = 'u'

	kindExpiryCount = 'c'
	kindData        = 'd'
	kindExpiry      = 'x'
)

// Slot returns the Redis Cluster hash slot of key, honouring {hash tags}:
// if key contains '{' followed later by '}' with at least one byte between,
// only the bytes between the first '{' and the next '}' are hashed.
func Slot(key []byte) int {
	for i, c := range key {
		if c != '{' {
			continue
		}
		for j := i + 1; j < len(key); j++ {
			if key[j] == '}' {
				if j > i+1 {
					key = key[i+1 : j]
				}
				return int(crc16(key)) & (SlotCount - 1)
			}
		}
		break
	}
	return int(crc16(key)) & (SlotCount - 1)
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0), the checksum
// Redis Cluster uses for hash slots, a byte at a time from crc16Table.
func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^c]
	}
	return crc
}

// crc16Table[i] is the CRC of the single byte i.
var crc16Table = func() (t [256]uint16) {
	for i := range t {
		t[i] = crc16Bitwise([]byte{byte(i)})
	}
	return t
}()

// crc16Bitwise computes the same checksum a bit at a time: the definition
// the table is built from.
func crc16Bitwise(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// Ident is the key of the node identity record.
func Ident() []byte { return []byte{prefixIdent, 'i', 'd', 'e', 'n', 't'} }

func raftKey(shard uint64, kind byte, extra int) []byte {
	return appendRaftKey(make([]byte, 0, 10+extra), shard, kind)
}

func appendRaftKey(dst []byte, shard uint64, kind byte) []byte {
	dst = append(dst, prefixRaft)
	dst = binary.BigEndian.AppendUint64(dst, shard)
	return append(dst, kind)
}

// HardState is the key of a replica's raft hard state.
func HardState(shard uint64) []byte { return raftKey(shard, 'h', 0) }

// AppliedState is the key of a replica's applied state.
func AppliedState(shard uint64) []byte { return raftKey(shard, 'a', 0) }

// TruncatedState is the key of a replica's log truncation point.
func TruncatedState(shard uint64) []byte { return raftKey(shard, 't', 0) }

// Descriptor is the key of a replica's local shard descriptor.
func Descriptor(shard uint64) []byte { return raftKey(shard, 'd', 0) }

// LocalReplicaID is the key of the raft id of this node's replica of
// shard (internal/replicaid). Absent in data written before replica ids:
// the id is then the node's.
func LocalReplicaID(shard uint64) []byte { return raftKey(shard, 'i', 0) }

// Tombstone is the key of the highest raft id of a replica of shard this
// node removed: a message for that replica, or an earlier one, is dropped.
func Tombstone(shard uint64) []byte { return raftKey(shard, 'z', 0) }

// LogEntry is the key of raft log entry index of shard.
func LogEntry(shard, index uint64) []byte {
	return AppendLogEntry(make([]byte, 0, 18), shard, index)
}

// AppendLogEntry appends LogEntry(shard, index) to dst.
func AppendLogEntry(dst []byte, shard, index uint64) []byte {
	return binary.BigEndian.AppendUint64(appendRaftKey(dst, shard, 'l'), index)
}

// LogIndex decodes the index from a LogEntry key.
func LogIndex(key []byte) uint64 { return binary.BigEndian.Uint64(key[10:]) }

// LogSpan returns the span [lo, hi) holding shard's log entries.
func LogSpan(shard uint64) (lo, hi []byte) {
	return LogEntry(shard, 0), raftKey(shard, 'l'+1, 0)
}

// ReplicaSpan returns the span [lo, hi) of all raft keys of shard.
func ReplicaSpan(shard uint64) (lo, hi []byte) {
	lo = raftKey(shard, 0, 0)[:9]
	hi = raftKey(shard+1, 0, 0)[:9]
	return lo, hi
}

// ReplicaShard decodes the shard id from any raft key.
func ReplicaShard(key []byte) uint64 { return binary.BigEndian.Uint64(key[1:9]) }

// RaftSpan is the span of all replicas' raft keys.
func RaftSpan() (lo, hi []byte) { return []byte{prefixRaft}, []byte{prefixRaft + 1} }

// UserSpan is the span [lo, hi) of all user data: every slot's records
// and indexes.
func UserSpan() (lo, hi []byte) { return []byte{prefixUser}, []byte{prefixUser + 1} }

// Meta returns the key of meta shard record name.
func Meta(name string) []byte { return append([]byte{prefixMeta}, name...) }

// MetaSpan is the span [lo, hi) of the meta shard's state.
func MetaSpan() (lo, hi []byte) { return []byte{prefixMeta}, []byte{prefixMeta + 1} }

func userKey(slot int, kind byte, extra int) []byte {
	k := make([]byte, 4, 4+extra)
	k[0] = prefixUser
	binary.BigEndian.PutUint16(k[1:], uint16(slot))
	k[3] = kind
	return k
}

// Data is the Pebble key of user key's record.
func Data(key []byte) []byte {
	return append(userKey(Slot(key), kindData, len(key)), key...)
}

// DataUserKey returns the user key inside a Data key.
func DataUserKey(k []byte) []byte { return k[4:] }

// IsData reports whether k is a Data key.
func IsData(k []byte) bool { return len(k) >= 4 && k[0] == prefixUser && k[3] == kindData }

// DataSlotPrefix is the span [lo, hi) of all Data keys in slot.
func DataSlotPrefix(slot int) (lo, hi []byte) {
	return userKey(slot, kindData, 0), userKey(slot, kindData+1, 0)
}

// Expiry is the expiry index key of key expiring at expireAtMs.
func Expiry(key []byte, expireAtMs int64) []byte {
	k := userKey(Slot(key), kindExpiry, 8+len(key))
	k = binary.BigEndian.AppendUint64(k, uint64(expireAtMs))
	return append(k, key...)
}

// ExpiryCount is the key of the number of slot's expiry index entries,
// which package kv keeps once it has counted them.
func ExpiryCount(slot int) []byte { return userKey(slot, kindExpiryCount, 0) }

// IsExpiryCount reports whether k is an ExpiryCount key.
func IsExpiryCount(k []byte) bool {
	return len(k) == 4 && k[0] == prefixUser && k[3] == kindExpiryCount
}

// ExpirySlotSpan is the span [lo, hi) of slot's expiry index entries that
// expire at or before nowMs.
func ExpirySlotSpan(slot int, nowMs int64) (lo, hi []byte) {
	lo = userKey(slot, kindExpiry, 0)
	hi = binary.BigEndian.AppendUint64(userKey(slot, kindExpiry, 8), uint64(nowMs+1))
	return lo, hi
}

// ExpiryIndexSpan is the span [lo, hi) of all of slot's expiry index
// entries, in order of expiry time.
func ExpiryIndexSpan(slot int) (lo, hi []byte) {
	return userKey(slot, kindExpiry, 0), userKey(slot, kindExpiry+1, 0)
}

// DecodeExpiry returns the user key and expiry time of an Expiry key.
func DecodeExpiry(k []byte) (key []byte, expireAtMs int64) {
	return k[12:], int64(binary.BigEndian.Uint64(k[4:12]))
}

// SlotSpan is the Pebble span [lo, hi) of all user data in slots [first, last].
func SlotSpan(first, last int) (lo, hi []byte) {
	lo = []byte{prefixUser, byte(first >> 8), byte(first)}
	next := last + 1
	hi = []byte{prefixUser, byte(next >> 8), byte(next)}
	if next >= SlotCount {
		hi = []byte{prefixUser + 1}
	}
	return lo, hi
}
