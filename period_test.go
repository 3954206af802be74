package odometer_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
)

// zoneOf loads an IANA zone or fails the test.
func zoneOf(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatalf("load %s: %v", name, err)
	}
	return loc
}

// instant parses an RFC 3339 time or fails the test.
func instant(tb testing.TB, s string) time.Time {
	tb.Helper()
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		tb.Fatalf("parse %s: %v", s, err)
	}
	return t
}

// keyTests give, for an instant seen in a zone, the key of every period.
var keyTests = []struct {
	name                                   string
	at, zone                               string
	hourly, daily, weekly, monthly, yearly string
	minute                                 string
}{
	{"LastMilliOf2026", "2026-12-31T23:59:59.999Z", "UTC", "2026123123", "20261231", "202653", "202612", "2026", "202612312359"},
	{"FirstInstantOf2027", "2027-01-01T00:00:00Z", "UTC", "2027010100", "20270101", "202653", "202701", "2027", "202701010000"},
	{"Week53Of2020", "2021-01-03T12:00:00Z", "UTC", "2021010312", "20210103", "202053", "202101", "2021", "202101031200"},
	{"Week1Of2021", "2021-01-04T00:00:00Z", "UTC", "2021010400", "20210104", "202101", "202101", "2021", "202101040000"},
	{"Week1Of2026StartsIn2025", "2025-12-29T00:00:00Z", "UTC", "2025122900", "20251229", "202601", "202512", "2025", "202512290000"},
	{"LeapDay2024", "2024-02-29T12:34:56Z", "UTC", "2024022912", "20240229", "202409", "202402", "2024", "202402291234"},
	{"LeapDay2028", "2028-02-29T23:59:59.999Z", "UTC", "2028022923", "20280229", "202809", "202802", "2028", "202802292359"},
	{"DayAfterLeapDay", "2024-03-01T00:00:00Z", "UTC", "2024030100", "20240301", "202409", "202403", "2024", "202403010000"},
	// New Year in UTC is still the old year in New York, and 2025-12-31 is in ISO week 2026-W01.
	{"NewYorkNewYearsEve", "2026-01-01T03:00:00Z", "America/New_York", "2025123122", "20251231", "202601", "202512", "2025", "202512312200"},
	{"NewYorkRepeatedHourFirst", "2026-11-01T05:30:00Z", "America/New_York", "2026110101", "20261101", "202644", "202611", "2026", "202611010130"},
	{"NewYorkRepeatedHourSecond", "2026-11-01T06:30:00Z", "America/New_York", "2026110101", "20261101", "202644", "202611", "2026", "202611010130"},
	{"KolkataBeforeMidnight", "2026-01-01T18:29:59.999Z", "Asia/Kolkata", "2026010123", "20260101", "202601", "202601", "2026", "202601012359"},
	{"KolkataMidnight", "2026-01-01T18:30:00Z", "Asia/Kolkata", "2026010200", "20260102", "202601", "202601", "2026", "202601020000"},
	{"KathmanduBeforeMidnight", "2026-12-31T18:14:59.999Z", "Asia/Kathmandu", "2026123123", "20261231", "202653", "202612", "2026", "202612312359"},
	{"KathmanduNewYear", "2026-12-31T18:15:00Z", "Asia/Kathmandu", "2027010100", "20270101", "202653", "202701", "2027", "202701010000"},
	{"LordHoweStandard", "2026-06-30T13:29:59.999Z", "Australia/Lord_Howe", "2026063023", "20260630", "202627", "202606", "2026", "202606302359"},
	{"LordHoweDaylight", "2026-12-31T12:59:59.999Z", "Australia/Lord_Howe", "2026123123", "20261231", "202653", "202612", "2026", "202612312359"},
	{"SantiagoAfterGap", "2026-09-06T04:00:00Z", "America/Santiago", "2026090601", "20260906", "202636", "202609", "2026", "202609060100"},
	{"SantiagoBeforeGap", "2026-09-06T03:59:59.999Z", "America/Santiago", "2026090523", "20260905", "202636", "202609", "2026", "202609052359"},
}

