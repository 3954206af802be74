package odometer

import (
	"sort"
)

// SlotsPerDay is the number of 15-minute slots in a UTC day.
const SlotsPerDay = 96

// BucketKey names the bucket of one customer's event type on one UTC day
// (days since 1970-01-01).
type BucketKey struct {
	CustomerID string
	EventType  string
	Day        int64
}

// Bucket is the partial state of one customer's event type in each
// 15-minute slot of one UTC day that has events. Every period type of every
// time zone is derived from slots exactly.
type Bucket struct {
	BucketKey
	Slots map[int64]*State // by slot index (SlotOf), all within Day
}

// DayOfSlot returns the UTC day holding slot s.
func DayOfSlot(s int64) int64 {
	if s >= 0 {
		return s / SlotsPerDay
	}
	return (s - SlotsPerDay + 1) / SlotsPerDay
}

// EncodeSlots encodes the slots of one day, in slot order.
func EncodeSlots(day int64, slots map[int64]*State) []byte {
	idx := make([]int64, 0, len(slots))
	for s := range slots {
		idx = append(idx, s)
	}
	sort.Slice(idx, func(i, j int) bool { return idx[i] < idx[j] })
	b := make([]byte, 0, 64*len(idx))
	for _, s := range idx {
		b = append(b, byte(s-day*SlotsPerDay))
		b = slots[s].AppendBinary(b)
	}
	return b
}

// DecodeSlots decodes what EncodeSlots wrote into slots.
func DecodeSlots(day int64, b []byte, slots map[int64]*State) error {
	for len(b) > 0 {
		i := int64(b[0])
		if i >= SlotsPerDay {
			return errState
		}
		s := new(State)
		var err error
		if b, err = DecodeState(b[1:], s); err != nil {
			return err
		}
		slots[day*SlotsPerDay+i] = s
	}
	return nil
}
