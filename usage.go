package odometer

import (
	"context"
	"sort"
	"time"
)

// UsageQuery asks for one customer's usage of one event type per window
// over a range, computed from the buckets (and the events not yet folded
// into them), never from the stored aggregations.
type UsageQuery struct {
	CustomerID string
	EventType  string
	// From and To bound the range: slots starting in [From, To) count.
	// Usage resolves to the 15-minute slot.
	From, To time.Time
	Window   Period
	Location *time.Location
}

// UsagePoint is the value of one window.
type UsagePoint struct {
	Key   string    `json:"key"`
	Start time.Time `json:"-"`
	End   time.Time `json:"-"`
	Value float64   `json:"value"`
	Count int64     `json:"count"`
}

// MaxUsageWindows bounds the windows of one usage answer.
const MaxUsageWindows = 10_000

// Usage answers q from store, with the op configured for the event type.
func Usage(ctx context.Context, store AggregationStore, cfg *Config, q UsageQuery) ([]UsagePoint, error) {
	et, ok := cfg.Events[q.EventType]
	if !ok {
		return nil, &Error{Code: EINVALID, Message: cfg.InvalidEventType(q.EventType)}
	}
	if !q.To.After(q.From) {
		return nil, Errorf(EINVALID, "to must be after from")
	}
	fromSlot, toSlot := SlotOf(q.From.UnixMilli()+slotMillis-1), SlotOf(q.To.UnixMilli()+slotMillis-1) // slots starting in [From, To)
	if toSlot-fromSlot > 100*366*SlotsPerDay {
		return nil, Errorf(EINVALID, "the range must be at most 100 years")
	}
	buckets, pending, err := store.FindUsage(ctx, q.CustomerID, q.EventType, HourOfSlot(fromSlot), HourOfSlot(toSlot))
	if err != nil {
		return nil, err
	}
	slots := map[int64]*State{}
	for _, b := range buckets {
		for s, st := range b.Slots {
			if s >= fromSlot && s < toSlot {
				slots[s] = st
			}
		}
	}
	for i := range pending {
		e := &pending[i]
		ms := e.Time.UnixMilli()
		s := SlotOf(ms)
		if s < fromSlot || s >= toSlot {
			continue
		}
		st := slots[s]
		if st == nil {
			st = new(State)
			slots[s] = st
		} else {
			st = st.clone()
			slots[s] = st
		}
		st.Add(e.Value, ms, e.Seq)
	}
	windows := map[string]*State{}
	for s, st := range slots {
		key := q.Window.Key(SlotStart(s).In(q.Location))
		w := windows[key]
		if w == nil {
			w = new(State)
			windows[key] = w
		}
		w.Merge(st)
	}
	if len(windows) > MaxUsageWindows {
		return nil, Errorf(EINVALID, "the answer would have more than %d windows; choose a wider window or a shorter range", MaxUsageWindows)
	}
	out := make([]UsagePoint, 0, len(windows))
	for key, st := range windows {
		start, end, err := q.Window.Bounds(key, q.Location)
		if err != nil {
			return nil, err
		}
		out = append(out, UsagePoint{Key: key, Start: start, End: end, Value: st.Value(et.Op), Count: st.Count})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out, nil
}
