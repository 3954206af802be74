package odometer

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Billing is the period of each customer's own billing cycle (SPEC.md,
// "Customers and billing cycles"): from its anchor, every interval, in its
// zone. Its key is the cycle's first day in that zone, YYYYMMDD.
const Billing Period = "billing"

// BillingSegment is the billing settings a customer had until a change of
// them took effect: cycles before Until follow them, and never move.
type BillingSegment struct {
	Until    time.Time       `json:"until"`
	Anchor   *time.Time      `json:"anchor,omitempty"`
	Interval BillingInterval `json:"interval"`
	Timezone string          `json:"timezone,omitempty"`
}

// sameBilling reports whether two profiles have the same billing settings.
func sameBilling(a, b *Customer) bool {
	sameAnchor := (a.BillingAnchor == nil) == (b.BillingAnchor == nil) &&
		(a.BillingAnchor == nil || a.BillingAnchor.Equal(*b.BillingAnchor))
	return sameAnchor && a.BillingInterval == b.BillingInterval && a.Timezone == b.Timezone
}

// Reschedule gives c, the new profile of a customer whose profile was old
// (nil: none), the history of its billing settings at now. A change of
// anchor, interval or zone takes effect when the cycle in force at now
// ends, so that no cycle that has begun moves; a second change before
// then replaces the first. A customer with no event yet takes its first
// settings at once.
func (c *Customer) Reschedule(old *Customer, hasEvents bool, now time.Time, def *time.Location) {
	if old == nil {
		c.BillingHistory = nil
		if !hasEvents {
			return
		}
		old = NewCustomer(c.ID) // its events were billed by the calendar month
	}
	c.BillingHistory = append([]BillingSegment(nil), old.BillingHistory...)
	if sameBilling(old, c) {
		return
	}
	if n := len(c.BillingHistory); n > 0 && now.Before(c.BillingHistory[n-1].Until) {
		return // a change already waits for that cycle's end: this one replaces it
	}
	_, end := old.CycleAt(now, def)
	c.BillingHistory = append(c.BillingHistory, BillingSegment{Until: end, Anchor: old.BillingAnchor,
		Interval: old.BillingInterval, Timezone: old.Timezone})
}

// CycleAt returns the billing cycle of the customer that holds t, and the
// zone its key is written in: under the settings in force at t (the last
// change takes effect where the cycle before it ended, so a cycle may be
// shorter or longer once, where settings change).
func (c *Customer) CycleAt(t time.Time, def *time.Location) (start, end time.Time) {
	start, end, _ = c.cycleAt(t, def)
	return start, end
}

func (c *Customer) cycleAt(t time.Time, def *time.Location) (start, end time.Time, loc *time.Location) {
	var from time.Time
	for _, seg := range c.BillingHistory {
		if t.Before(seg.Until) {
			prev := &Customer{Timezone: seg.Timezone}
			loc = prev.Location(def)
			s, e := BillingCycle(seg.Anchor, seg.Interval, loc, t)
			if s.Before(from) {
				s = from
			}
			if e.After(seg.Until) {
				e = seg.Until
			}
			return s, e, loc
		}
		from = seg.Until
	}
	loc = c.Location(def)
	s, e := BillingCycle(c.BillingAnchor, c.BillingInterval, loc, t)
	if s.Before(from) {
		s = from
	}
	return s, e, loc
}

// CycleKey returns the key and bounds of the cycle holding t.
func (c *Customer) CycleKey(t time.Time, def *time.Location) (key string, start, end time.Time) {
	start, end, loc := c.cycleAt(t, def)
	return Daily.Key(start.In(loc)), start, end
}

// CustomerSource finds the profiles of customers, for their billing
// cycles: a CustomerStore is one. The aggregator asks it about every
// customer of a run: a profile is read alone, never the customer's
// events.
type CustomerSource interface {
	FindProfile(ctx context.Context, id string) (*Customer, error)
}

// SaveCustomer stores c's profile, keeping the history of its billing
// settings: a change of them takes effect when the current cycle ends
// (see Reschedule). def is the configuration's zone.
func SaveCustomer(ctx context.Context, store CustomerStore, c *Customer, now time.Time, def *time.Location) error {
	old, err := store.FindCustomer(ctx, c.ID)
	switch {
	case ErrorCode(err) == ENOTFOUND:
		old = nil
	case err != nil:
		return err
	}
	hasEvents := old != nil && old.FirstEventAt != nil
	if old != nil && !old.HasProfile() {
		old = nil // seen through events only: the calendar month until now
	}
	c.Reschedule(old, hasEvents, now, def)
	return store.PutCustomer(ctx, c)
}

// EncodeBillingHistory is how stores keep a billing history: a JSON array.
func EncodeBillingHistory(h []BillingSegment) string {
	if len(h) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(h)
	return string(b)
}

// DecodeBillingHistory reads what EncodeBillingHistory wrote.
func DecodeBillingHistory(s string) ([]BillingSegment, error) {
	var h []BillingSegment
	if s == "" || s == "[]" {
		return nil, nil
	}
	if err := json.Unmarshal([]byte(s), &h); err != nil {
		return nil, fmt.Errorf("billing history: %w", err)
	}
	return h, nil
}
