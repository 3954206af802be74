package odometer

import (
	"sort"
)

// SlotsPerDay is the number of 15-minute slots in a UTC day.
const SlotsPerDay = 96

// SlotsPerBucket is the number of 15-minute slots one bucket holds: one
// UTC hour. A bucket is read and written whole, so a run that folds a few
// minutes of events rewrites an hour of state, not a day of it.
const SlotsPerBucket = 4

// BucketKey names the bucket of one customer's event type in one UTC hour
// (hours since 1970-01-01T00:00Z).
type BucketKey struct {
	CustomerID string
	EventType  string
	Hour       int64
}

// Bucket is the partial state of one customer's event type in each
// 15-minute slot of one UTC hour that has events. Every period type of
// every time zone is derived from slots exactly.
type Bucket struct {
	BucketKey
	Slots map[int64]State // by slot index (SlotOf), all within Hour
}

// DayOfSlot returns the UTC day holding slot s.
func DayOfSlot(s int64) int64 { return floorDiv(s, SlotsPerDay) }

// HourOfSlot returns the UTC hour holding slot s: its bucket.
func HourOfSlot(s int64) int64 { return floorDiv(s, SlotsPerBucket) }

func floorDiv(a, b int64) int64 {
	if a >= 0 {
		return a / b
	}
	return (a - b + 1) / b
}

// slotsFormat is the first byte of a bucket's encoding since states carry
// their kind and version. Before, the first byte was a slot's index in its
// hour, 0 to 3.
const slotsFormat = 0xF1

// EncodeSlots encodes the slots of one hour, in slot order.
func EncodeSlots(hour int64, slots map[int64]State) []byte {
	idx := make([]int64, 0, len(slots))
	for s := range slots {
		idx = append(idx, s)
	}
	sort.Slice(idx, func(i, j int) bool { return idx[i] < idx[j] })
	b := make([]byte, 0, 1+64*len(idx))
	if len(idx) == 0 {
		return b
	}
	b = append(b, slotsFormat)
	for _, s := range idx {
		b = append(b, byte(s-hour*SlotsPerBucket))
		b = AppendState(b, slots[s])
	}
	return b
}

// DecodeSlots decodes what EncodeSlots wrote into slots, and what it wrote
// before states carried a kind.
func DecodeSlots(hour int64, b []byte, slots map[int64]State) error {
	legacy := len(b) > 0 && b[0] != slotsFormat
	if !legacy && len(b) > 0 {
		if b = b[1:]; len(b) == 0 {
			return errState // the format byte is written only before slots
		}
	}
	r := &reader{b: b}
	for len(r.b) > 0 {
		i := int64(r.byte())
		if i >= SlotsPerBucket {
			return errState
		}
		s := readState(r, legacy)
		if r.err {
			return errState
		}
		slots[hour*SlotsPerBucket+i] = s
	}
	return nil
}
