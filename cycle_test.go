package odometer_test

import (
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
)

func day(y int, m time.Month, d int, loc *time.Location) time.Time {
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// TestCustomer_Reschedule: a change of anchor, interval or zone takes
// effect when the cycle in force ends; cycles that began never move.
func TestCustomer_Reschedule(t *testing.T) {
	utc := time.UTC
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	anchor := func(y int, m time.Month, d int) *time.Time { a := day(y, m, d, utc); return &a }
	cycle := func(c *odometer.Customer, at time.Time) [2]time.Time {
		s, e := c.CycleAt(at, utc)
		return [2]time.Time{s, e}
	}
	t.Run("AnchorChangeMidCycle", func(t *testing.T) {
		old := &odometer.Customer{ID: "c", BillingInterval: odometer.IntervalMonth, BillingAnchor: anchor(2026, 1, 1), CreatedAt: day(2026, 1, 1, utc)}
		next := &odometer.Customer{ID: "c", BillingInterval: odometer.IntervalMonth, BillingAnchor: anchor(2026, 1, 15)}
		next.Reschedule(old, true, day(2026, 3, 10, utc), utc)
		for _, tt := range []struct {
			at   time.Time
			want [2]time.Time
		}{
			{day(2026, 2, 20, utc), [2]time.Time{day(2026, 2, 1, utc), day(2026, 3, 1, utc)}},   // before: as it was
			{day(2026, 3, 20, utc), [2]time.Time{day(2026, 3, 1, utc), day(2026, 4, 1, utc)}},   // the current cycle does not move
			{day(2026, 4, 5, utc), [2]time.Time{day(2026, 4, 1, utc), day(2026, 4, 15, utc)}},   // the new anchor from its end
			{day(2026, 4, 20, utc), [2]time.Time{day(2026, 4, 15, utc), day(2026, 5, 15, utc)}}, // then the 15th
		} {
			if got := cycle(next, tt.at); got != tt.want {
				t.Errorf("cycle at %s = %v, want %v", tt.at.Format(time.DateOnly), got, tt.want)
			}
		}
		// A second change before the first takes effect replaces it.
		again := &odometer.Customer{ID: "c", BillingInterval: odometer.IntervalMonth, BillingAnchor: anchor(2026, 1, 20)}
		again.Reschedule(next, true, day(2026, 3, 25, utc), utc)
		if got, want := cycle(again, day(2026, 4, 5, utc)), [2]time.Time{day(2026, 4, 1, utc), day(2026, 4, 20, utc)}; got != want {
			t.Errorf("after a second change: %v, want %v", got, want)
		}
		if got, want := cycle(again, day(2026, 3, 5, utc)), [2]time.Time{day(2026, 3, 1, utc), day(2026, 4, 1, utc)}; got != want {
			t.Errorf("the current cycle moved: %v, want %v", got, want)
		}
	})
	t.Run("ZoneChange", func(t *testing.T) {
		old := &odometer.Customer{ID: "c", BillingInterval: odometer.IntervalMonth, CreatedAt: day(2026, 1, 1, utc)}
		next := &odometer.Customer{ID: "c", BillingInterval: odometer.IntervalMonth, Timezone: "Asia/Kolkata"}
		next.Reschedule(old, true, day(2026, 5, 10, utc), utc)
		if got, want := cycle(next, day(2026, 5, 20, utc)), [2]time.Time{day(2026, 5, 1, utc), day(2026, 6, 1, utc)}; got != want {
			t.Errorf("May: %v, want %v (UTC still)", got, want)
		}
		// June in Kolkata begins at 18:30 UTC on May 31, but May ended in
		// UTC: the first cycle in the new zone starts where May ended.
		if got, want := cycle(next, day(2026, 6, 10, utc)), [2]time.Time{day(2026, 6, 1, utc), day(2026, 7, 1, kolkata)}; !got[0].Equal(want[0]) || !got[1].Equal(want[1]) {
			t.Errorf("June: %v, want %v", got, want)
		}
		key, _, _ := next.CycleKey(day(2026, 7, 10, utc), utc)
		if key != "20260701" {
			t.Errorf("July's key %s, want 20260701", key)
		}
	})
	t.Run("NewCustomerWithoutEvents", func(t *testing.T) {
		c := &odometer.Customer{ID: "c", BillingInterval: odometer.IntervalMonth, BillingAnchor: anchor(2026, 3, 15)}
		c.Reschedule(nil, false, day(2026, 3, 15, utc).Add(time.Hour), utc)
		if got, want := cycle(c, day(2026, 3, 20, utc)), [2]time.Time{day(2026, 3, 15, utc), day(2026, 4, 15, utc)}; got != want {
			t.Errorf("%v, want %v: a first profile applies at once", got, want)
		}
	})
	t.Run("CustomerWithEventsGetsAProfile", func(t *testing.T) {
		c := &odometer.Customer{ID: "c", BillingInterval: odometer.IntervalMonth, BillingAnchor: anchor(2026, 3, 15)}
		c.Reschedule(nil, true, day(2026, 3, 20, utc), utc)
		if got, want := cycle(c, day(2026, 3, 25, utc)), [2]time.Time{day(2026, 3, 1, utc), day(2026, 4, 1, utc)}; got != want {
			t.Errorf("%v, want %v: the calendar month in force goes on", got, want)
		}
		if got, want := cycle(c, day(2026, 4, 2, utc)), [2]time.Time{day(2026, 4, 1, utc), day(2026, 4, 15, utc)}; got != want {
			t.Errorf("%v, want %v", got, want)
		}
	})
	t.Run("Unchanged", func(t *testing.T) {
		old := &odometer.Customer{ID: "c", BillingInterval: odometer.IntervalYear, BillingAnchor: anchor(2024, 2, 29), CreatedAt: day(2024, 1, 1, utc)}
		next := &odometer.Customer{ID: "c", Name: "renamed", BillingInterval: odometer.IntervalYear, BillingAnchor: anchor(2024, 2, 29)}
		next.Reschedule(old, true, day(2026, 3, 10, utc), utc)
		if len(next.BillingHistory) != 0 {
			t.Errorf("history %v after a rename", next.BillingHistory)
		}
		if got, want := cycle(next, day(2026, 6, 1, utc)), [2]time.Time{day(2026, 2, 28, utc), day(2027, 2, 28, utc)}; got != want {
			t.Errorf("%v, want %v (Feb 29 clamps)", got, want)
		}
	})
}
