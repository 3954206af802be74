package odometer

import (
	"context"
	"time"
)

// BillingInterval is how often a customer's billing cycle repeats.
type BillingInterval string

const (
	IntervalMonth BillingInterval = "month"
	IntervalYear  BillingInterval = "year"
	IntervalWeek  BillingInterval = "week"
)

// ParseBillingInterval returns the interval named s, or EINVALID.
func ParseBillingInterval(s string) (BillingInterval, error) {
	switch BillingInterval(s) {
	case IntervalMonth, IntervalYear, IntervalWeek:
		return BillingInterval(s), nil
	}
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return "", Errorf(EINVALID, "billingInterval must be one of: month, year, week, not %q", s)
}

// BillingCycle returns the billing cycle that holds t: its first instant
// and the first instant after it.
//
// Cycles are whole days in loc. With an anchor, they start on the
// anchor's day (its date in loc) and repeat every interval from there,
// before and after it; a day that a month lacks clamps to the month's
// last day, counted from the anchor each time, so an anchor on January 31
// gives February 28 (or 29), then March 31. With no anchor, the cycle is
// the calendar month (ISO week, year) in loc. A day starts at midnight, or
// at the first instant after it where a clock change skips midnight.
func BillingCycle(anchor *time.Time, interval BillingInterval, loc *time.Location, t time.Time) (start, end time.Time) {
	if anchor == nil {
		p := Monthly
		switch interval {
		case IntervalYear:
			p = Yearly
		case IntervalWeek:
			p = Weekly
		}
		s, e, _ := p.Bounds(p.Key(t.In(loc)), loc)
		return s, e
	}
	a := anchor.In(loc)
	ay, am, ad := a.Date()
	lt := t.In(loc)
	var at func(k int) time.Time
	var k int
	switch interval {
	case IntervalWeek:
		at = func(k int) time.Time { return wallStart(ay, am, ad+7*k, 0, loc) }
		days := civilDays(lt.Date()) - civilDays(ay, am, ad)
		k = int(floorDiv(days, 7))
	case IntervalYear:
		at = func(k int) time.Time { return clampedStart(ay, am+time.Month(12*k), ad, loc) }
		k = lt.Year() - ay
	default:
		at = func(k int) time.Time { return clampedStart(ay, am+time.Month(k), ad, loc) }
		k = (lt.Year()-ay)*12 + int(lt.Month()-am)
	}
	for t.Before(at(k)) {
		k--
	}
	for !t.Before(at(k + 1)) {
		k++
	}
	return at(k), at(k + 1)
}

// clampedStart is the first instant of day d of month m (normalized) of
// year y in loc, d clamped to the month's last day.
func clampedStart(y int, m time.Month, d int, loc *time.Location) time.Time {
	first := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC) // normalizes the month
	last := time.Date(first.Year(), first.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
	return wallStart(first.Year(), first.Month(), min(d, last), 0, loc)
}

// civilDays counts the days from 1970-01-01 to a calendar date.
func civilDays(y int, m time.Month, d int) int64 {
	return floorDiv(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix(), 86400)
}

// Cycle is one billing cycle of a customer and its usage so far.
type Cycle struct {
	// Start is the cycle's first instant; End the first instant after it.
	Start, End time.Time
	// Key is the cycle's first day in the customer's zone, YYYYMMDD.
	Key string
	// Location is the zone of the cycle: the customer's, or the one it had
	// before a change of zone that takes effect when this cycle ends.
	Location *time.Location
	Values   *Values
}

// CurrentCycle returns the billing cycle of c that holds now (in c's
// zone, or def), with every meter's usage in it so far: computed from the
// buckets and the events not yet folded into them, as GET /usage is.
// Meters with no usage in the cycle are left out, as in an aggregation,
// and so are gauges (integral, twa), whose value needs the carry of a
// period that no bucket holds.
func CurrentCycle(ctx context.Context, store AggregationStore, cfg *Config, c *Customer, def *time.Location, now time.Time) (*Cycle, error) {
	start, end, loc := c.cycleAt(now, def)
	key := Daily.Key(start.In(loc))
	fromSlot, toSlot := SlotOf(start.UnixMilli()), SlotOf(end.UnixMilli())
	var meters []*Meter
	for _, name := range cfg.MeterNames() {
		if m := cfg.Meter(name); m.def.kind != gaugeKind {
			meters = append(meters, m)
		}
	}
	buckets, pending, err := store.FindCustomerUsage(ctx, c.ID, HourOfSlot(fromSlot), HourOfSlot(toSlot))
	if err != nil {
		return nil, err
	}
	states := map[string]State{}
	for name, slots := range foldSlots(cfg, meters, buckets, pending, fromSlot, toSlot) {
		m := cfg.Meter(name)
		var total State
		for _, st := range slots {
			if total == nil {
				total = m.NewState()
			}
			if sameKind(total, st) {
				total.Merge(st)
			}
		}
		if total != nil && total.Count() > 0 {
			states[name] = total
		}
	}
	return &Cycle{Start: start, End: end, Key: key, Location: loc, Values: StateValues(cfg, states, start, end)}, nil
}
