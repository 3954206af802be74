package odometer

import (
	"fmt"
	"strconv"
	"time"
)

// Period is a calendar period type.
type Period string

const (
	Hourly  Period = "hourly"
	Daily   Period = "daily"
	Weekly  Period = "weekly"
	Monthly Period = "monthly"
	Yearly  Period = "yearly"
)

// Periods lists every period type, finest first.
var Periods = []Period{Hourly, Daily, Weekly, Monthly, Yearly}

// ParsePeriod returns the period named s, or EINVALID.
func ParsePeriod(s string) (Period, error) {
	for _, p := range Periods {
		if string(p) == s {
			return p, nil
		}
	}
	if s == string(Billing) {
		return Billing, nil
	}
	return "", Errorf(EINVALID, "Invalid period: %s. Must be one of: hourly, daily, weekly, monthly, yearly, billing", s)
}

// SlotSize is the width of the finest bucket. Every UTC offset in use is a
// multiple of 15 minutes, so every period boundary in every zone falls on a
// slot boundary and periods derived from slots are exact.
const SlotSize = 15 * time.Minute

// slotMillis is SlotSize in milliseconds.
const slotMillis = int64(SlotSize / time.Millisecond)

// SlotOf returns the index of the 15-minute UTC slot holding the instant ms
// (Unix milliseconds).
func SlotOf(ms int64) int64 {
	if ms >= 0 {
		return ms / slotMillis
	}
	return (ms - slotMillis + 1) / slotMillis
}

// SlotStart returns the instant at which slot s begins.
func SlotStart(s int64) time.Time { return time.UnixMilli(s * slotMillis).UTC() }

// Key returns the key of the period of type p that holds t, in t's location:
// YYYYMMDDHH, YYYYMMDD, YYYYWW (ISO week-year and week), YYYYMM or YYYY.
func (p Period) Key(t time.Time) string {
	var b [10]byte
	return string(p.AppendKey(b[:0], t))
}

// AppendKey appends p.Key(t) to b.
func (p Period) AppendKey(b []byte, t time.Time) []byte {
	switch p {
	case Hourly:
		y, m, d := t.Date()
		return pad(pad(pad(pad(b, y, 4), int(m), 2), d, 2), t.Hour(), 2)
	case Daily:
		y, m, d := t.Date()
		return pad(pad(pad(b, y, 4), int(m), 2), d, 2)
	case Weekly:
		y, w := t.ISOWeek()
		return pad(pad(b, y, 4), w, 2)
	case Monthly:
		y, m, _ := t.Date()
		return pad(pad(b, y, 4), int(m), 2)
	case Yearly:
		return pad(b, t.Year(), 4)
	}
	return b
}

// MinuteKey returns YYYYMMDDHHmm of t in its location.
func MinuteKey(t time.Time) string {
	var b [12]byte
	return string(pad(Hourly.AppendKey(b[:0], t), t.Minute(), 2))
}

func pad(b []byte, v, width int) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
		width--
	}
	var tmp [20]byte
	s := strconv.AppendInt(tmp[:0], int64(v), 10)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// Bounds returns the first instant of the period of type p with the given
// key in loc, and the first instant after it. A local day across a DST
// change lasts 23 or 25 hours; an hour repeated when clocks go back is one
// period of two hours, since both share one key.
func (p Period) Bounds(key string, loc *time.Location) (start, end time.Time, err error) {
	bad := func() (time.Time, time.Time, error) {
		return time.Time{}, time.Time{}, Errorf(EINVALID, "invalid %s period key: %q", p, key)
	}
	num := func(s string) (int, bool) {
		n, err := strconv.Atoi(s)
		return n, err == nil && len(s) > 0 && s[0] != '-' && s[0] != '+'
	}
	switch p {
	case Hourly:
		if len(key) != 10 {
			return bad()
		}
		y, ok1 := num(key[:4])
		m, ok2 := num(key[4:6])
		d, ok3 := num(key[6:8])
		h, ok4 := num(key[8:10])
		if !(ok1 && ok2 && ok3 && ok4) || m < 1 || m > 12 || d < 1 || d > 31 || h > 23 {
			return bad()
		}
		start = wallStart(y, time.Month(m), d, h, loc)
		end = wallStart(y, time.Month(m), d, h+1, loc)
	case Daily:
		if len(key) != 8 {
			return bad()
		}
		y, ok1 := num(key[:4])
		m, ok2 := num(key[4:6])
		d, ok3 := num(key[6:8])
		if !(ok1 && ok2 && ok3) || m < 1 || m > 12 || d < 1 || d > 31 {
			return bad()
		}
		start = wallStart(y, time.Month(m), d, 0, loc)
		end = wallStart(y, time.Month(m), d+1, 0, loc)
	case Weekly:
		if len(key) != 6 {
			return bad()
		}
		y, ok1 := num(key[:4])
		w, ok2 := num(key[4:6])
		if !(ok1 && ok2) || w < 1 || w > 53 {
			return bad()
		}
		// ISO week 1 holds January 4th; weeks start on Monday.
		jan4 := time.Date(y, 1, 4, 0, 0, 0, 0, time.UTC)
		monday := jan4.AddDate(0, 0, -((int(jan4.Weekday())+6)%7)+(w-1)*7)
		start = wallStart(monday.Year(), monday.Month(), monday.Day(), 0, loc)
		end = wallStart(monday.Year(), monday.Month(), monday.Day()+7, 0, loc)
	case Monthly:
		if len(key) != 6 {
			return bad()
		}
		y, ok1 := num(key[:4])
		m, ok2 := num(key[4:6])
		if !(ok1 && ok2) || m < 1 || m > 12 {
			return bad()
		}
		start = wallStart(y, time.Month(m), 1, 0, loc)
		end = wallStart(y, time.Month(m)+1, 1, 0, loc)
	case Yearly:
		if len(key) != 4 {
			return bad()
		}
		y, ok := num(key)
		if !ok {
			return bad()
		}
		start = wallStart(y, 1, 1, 0, loc)
		end = wallStart(y+1, 1, 1, 0, loc)
	default:
		return time.Time{}, time.Time{}, fmt.Errorf("unknown period %q", p)
	}
	if p.Key(start.In(loc)) != key {
		return bad()
	}
	return start.UTC(), end.UTC(), nil
}

// wallStart returns the earliest instant whose wall clock in loc reads
// y-m-d h:00 or later (fields are normalized as time.Date does). Where the
// wall clock is repeated, the first occurrence; where it is skipped, the
// first instant after the gap.
func wallStart(y int, m time.Month, d, h int, loc *time.Location) time.Time {
	want := time.Date(y, m, d, h, 0, 0, 0, time.UTC) // the wall clock, as a comparable value
	t := time.Date(y, m, d, h, 0, 0, 0, loc)
	wall := func(t time.Time) time.Time {
		l := t.In(loc)
		return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
	}
	// Step back while an earlier instant still reads at or after the wanted wall clock
	// (a repeated hour), forward while the wall clock reads before it (a gap).
	for i := 0; i < 8 && !wall(t.Add(-SlotSize)).Before(want); i++ {
		t = t.Add(-SlotSize)
	}
	for i := 0; i < 8 && wall(t).Before(want); i++ {
		t = t.Add(SlotSize)
	}
	return t
}

// PeriodStart returns the first instant of the period of type p holding t, in loc.
func (p Period) PeriodStart(t time.Time, loc *time.Location) time.Time {
	s, _, _ := p.Bounds(p.Key(t.In(loc)), loc)
	return s
}