func TestPeriod_Key(t *testing.T) {
	for _, tt := range keyTests {
		t.Run(tt.name, func(t *testing.T) {
			at := instant(t, tt.at).In(zoneOf(t, tt.zone))
			for _, c := range []struct {
				p    odometer.Period
				want string
			}{{odometer.Hourly, tt.hourly}, {odometer.Daily, tt.daily}, {odometer.Weekly, tt.weekly}, {odometer.Monthly, tt.monthly}, {odometer.Yearly, tt.yearly}} {
				if got := c.p.Key(at); got != c.want {
					t.Errorf("%s key of %s in %s = %q, want %q", c.p, tt.at, tt.zone, got, c.want)
				}
				if got := string(c.p.AppendKey([]byte("x"), at)); got != "x"+c.want {
					t.Errorf("%s AppendKey = %q, want %q", c.p, got, "x"+c.want)
				}
			}
			if got, want := odometer.MinuteKey(at), tt.minute; got != want {
				t.Errorf("MinuteKey(%s in %s) = %q, want %q", tt.at, tt.zone, got, want)
			}
		})
	}
}

// boundsTests give the UTC bounds of periods; start is inclusive, end exclusive.
var boundsTests = []struct {
	name       string
	period     odometer.Period
	key, zone  string
	start, end string
}{
	{"DayBeforeNewYear", odometer.Daily, "20261231", "UTC", "2026-12-31T00:00:00Z", "2027-01-01T00:00:00Z"},
	{"HourBeforeNewYear", odometer.Hourly, "2026123123", "UTC", "2026-12-31T23:00:00Z", "2027-01-01T00:00:00Z"},
	{"Year2026", odometer.Yearly, "2026", "UTC", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"},
	{"LeapYear2024", odometer.Yearly, "2024", "UTC", "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"},
	{"Week53Of2026", odometer.Weekly, "202653", "UTC", "2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z"},
	{"Week53Of2020", odometer.Weekly, "202053", "UTC", "2020-12-28T00:00:00Z", "2021-01-04T00:00:00Z"},
	{"Week1Of2026", odometer.Weekly, "202601", "UTC", "2025-12-29T00:00:00Z", "2026-01-05T00:00:00Z"},
	{"Week1Of2027", odometer.Weekly, "202701", "UTC", "2027-01-04T00:00:00Z", "2027-01-11T00:00:00Z"},
	{"LeapFebruary2024", odometer.Monthly, "202402", "UTC", "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"},
	{"February2026", odometer.Monthly, "202602", "UTC", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"},
	{"LeapDay2024", odometer.Daily, "20240229", "UTC", "2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z"},
	{"LeapDay2028", odometer.Daily, "20280229", "UTC", "2028-02-29T00:00:00Z", "2028-03-01T00:00:00Z"},
	{"December", odometer.Monthly, "202612", "UTC", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"},
	// New York: a 23-hour day in March, a 25-hour day in November, and
	// the repeated hour 01 of 2026-11-01 is one period of two hours.
	{"NewYorkSpringForwardDay", odometer.Daily, "20260308", "America/New_York", "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z"},
	{"NewYorkFallBackDay", odometer.Daily, "20261101", "America/New_York", "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z"},
	{"NewYorkHourBeforeGap", odometer.Hourly, "2026030801", "America/New_York", "2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z"},
	{"NewYorkHourAfterGap", odometer.Hourly, "2026030803", "America/New_York", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"},
	{"NewYorkHourBeforeRepeat", odometer.Hourly, "2026110100", "America/New_York", "2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z"},
	{"NewYorkRepeatedHour", odometer.Hourly, "2026110101", "America/New_York", "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z"},
	{"NewYorkHourAfterRepeat", odometer.Hourly, "2026110102", "America/New_York", "2026-11-01T07:00:00Z", "2026-11-01T08:00:00Z"},
	{"NewYorkMarch", odometer.Monthly, "202603", "America/New_York", "2026-03-01T05:00:00Z", "2026-04-01T04:00:00Z"},
	{"NewYorkYear", odometer.Yearly, "2026", "America/New_York", "2026-01-01T05:00:00Z", "2027-01-01T05:00:00Z"},
	// Half- and three-quarter-hour offsets.
	{"KolkataDay", odometer.Daily, "20260101", "Asia/Kolkata", "2025-12-31T18:30:00Z", "2026-01-01T18:30:00Z"},
	{"KolkataHour", odometer.Hourly, "2026010100", "Asia/Kolkata", "2025-12-31T18:30:00Z", "2025-12-31T19:30:00Z"},
	{"KathmanduDay", odometer.Daily, "20270101", "Asia/Kathmandu", "2026-12-31T18:15:00Z", "2027-01-01T18:15:00Z"},
	{"KathmanduHour", odometer.Hourly, "2027010100", "Asia/Kathmandu", "2026-12-31T18:15:00Z", "2026-12-31T19:15:00Z"},
	{"KathmanduWeek53", odometer.Weekly, "202653", "Asia/Kathmandu", "2026-12-27T18:15:00Z", "2027-01-03T18:15:00Z"},
	// Lord Howe moves its clocks by half an hour: the hour 01 of
	// 2026-04-05 lasts 90 minutes, the hour 02 of 2026-10-04 30 minutes.
	{"LordHoweLongHour", odometer.Hourly, "2026040501", "Australia/Lord_Howe", "2026-04-04T14:00:00Z", "2026-04-04T15:30:00Z"},
	{"LordHoweLongDay", odometer.Daily, "20260405", "Australia/Lord_Howe", "2026-04-04T13:00:00Z", "2026-04-05T13:30:00Z"},
	{"LordHoweShortHour", odometer.Hourly, "2026100402", "Australia/Lord_Howe", "2026-10-03T15:30:00Z", "2026-10-03T16:00:00Z"},
	{"LordHoweShortDay", odometer.Daily, "20261004", "Australia/Lord_Howe", "2026-10-03T13:30:00Z", "2026-10-04T13:00:00Z"},
	// Santiago skips midnight: 2026-09-06 begins at 01:00 local (04:00Z)
	// and lasts 23 hours; in April the hour 23 of 2026-04-04 repeats.
	{"SantiagoDayWithoutMidnight", odometer.Daily, "20260906", "America/Santiago", "2026-09-06T04:00:00Z", "2026-09-07T03:00:00Z"},
	{"SantiagoDayBeforeGap", odometer.Daily, "20260905", "America/Santiago", "2026-09-05T04:00:00Z", "2026-09-06T04:00:00Z"},
	{"SantiagoFirstHourAfterGap", odometer.Hourly, "2026090601", "America/Santiago", "2026-09-06T04:00:00Z", "2026-09-06T05:00:00Z"},
	{"SantiagoWeekWithGap", odometer.Weekly, "202636", "America/Santiago", "2026-08-31T04:00:00Z", "2026-09-07T03:00:00Z"},
	{"SantiagoSeptember", odometer.Monthly, "202609", "America/Santiago", "2026-09-01T04:00:00Z", "2026-10-01T03:00:00Z"},
	{"SantiagoLongDay", odometer.Daily, "20260404", "America/Santiago", "2026-04-04T03:00:00Z", "2026-04-05T04:00:00Z"},
	{"SantiagoRepeatedHour", odometer.Hourly, "2026040423", "America/Santiago", "2026-04-05T02:00:00Z", "2026-04-05T04:00:00Z"},
}

func TestPeriod_Bounds(t *testing.T) {
	for _, tt := range boundsTests {
		t.Run(tt.name, func(t *testing.T) {
			loc := zoneOf(t, tt.zone)
			start, end, err := tt.period.Bounds(tt.key, loc)
			if err != nil {
				t.Fatalf("Bounds(%s %q, %s): %v", tt.period, tt.key, tt.zone, err)
			}
			if got, want := start, instant(t, tt.start); !got.Equal(want) {
				t.Errorf("start = %s, want %s", got, want)
			}
			if got, want := end, instant(t, tt.end); !got.Equal(want) {
				t.Errorf("end = %s, want %s", got, want)
			}
			if got, want := start.Location(), time.UTC; got != want {
				t.Errorf("start location = %v, want UTC", got)
			}
			if got, want := tt.period.Key(start.In(loc)), tt.key; got != want {
				t.Errorf("key of start = %q, want %q", got, want)
			}
			if got, want := tt.period.Key(end.Add(-time.Millisecond).In(loc)), tt.key; got != want {
				t.Errorf("key of the last millisecond = %q, want %q", got, want)
			}
			if got := tt.period.Key(end.In(loc)); got == tt.key {
				t.Errorf("key of end = %q, want the next period", got)
			}
		})
	}
}

func TestPeriod_Bounds_DayLengths(t *testing.T) {
	ny := zoneOf(t, "America/New_York")
	for _, tt := range []struct {
		key  string
		want time.Duration
	}{
		{"20260307", 24 * time.Hour},
		{"20260308", 23 * time.Hour},
		{"20260309", 24 * time.Hour},
		{"20261031", 24 * time.Hour},
		{"20261101", 25 * time.Hour},
		{"20261102", 24 * time.Hour},
	} {
		start, end, err := odometer.Daily.Bounds(tt.key, ny)
		if err != nil {
			t.Fatal(err)
		}
		if got := end.Sub(start); got != tt.want {
			t.Errorf("New York day %s lasts %v, want %v", tt.key, got, tt.want)
		}
	}

	santiago := zoneOf(t, "America/Santiago")
	start, _, err := odometer.Daily.Bounds("20260906", santiago)
	if err != nil {
		t.Fatal(err)
	}
	if h, m := start.In(santiago).Hour(), start.In(santiago).Minute(); h != 1 || m != 0 {
		t.Errorf("Santiago 2026-09-06 starts at %02d:%02d local, want 01:00", h, m)
	}
}

var badKeys = []struct {
	period odometer.Period
	key    string
	zone   string
}{
	{odometer.Hourly, "", "UTC"},
	{odometer.Hourly, "202601010", "UTC"},
	{odometer.Hourly, "20260101000", "UTC"},
	{odometer.Hourly, "2026010124", "UTC"},
	{odometer.Hourly, "20260101-1", "UTC"},
	{odometer.Hourly, "+026010100", "UTC"},
	{odometer.Hourly, "2026013200", "UTC"},
	{odometer.Hourly, "2026030802", "America/New_York"}, // skipped by daylight saving time
	{odometer.Hourly, "2026090600", "America/Santiago"}, // skipped by daylight saving time
	{odometer.Hourly, "2026100402", "Australia/Sydney"}, // skipped by daylight saving time
	{odometer.Daily, "2026010", "UTC"},
	{odometer.Daily, "20261301", "UTC"},
	{odometer.Daily, "20260001", "UTC"},
	{odometer.Daily, "20260100", "UTC"},
	{odometer.Daily, "20260132", "UTC"},
	{odometer.Daily, "20260231", "UTC"},
	{odometer.Daily, "20230229", "UTC"},
	{odometer.Daily, "2026 101", "UTC"},
	{odometer.Daily, "2026-1-1", "UTC"},
	{odometer.Daily, "２０２６０１０１", "UTC"},
	{odometer.Weekly, "202600", "UTC"},
	{odometer.Weekly, "202654", "UTC"},
	{odometer.Weekly, "202453", "UTC"}, // 2024 has 52 ISO weeks
	{odometer.Weekly, "20261", "UTC"},
	{odometer.Weekly, "2026W1", "UTC"},
	{odometer.Monthly, "202600", "UTC"},
	{odometer.Monthly, "202613", "UTC"},
	{odometer.Monthly, "20261", "UTC"},
	{odometer.Monthly, "2026-1", "UTC"},
	{odometer.Yearly, "", "UTC"},
	{odometer.Yearly, "26", "UTC"},
	{odometer.Yearly, "20x6", "UTC"},
	{odometer.Yearly, "-026", "UTC"},
	{odometer.Yearly, "+026", "UTC"},
	{odometer.Yearly, "20260", "UTC"},
}

func TestPeriod_Bounds_ErrInvalid(t *testing.T) {
	for _, tt := range badKeys {
		_, _, err := tt.period.Bounds(tt.key, zoneOf(t, tt.zone))
		if got, want := odometer.ErrorCode(err), odometer.EINVALID; got != want {
			t.Errorf("Bounds(%s %q, %s) code = %q (err %v), want %q", tt.period, tt.key, tt.zone, got, err, want)
		}
	}
	if _, _, err := odometer.Period("quarterly").Bounds("202601", time.UTC); err == nil {
		t.Error("Bounds of an unknown period: no error")
	}
}

// roundTripZones are the zones of the random round trips: whole, half and
// three-quarter hour offsets, daylight saving time of one hour and of half
// an hour, and a change that skips midnight.
var roundTripZones = []string{
	"UTC", "America/New_York", "Europe/Oslo", "Asia/Kolkata", "Asia/Kathmandu",
	"Australia/Lord_Howe", "America/Santiago", "Pacific/Chatham", "America/St_Johns",
}

func TestPeriod_Bounds_RoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lo := instant(t, "2012-01-01T00:00:00Z").UnixMilli()
	hi := instant(t, "2060-01-01T00:00:00Z").UnixMilli()
	n := 4000
	if testing.Short() {
		n = 500
	}
	for _, name := range roundTripZones {
		loc := zoneOf(t, name)
		for i := 0; i < n; i++ {
			ms := lo + rng.Int64N(hi-lo)
			if i%4 == 0 {
				ms -= ms % (15 * 60 * 1000) // period boundaries fall on slot boundaries
			}
			at := time.UnixMilli(ms).In(loc)
			for _, p := range odometer.Periods {
				if name == "Pacific/Chatham" && p == odometer.Hourly {
					// Chatham goes back from 03:45 to 02:45: the hour 03 of
					// that day comes in two pieces with a piece of the hour 02
					// between them, and no one interval is its period.
					continue
				}
				key := p.Key(at)
				start, end, err := p.Bounds(key, loc)
				if err != nil {
					t.Fatalf("%s: Bounds(%s %q) of %s: %v", name, p, key, at, err)
				}
				if at.Before(start) || !at.Before(end) {
					t.Fatalf("%s: %s %q of %s: bounds [%s, %s) do not hold it", name, p, key, at, start, end)
				}
				if got := p.Key(start.In(loc)); got != key {
					t.Fatalf("%s: %s key of start %s = %q, want %q", name, p, start, got, key)
				}
				if got := p.Key(end.In(loc)); got == key {
					t.Fatalf("%s: %s key of end %s = %q, want the next period", name, p, end, got)
				}
				if got := p.Key(start.Add(-time.Millisecond).In(loc)); got == key {
					t.Fatalf("%s: %s key before start %s = %q, want the previous period", name, p, start, got)
				}
				if got, want := p.PeriodStart(at, loc), start; !got.Equal(want) {
					t.Fatalf("%s: %s PeriodStart(%s) = %s, want %s", name, p, at, got, want)
				}
				if start.UnixMilli()%(15*60*1000) != 0 || end.UnixMilli()%(15*60*1000) != 0 {
					t.Fatalf("%s: %s %q bounds [%s, %s) are not on slot boundaries", name, p, key, start, end)
				}
			}
		}
	}
}

func TestSlotOf(t *testing.T) {
	const slot = int64(15 * 60 * 1000)
	for _, tt := range []struct {
		ms, want int64
	}{
		{0, 0},
		{1, 0},
		{slot - 1, 0},
		{slot, 1},
		{-1, -1},
		{-slot + 1, -1},
		{-slot, -1},
		{-slot - 1, -2},
		{-2 * slot, -2},
		{instant(t, "1969-12-31T23:45:00Z").UnixMilli(), -1},
		{instant(t, "1969-12-31T23:44:59.999Z").UnixMilli(), -2},
		{instant(t, "1900-01-01T00:00:00Z").UnixMilli(), instant(t, "1900-01-01T00:00:00Z").UnixMilli() / slot},
	} {
		if got := odometer.SlotOf(tt.ms); got != tt.want {
			t.Errorf("SlotOf(%d) = %d, want %d", tt.ms, got, tt.want)
		}
	}

	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 10000; i++ {
		ms := rng.Int64N(1<<44) - 1<<43
		s := odometer.SlotOf(ms)
		start := odometer.SlotStart(s)
		if start.UnixMilli() > ms || ms >= start.Add(odometer.SlotSize).UnixMilli() {
			t.Fatalf("SlotOf(%d) = %d, which starts at %d", ms, s, start.UnixMilli())
		}
		d := odometer.DayOfSlot(s)
		if s < d*odometer.SlotsPerDay || s >= (d+1)*odometer.SlotsPerDay {
			t.Fatalf("DayOfSlot(%d) = %d, which does not hold it", s, d)
		}
		if got, want := d, floorDivInt64(ms, 24*60*60*1000); got != want {
			t.Fatalf("DayOfSlot(SlotOf(%d)) = %d, want UTC day %d", ms, got, want)
		}
	}
	for _, tt := range []struct{ slot, day int64 }{{0, 0}, {95, 0}, {96, 1}, {-1, -1}, {-96, -1}, {-97, -2}} {
		if got := odometer.DayOfSlot(tt.slot); got != tt.day {
			t.Errorf("DayOfSlot(%d) = %d, want %d", tt.slot, got, tt.day)
		}
	}
}

// floorDivInt64 is floor(a / b) for b > 0.
func floorDivInt64(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func TestParsePeriod(t *testing.T) {
	for _, p := range odometer.Periods {
		got, err := odometer.ParsePeriod(string(p))
		if err != nil || got != p {
			t.Errorf("ParsePeriod(%q) = %q, %v", p, got, err)
		}
	}
	for _, s := range []string{"", "Daily", "quarterly", "day"} {
		_, err := odometer.ParsePeriod(s)
		if got, want := odometer.ErrorCode(err), odometer.EINVALID; got != want {
			t.Errorf("ParsePeriod(%q) code = %q, want %q", s, got, want)
		}
	}
}
