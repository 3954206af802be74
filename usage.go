package odometer

import (
	"context"
	"sort"
	"time"
)

// UsageQuery asks for one customer's usage of one meter per window over a
// range, computed from the buckets (and the events not yet folded into
// them), never from the stored aggregations.
type UsageQuery struct {
	CustomerID string
	// Meter names the meter; an event type is one.
	Meter string
	// From and To bound the range: slots starting in [From, To) count.
	// Usage resolves to the 15-minute slot.
	From, To time.Time
	Window   Period
	Location *time.Location
	// GroupBy asks for the value of each group of a grouped meter, by
	// these of its dimensions (all of them, or some: groups that differ
	// only in the others are merged).
	GroupBy []string
}

// UsagePoint is the value of one window.
type UsagePoint struct {
	Key    string       `json:"key"`
	Start  time.Time    `json:"-"`
	End    time.Time    `json:"-"`
	Value  float64      `json:"value"`
	Count  int64        `json:"count"`
	Groups []GroupValue `json:"groups,omitempty"`
}

// MaxUsageWindows bounds the windows of one usage answer.
const MaxUsageWindows = 10_000

// Usage answers q from store, with the meter's op.
func Usage(ctx context.Context, store AggregationStore, cfg *Config, q UsageQuery) ([]UsagePoint, error) {
	m := cfg.Meter(q.Meter)
	if m == nil {
		return nil, &Error{Code: EINVALID, Message: cfg.InvalidMeter(q.Meter)}
	}
	if m.def.kind == gaugeKind {
		return nil, Errorf(EINVALID, "meter %s is a gauge (%s): read its periods with GET /aggregations; usage windows of gauges are not answered yet", m.Name, m.Op)
	}
	dims, err := m.dimensions(q.GroupBy)
	if err != nil {
		return nil, err
	}
	if !q.To.After(q.From) {
		return nil, Errorf(EINVALID, "to must be after from")
	}
	fromSlot, toSlot := SlotOf(q.From.UnixMilli()+slotMillis-1), SlotOf(q.To.UnixMilli()+slotMillis-1) // slots starting in [From, To)
	if toSlot-fromSlot > 100*366*SlotsPerDay {
		return nil, Errorf(EINVALID, "the range must be at most 100 years")
	}
	slots, err := meterSlots(ctx, store, cfg, m, q.CustomerID, fromSlot, toSlot)
	if err != nil {
		return nil, err
	}
	windows := map[string]State{}
	for s, st := range slots {
		key := q.Window.Key(SlotStart(s).In(q.Location))
		w := windows[key]
		if w == nil {
			w = m.NewState()
			windows[key] = w
		}
		if sameKind(w, st) {
			w.Merge(st)
		}
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
		span := m.span(start, end)
		p := UsagePoint{Key: key, Start: start, End: end, Value: value(m.Op, st, span), Count: st.Count()}
		if dims != nil {
			p.Groups = m.groupsBy(st, dims, span)
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out, nil
}

// meterSlots returns the state of the meter m in each slot of
// [fromSlot, toSlot) of a customer that has usage, from the buckets and
// the events not yet folded into them.
func meterSlots(ctx context.Context, store AggregationStore, cfg *Config, m *Meter, customerID string, fromSlot, toSlot int64) (map[int64]State, error) {
	buckets, pending, err := store.FindUsage(ctx, customerID, m.Name, m.EventType, HourOfSlot(fromSlot), HourOfSlot(toSlot))
	if err != nil {
		return nil, err
	}
	return foldSlots(cfg, []*Meter{m}, buckets, pending, fromSlot, toSlot)[m.Name], nil
}

// foldSlots returns the state of each of meters in each slot of
// [fromSlot, toSlot) that has usage, by meter name: the slots of the
// buckets (whose EventType names the meter), with the pending events
// folded in.
func foldSlots(cfg *Config, meters []*Meter, buckets []Bucket, pending []Event, fromSlot, toSlot int64) map[string]map[int64]State {
	out := make(map[string]map[int64]State, len(meters))
	byName := make(map[string]*Meter, len(meters))
	for _, m := range meters {
		out[m.Name] = map[int64]State{}
		byName[m.Name] = m
	}
	for _, b := range buckets {
		slots, ok := out[b.EventType]
		if !ok {
			continue
		}
		for s, st := range b.Slots {
			if s >= fromSlot && s < toSlot {
				slots[s] = st
			}
		}
	}
	fold := newFolder(cfg)
	for i := range pending {
		e := &pending[i]
		s := SlotOf(e.Time.UnixMilli())
		if s < fromSlot || s >= toSlot {
			continue
		}
		for j := range fold.samples(e) {
			ps := &fold.out[j]
			m := byName[ps.m.Name]
			if m != ps.m {
				continue
			}
			slots := out[m.Name]
			st := slots[s]
			if st == nil || !sameKind(st, m.NewState()) {
				st = m.NewState()
			} else {
				st = st.Clone()
			}
			st.Add(&ps.s)
			slots[s] = st
		}
	}
	return out
}
