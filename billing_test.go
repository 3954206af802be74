package odometer_test

import (
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
)

func mustLoad(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatal(err)
	}
	return loc
}

func rfc(tb testing.TB, s string) time.Time {
	tb.Helper()
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// billingCycleTests: 2028 is a leap year, 2027 is not.
var billingCycleTests = []struct {
	name     string
	anchor   string // "" for none
	interval odometer.BillingInterval
	zone     string
	at       string
	start    string
	end      string
}{
	// Anchors on the 1st, 15th, 29th, 30th and 31st, across a leap February.
	{"1st", "2028-01-01T00:00:00Z", "month", "UTC", "2028-02-29T12:00:00Z", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z"},
	{"15th/before the day", "2028-01-15T00:00:00Z", "month", "UTC", "2028-02-14T23:59:59.999Z", "2028-01-15T00:00:00Z", "2028-02-15T00:00:00Z"},
	{"15th/on the day", "2028-01-15T00:00:00Z", "month", "UTC", "2028-02-15T00:00:00Z", "2028-02-15T00:00:00Z", "2028-03-15T00:00:00Z"},
	{"29th/leap February has it", "2028-01-29T00:00:00Z", "month", "UTC", "2028-02-29T00:00:00Z", "2028-02-29T00:00:00Z", "2028-03-29T00:00:00Z"},
	{"29th/common February clamps", "2027-01-29T00:00:00Z", "month", "UTC", "2027-02-28T00:00:00Z", "2027-02-28T00:00:00Z", "2027-03-29T00:00:00Z"},
	{"30th/leap February clamps to 29", "2028-01-30T00:00:00Z", "month", "UTC", "2028-02-10T00:00:00Z", "2028-01-30T00:00:00Z", "2028-02-29T00:00:00Z"},
	{"30th/back to the 30th in March", "2028-01-30T00:00:00Z", "month", "UTC", "2028-03-01T00:00:00Z", "2028-02-29T00:00:00Z", "2028-03-30T00:00:00Z"},
	{"31st/January", "2028-01-31T00:00:00Z", "month", "UTC", "2028-02-10T00:00:00Z", "2028-01-31T00:00:00Z", "2028-02-29T00:00:00Z"},
	{"31st/leap February", "2028-01-31T00:00:00Z", "month", "UTC", "2028-03-30T23:59:59Z", "2028-02-29T00:00:00Z", "2028-03-31T00:00:00Z"},
	{"31st/March has it again", "2028-01-31T00:00:00Z", "month", "UTC", "2028-04-01T00:00:00Z", "2028-03-31T00:00:00Z", "2028-04-30T00:00:00Z"},
	{"31st/common February", "2027-01-31T00:00:00Z", "month", "UTC", "2027-02-15T00:00:00Z", "2027-01-31T00:00:00Z", "2027-02-28T00:00:00Z"},
	{"31st/across the year", "2027-08-31T00:00:00Z", "month", "UTC", "2028-01-01T00:00:00Z", "2027-12-31T00:00:00Z", "2028-01-31T00:00:00Z"},
	{"anchor in the future", "2028-06-15T00:00:00Z", "month", "UTC", "2028-02-20T00:00:00Z", "2028-02-15T00:00:00Z", "2028-03-15T00:00:00Z"},
	{"anchor long ago", "2001-01-31T00:00:00Z", "month", "UTC", "2028-02-20T00:00:00Z", "2028-01-31T00:00:00Z", "2028-02-29T00:00:00Z"},
	// Years and weeks.
	{"year/Feb 29 in a common year", "2028-02-29T00:00:00Z", "year", "UTC", "2029-03-01T00:00:00Z", "2029-02-28T00:00:00Z", "2030-02-28T00:00:00Z"},
	{"year/Feb 29 again in a leap year", "2028-02-29T00:00:00Z", "year", "UTC", "2032-03-01T00:00:00Z", "2032-02-29T00:00:00Z", "2033-02-28T00:00:00Z"},
	{"week/after the anchor", "2028-02-27T00:00:00Z", "week", "UTC", "2028-03-06T00:00:00Z", "2028-03-05T00:00:00Z", "2028-03-12T00:00:00Z"},
	{"week/before the anchor", "2028-02-27T00:00:00Z", "week", "UTC", "2028-02-20T00:00:00Z", "2028-02-20T00:00:00Z", "2028-02-27T00:00:00Z"},
	// No anchor: the calendar period.
	{"no anchor/month", "", "month", "UTC", "2028-02-29T23:59:59Z", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z"},
	{"no anchor/year", "", "year", "UTC", "2028-02-29T23:59:59Z", "2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z"},
	{"no anchor/ISO week", "", "week", "UTC", "2028-03-01T12:00:00Z", "2028-02-28T00:00:00Z", "2028-03-06T00:00:00Z"},
	// Zones. Asia/Kolkata is +5:30 all year.
	{"Kolkata/31st, leap February", "2028-01-31T00:00:00+05:30", "month", "Asia/Kolkata", "2028-02-28T18:29:59Z", "2028-01-30T18:30:00Z", "2028-02-28T18:30:00Z"},
	{"Kolkata/the next cycle", "2028-01-31T00:00:00+05:30", "month", "Asia/Kolkata", "2028-02-28T18:30:00Z", "2028-02-28T18:30:00Z", "2028-03-30T18:30:00Z"},
	// The anchor is an instant: its day is its date in the customer's zone.
	{"Kolkata/anchor's day in the zone", "2028-01-15T20:00:00Z", "month", "Asia/Kolkata", "2028-02-01T00:00:00Z", "2028-01-15T18:30:00Z", "2028-02-15T18:30:00Z"},
	// America/St_Johns is -3:30, -2:30 from March 12, 2028 (DST).
	{"St_Johns/across DST", "2028-01-15T00:00:00-03:30", "month", "America/St_Johns", "2028-03-01T00:00:00Z", "2028-02-15T03:30:00Z", "2028-03-15T02:30:00Z"},
	{"St_Johns/no anchor", "", "month", "America/St_Johns", "2028-11-15T00:00:00Z", "2028-11-01T02:30:00Z", "2028-12-01T03:30:00Z"},
	// Australia/Lord_Howe is +11 until April 2, 2028, then +10:30.
	{"Lord_Howe/no anchor, DST ends", "", "month", "Australia/Lord_Howe", "2028-04-15T00:00:00Z", "2028-03-31T13:00:00Z", "2028-04-30T13:30:00Z"},
	{"Lord_Howe/29th, leap February", "2028-01-29T00:00:00+11:00", "month", "Australia/Lord_Howe", "2028-03-01T00:00:00Z", "2028-02-28T13:00:00Z", "2028-03-28T13:00:00Z"},
	{"Lord_Howe/30th across DST", "2028-01-30T00:00:00+11:00", "month", "Australia/Lord_Howe", "2028-04-10T00:00:00Z", "2028-03-29T13:00:00Z", "2028-04-29T13:30:00Z"},
	// Pacific/Kiritimati is +14.
	{"Kiritimati/no anchor, leap day", "", "month", "Pacific/Kiritimati", "2028-02-29T09:59:59Z", "2028-01-31T10:00:00Z", "2028-02-29T10:00:00Z"},
	{"Kiritimati/no anchor, March", "", "month", "Pacific/Kiritimati", "2028-02-29T10:00:00Z", "2028-02-29T10:00:00Z", "2028-03-31T10:00:00Z"},
	{"Kiritimati/31st", "2028-01-31T00:00:00+14:00", "month", "Pacific/Kiritimati", "2028-03-15T00:00:00Z", "2028-02-28T10:00:00Z", "2028-03-30T10:00:00Z"},
}

func TestBillingCycle(t *testing.T) {
	for _, tt := range billingCycleTests {
		t.Run(tt.name, func(t *testing.T) {
			var anchor *time.Time
			if tt.anchor != "" {
				a := rfc(t, tt.anchor)
				anchor = &a
			}
			start, end := odometer.BillingCycle(anchor, tt.interval, mustLoad(t, tt.zone), rfc(t, tt.at))
			if got, want := start, rfc(t, tt.start); !got.Equal(want) {
				t.Errorf("start %s, want %s", got.UTC().Format(time.RFC3339), want.UTC().Format(time.RFC3339))
			}
			if got, want := end, rfc(t, tt.end); !got.Equal(want) {
				t.Errorf("end %s, want %s", got.UTC().Format(time.RFC3339), want.UTC().Format(time.RFC3339))
			}
		})
	}
}

// TestBillingCycleInvariants walks three years, every 3 hours 11 minutes, for anchors on
// the 1st, 15th, 29th, 30th and 31st in the four zones: every instant is
// in its cycle, cycles follow each other without gap or overlap, each
// starts at the first instant of a day in the zone, on the anchor's day
// clamped to the month's length, on a 15-minute slot boundary.
func TestBillingCycleInvariants(t *testing.T) {
	zones := []string{"UTC", "Asia/Kolkata", "America/St_Johns", "Australia/Lord_Howe", "Pacific/Kiritimati"}
	for _, zone := range zones {
		loc := mustLoad(t, zone)
		for _, day := range []int{1, 15, 29, 30, 31} {
			for _, interval := range []odometer.BillingInterval{"month", "year", "week"} {
				anchor := time.Date(2027, time.January, day, 12, 0, 0, 0, loc)
				var prevEnd time.Time
				for at := time.Date(2026, 12, 1, 0, 7, 0, 0, time.UTC); at.Before(time.Date(2029, 12, 31, 0, 0, 0, 0, time.UTC)); at = at.Add(3*time.Hour + 11*time.Minute) {
					start, end := odometer.BillingCycle(&anchor, interval, loc, at)
					if at.Before(start) || !at.Before(end) {
						t.Fatalf("%s %s %d: %s is outside its cycle [%s, %s)", zone, interval, day, at, start, end)
					}
					if start.UnixMilli()%int64(odometer.SlotSize/time.Millisecond) != 0 {
						t.Fatalf("%s %s %d: cycle start %s is not on a slot boundary", zone, interval, day, start)
					}
					if !prevEnd.IsZero() && start != prevEnd && start.After(prevEnd) {
						t.Fatalf("%s %s %d: gap between cycles: one ends %s, the next starts %s", zone, interval, day, prevEnd, start)
					}
					if !prevEnd.IsZero() && start.Before(prevEnd) && end != prevEnd {
						t.Fatalf("%s %s %d: cycles overlap: one ends %s, [%s, %s) follows", zone, interval, day, prevEnd, start, end)
					}
					prevEnd = end
					ls := start.In(loc)
					if ls.Hour() != 0 || ls.Minute() != 0 {
						t.Fatalf("%s %s %d: cycle starts at %s, not at midnight", zone, interval, day, ls)
					}
					if interval == "week" {
						if ls.Weekday() != anchor.Weekday() || end.Sub(start) < 7*24*time.Hour-2*time.Hour || end.Sub(start) > 7*24*time.Hour+2*time.Hour {
							t.Fatalf("%s week %d: cycle [%s, %s) is not a week from the anchor's weekday", zone, day, ls, end.In(loc))
						}
						continue
					}
					last := time.Date(ls.Year(), ls.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
					if want := min(day, last); ls.Day() != want {
						t.Fatalf("%s %s %d: cycle starts on day %d, want %d", zone, interval, day, ls.Day(), want)
					}
					if interval == "year" && ls.Month() != time.January {
						t.Fatalf("%s year %d: cycle starts in %s", zone, day, ls.Month())
					}
				}
			}
		}
	}
}

func TestCustomerValidate(t *testing.T) {
	at := func(s string) *time.Time { v := rfc(t, s); return &v }
	for _, tt := range []struct {
		name string
		c    odometer.Customer
		want string // "" for valid
	}{
		{"OK", odometer.Customer{ID: "cust_1", Name: "Acme", Timezone: "Asia/Kolkata", BillingAnchor: at("2026-01-15T00:00:00Z"), BillingInterval: "year", Metadata: []byte(`{"plan": "pro"}`)}, ""},
		{"OKDefaults", odometer.Customer{ID: "cust_1"}, ""},
		{"ErrTimezone", odometer.Customer{ID: "c", Timezone: "Mars/Olympus"}, `timezone must be an IANA time zone name such as "Europe/Paris" or "UTC", not "Mars/Olympus"`},
		{"ErrTimezoneLocal", odometer.Customer{ID: "c", Timezone: "Local"}, `timezone must be an IANA time zone name`},
		{"ErrTimezonePath", odometer.Customer{ID: "c", Timezone: "../../etc/passwd"}, `timezone must be an IANA time zone name`},
		{"ErrInterval", odometer.Customer{ID: "c", BillingInterval: "day"}, `billingInterval must be one of: month, year, week, not "day"`},
		{"ErrMetadataArray", odometer.Customer{ID: "c", Metadata: []byte(`[1]`)}, `metadata must be a JSON object`},
		{"ErrMetadataString", odometer.Customer{ID: "c", Metadata: []byte(`"x"`)}, `metadata must be a JSON object`},
		{"ErrMetadataLarge", odometer.Customer{ID: "c", Metadata: []byte(`{"k": "` + string(make([]byte, 17000)) + `"}`)}, `metadata must be at most 16384 bytes`},
		{"ErrNameLong", odometer.Customer{ID: "c", Name: string(make([]byte, 256))}, `name must be at most 255 bytes`},
		{"ErrNameControl", odometer.Customer{ID: "c", Name: "a\nb"}, `name must be valid UTF-8 without control characters`},
		{"ErrAnchorEarly", odometer.Customer{ID: "c", BillingAnchor: at("1969-12-31T23:59:59Z")}, `billingAnchor must be between 1970-01-01 and 2199-12-31`},
		{"ErrAnchorLate", odometer.Customer{ID: "c", BillingAnchor: at("2200-01-01T00:00:00Z")}, `billingAnchor must be between 1970-01-01 and 2199-12-31`},
		{"ErrIDLong", odometer.Customer{ID: string(make([]byte, 256))}, `the customer id must be at most 255 bytes`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.c
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if c.BillingInterval == "" || len(c.Metadata) == 0 {
					t.Errorf("defaults not filled: interval %q, metadata %q", c.BillingInterval, c.Metadata)
				}
				return
			}
			if got := odometer.ErrorCode(err); got != odometer.EINVALID {
				t.Fatalf("code %q, want EINVALID (%v)", got, err)
			}
			if got := odometer.ErrorMessage(err); len(got) < len(tt.want) || got[:len(tt.want)] != tt.want {
				t.Errorf("message %q, want it to start with %q", got, tt.want)
			}
		})
	}
}
