package odometer

import (
	"encoding/base64"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The customer directory's order by usage: every customer with usage in
// its current cycle, by the value of one meter in that cycle, read from
// the open aggregations of the cycle's period (see docs/DASHBOARD.md).

// CyclePeriod returns the period whose aggregations hold each customer's
// current cycle: billing, each customer's own cycle, when it is
// configured; else monthly, the calendar month in the configuration's
// zone. EINVALID when neither is configured.
func (c *Config) CyclePeriod() (Period, error) {
	switch {
	case hasPeriod(c, Billing):
		return Billing, nil
	case hasPeriod(c, Monthly):
		return Monthly, nil
	}
	return "", Errorf(EINVALID, "usage this cycle needs the billing or the monthly period in the configuration's periods: it comes from their aggregations")
}

// UsageCycle is a customer's current cycle, as its aggregation has it.
type UsageCycle struct {
	Key string
	// Start is the first instant; End the first instant after it.
	Start, End time.Time
	// Location is the cycle's zone, whose days its key and dates are: the
	// customer's for a billing cycle, the configuration's for a month.
	Location *time.Location
}

// CustomerUsage is a customer's usage of one meter in its current cycle.
// A customer with usage of other meters but none of this one has Value
// and Count 0.
type CustomerUsage struct {
	CustomerID string
	Value      float64
	Count      int64
	Cycle      *UsageCycle
	// Profile is the customer's profile, nil without one.
	Profile *Customer
}

// UsageRanking is every customer's usage of one meter in the current
// cycle, ascending by value, ties by customer id; descending is its exact
// reverse.
type UsageRanking []CustomerUsage

// CycleAggregation is a customer's open aggregation of its current cycle
// and its profile (nil without one), as a store reads them for the
// directory.
type CycleAggregation struct {
	Aggregation *Aggregation
	Profile     *Customer
}

// RankUsage returns the ranking of every meter of cfg over aggs, each a
// customer's aggregation of its current cycle. A state of a meter whose
// op has changed since it was folded counts as no usage.
func RankUsage(cfg *Config, aggs []CycleAggregation) map[string]UsageRanking {
	names := cfg.MeterNames()
	out := make(map[string]UsageRanking, len(names))
	meters := make([]*Meter, len(names))
	kinds := make([]State, len(names)) // an empty state of each meter, to compare kinds with
	for i, name := range names {
		out[name] = make(UsageRanking, 0, len(aggs))
		meters[i] = cfg.Meter(name)
		kinds[i] = meters[i].NewState()
	}
	for _, ca := range aggs {
		a := ca.Aggregation
		cyc := &UsageCycle{Key: a.PeriodKey, Start: a.PeriodStart, End: a.PeriodEnd, Location: cfg.Location}
		if a.Period == Billing {
			p := ca.Profile
			if p == nil {
				p = NewCustomer(a.CustomerID)
			}
			_, _, cyc.Location = p.cycleAt(a.PeriodStart, cfg.Location)
		}
		for i, name := range names {
			u := CustomerUsage{CustomerID: a.CustomerID, Cycle: cyc, Profile: ca.Profile}
			m := meters[i]
			if st := a.States[name]; st != nil && st.Count() > 0 && sameKind(kinds[i], st) {
				u.Value, u.Count = m.ValueOf(st, a.PeriodStart, a.PeriodEnd), st.Count()
				if math.IsNaN(u.Value) || math.IsInf(u.Value, 0) {
					u.Value = 0
				}
			}
			out[name] = append(out[name], u)
		}
	}
	for _, r := range out {
		slices.SortFunc(r, compareUsage)
	}
	return out
}

// compareUsage orders by value, then by id.
func compareUsage(a, b CustomerUsage) int {
	if a.Value != b.Value {
		if a.Value < b.Value {
			return -1
		}
		return 1
	}
	return strings.Compare(a.CustomerID, b.CustomerID)
}

// UsageFilter selects a page of a ranking.
type UsageFilter struct {
	// Q, when set, keeps the customers whose id or name starts with it.
	Q string
	// ID, when set, keeps only this customer (a pinned key's).
	ID    string
	Desc  bool
	Limit int
	// Cursor continues after the page that gave it.
	Cursor string
}

// Page returns up to f.Limit customers of the ranking after f.Cursor, in
// f's order, and the cursor of the next page ("" at the end). The cursor
// is the last customer's value and id, so a page follows on from where
// the previous one ended even when the ranking was read again between
// them. A malformed cursor is EINVALID.
func (r UsageRanking) Page(f UsageFilter) ([]CustomerUsage, string, error) {
	i, step := 0, 1
	if f.Desc {
		i, step = len(r)-1, -1
	}
	if f.Cursor != "" {
		after, err := decodeUsageCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		at, found := slices.BinarySearchFunc(r, after, compareUsage)
		switch {
		case f.Desc:
			i = at - 1
		case found:
			i = at + 1
		default:
			i = at
		}
	}
	out := []CustomerUsage{}
	for ; i >= 0 && i < len(r); i += step {
		u := r[i]
		if f.ID != "" && u.CustomerID != f.ID {
			continue
		}
		if f.Q != "" && !strings.HasPrefix(u.CustomerID, f.Q) && (u.Profile == nil || !strings.HasPrefix(u.Profile.Name, f.Q)) {
			continue
		}
		if len(out) == f.Limit {
			return out, encodeUsageCursor(out[len(out)-1]), nil
		}
		out = append(out, u)
	}
	return out, "", nil
}

// encodeUsageCursor writes a customer's place in a ranking: its value and
// its id.
func encodeUsageCursor(u CustomerUsage) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatFloat(u.Value, 'g', -1, 64) + " " + u.CustomerID))
}

func decodeUsageCursor(cursor string) (CustomerUsage, error) {
	bad := Errorf(EINVALID, "cursor is not valid")
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return CustomerUsage{}, bad
	}
	v, id, ok := strings.Cut(string(b), " ")
	f, err := strconv.ParseFloat(v, 64)
	if !ok || err != nil || math.IsNaN(f) || math.IsInf(f, 0) || ValidateCustomerID(id) != nil {
		return CustomerUsage{}, bad
	}
	return CustomerUsage{CustomerID: id, Value: f}, nil
}
