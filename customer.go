package odometer

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// Limits on a customer's profile.
const (
	MaxCustomerNameBytes     = 255
	MaxCustomerMetadataBytes = 16 << 10
)

// Customer is a customer of the vendor: the profile set with PUT
// /customers/{id}, and what its events say of it. A customer exists once
// it has a profile or an event; one seen only through events has no
// profile (HasProfile is false) and the defaults: the config's time zone,
// monthly cycles on the calendar month.
type Customer struct {
	ID   string
	Name string
	// Timezone is an IANA name; "" means the config's.
	Timezone string
	// BillingAnchor is an instant of the day the cycles start on, in the
	// customer's zone; nil means calendar cycles.
	BillingAnchor   *time.Time
	BillingInterval BillingInterval
	// Metadata is a compact JSON object; never nil once validated.
	Metadata json.RawMessage
	// BillingHistory is the billing settings the customer had before, each
	// until the change of them took effect (see Reschedule).
	BillingHistory []BillingSegment
	// CreatedAt and UpdatedAt are those of the profile; zero without one.
	CreatedAt, UpdatedAt time.Time

	// FirstEventAt and LastEventAt are the event times of the customer's
	// earliest and latest events (by their own timestamp), nil when it
	// has none. They are read, never written.
	FirstEventAt, LastEventAt *time.Time
}

// HasProfile reports whether the customer was set with PUT /customers/{id}.
func (c *Customer) HasProfile() bool { return !c.CreatedAt.IsZero() }

// Location returns the customer's zone, or def when it has none (or one
// this host cannot load, which Validate refuses).
func (c *Customer) Location(def *time.Location) *time.Location {
	if c.Timezone != "" {
		if loc, err := time.LoadLocation(c.Timezone); err == nil {
			return loc
		}
	}
	if def == nil {
		return time.UTC
	}
	return def
}

// Earliest and latest billing anchors: cycles are computed from Unix
// time, and a date past 2200 is a typing mistake.
var (
	MinBillingAnchor = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxBillingAnchor = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Validate checks a profile and fills its defaults (the interval, an
// empty metadata object). It returns EINVALID with a message naming the
// field and what is allowed.
func (c *Customer) Validate() error {
	if err := ValidateCustomerID(c.ID); err != nil {
		return Errorf(EINVALID, "the customer id %s", strings.TrimPrefix(ErrorMessage(err), "customerId "))
	}
	if len(c.Name) > MaxCustomerNameBytes {
		return Errorf(EINVALID, "name must be at most %d bytes", MaxCustomerNameBytes)
	}
	if !printable(c.Name) {
		return Errorf(EINVALID, "name must be valid UTF-8 without control characters")
	}
	if c.Timezone != "" {
		if err := ValidateTimezone(c.Timezone); err != nil {
			return err
		}
	}
	if c.BillingInterval == "" {
		c.BillingInterval = IntervalMonth
	}
	if _, err := ParseBillingInterval(string(c.BillingInterval)); err != nil {
		return err
	}
	if a := c.BillingAnchor; a != nil {
		if a.Before(MinBillingAnchor) || !a.Before(MaxBillingAnchor) {
			return Errorf(EINVALID, "billingAnchor must be between 1970-01-01 and 2199-12-31, not %s", a.UTC().Format(time.RFC3339))
		}
		t := a.UTC().Truncate(time.Millisecond)
		c.BillingAnchor = &t
	}
	if len(c.Metadata) == 0 || string(c.Metadata) == "null" {
		c.Metadata = json.RawMessage(`{}`)
	}
	if len(c.Metadata) > MaxCustomerMetadataBytes {
		return Errorf(EINVALID, "metadata must be at most %d bytes", MaxCustomerMetadataBytes)
	}
	var buf bytes.Buffer
	if c.Metadata[0] != '{' || json.Compact(&buf, c.Metadata) != nil {
		return Errorf(EINVALID, "metadata must be a JSON object, such as {\"plan\": \"pro\"}")
	}
	c.Metadata = buf.Bytes()
	return nil
}

// ValidateTimezone checks an IANA zone name. Local (the host's zone) is
// refused: it would change with the host.
func ValidateTimezone(name string) error {
	bad := func() error {
		if len(name) > 64 {
			name = name[:64] + "..."
		}
		return Errorf(EINVALID, "timezone must be an IANA time zone name such as \"Europe/Paris\" or \"UTC\", not %q", name)
	}
	if name == "" || name == "Local" || len(name) > 64 || !printable(name) {
		return bad()
	}
	if _, err := time.LoadLocation(name); err != nil {
		return bad()
	}
	return nil
}

// CustomerFilter selects customers, sorted by id.
type CustomerFilter struct {
	// Q, when set, keeps the customers whose id or name starts with it.
	Q string
	// ID, when set, keeps only this customer (a pinned key's).
	ID     string
	Limit  int
	Cursor string
}

// CustomerStore keeps customers' profiles, and finds customers among the
// profiles and the events.
type CustomerStore interface {
	// PutCustomer creates or replaces the profile of c.ID, validated by
	// the caller. It keeps the CreatedAt of a profile it replaces, and
	// sets c.CreatedAt accordingly; UpdatedAt is the caller's.
	PutCustomer(ctx context.Context, c *Customer) error
	// FindCustomer returns the customer with its profile, if any, and the
	// times of its first and last events (those not yet aggregated
	// included). ENOTFOUND when it has neither a profile nor an event.
	FindCustomer(ctx context.Context, id string) (*Customer, error)
	// FindProfile returns the customer's profile alone, without reading
	// its events. ENOTFOUND when it has no profile.
	FindProfile(ctx context.Context, id string) (*Customer, error)
	// FindCustomers returns up to filter.Limit customers, profiles and
	// customers seen only through events together, sorted by id, and the
	// cursor of the next page ("" at the end). Their event times are not
	// read (FindCustomer has them). A malformed cursor is EINVALID.
	FindCustomers(ctx context.Context, filter CustomerFilter) ([]*Customer, string, error)
}

// NewCustomer returns a customer with no profile: what one seen only
// through events shows.
func NewCustomer(id string) *Customer {
	return &Customer{ID: id, BillingInterval: IntervalMonth, Metadata: json.RawMessage(`{}`)}
}

// SlotsSpan returns the event times (Unix ms) of the earliest and latest
// events folded into slots, from the states of the template's ops, which
// keep them: every event is folded into the meter of its event type, one
// of those ops. ok is false when no such state has an event.
func SlotsSpan(slots map[int64]State) (first, last int64, ok bool) {
	for _, st := range slots {
		s, isStats := st.(*StatsState)
		if !isStats || s.N == 0 {
			continue
		}
		if !ok || s.First.Time < first {
			first = s.First.Time
		}
		if !ok || s.Last.Time > last {
			last = s.Last.Time
		}
		ok = true
	}
	return first, last, ok
}

// EncodeCustomerCursor returns the cursor of the page after the customer id.
func EncodeCustomerCursor(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(id))
}

// DecodeCustomerCursor returns the customer id of a cursor, or EINVALID.
func DecodeCustomerCursor(cursor string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || ValidateCustomerID(string(b)) != nil {
		return "", Errorf(EINVALID, "cursor is not valid")
	}
	return string(b), nil
}

// MergeCustomers merges a page of profiles and a page of the ids of
// customers seen through events, each sorted by id and holding up to
// limit+1 entries past the cursor, into one page of at most limit
// customers and the cursor of the next ("" at the end).
func MergeCustomers(profiles []*Customer, ids []string, limit int) ([]*Customer, string) {
	out := make([]*Customer, 0, min(limit+1, len(profiles)+len(ids)))
	i, j := 0, 0
	for len(out) <= limit && (i < len(profiles) || j < len(ids)) {
		switch {
		case j == len(ids) || (i < len(profiles) && profiles[i].ID < ids[j]):
			out = append(out, profiles[i])
			i++
		case i == len(profiles) || ids[j] < profiles[i].ID:
			out = append(out, NewCustomer(ids[j]))
			j++
		default: // the same customer: its profile
			out = append(out, profiles[i])
			i++
			j++
		}
	}
	if len(out) > limit {
		return out[:limit], EncodeCustomerCursor(out[limit-1].ID)
	}
	return out, ""
}

// PageBound returns the last id a page can hold given a page of profiles
// and one of other customers, or "" when any id can: a third source needs
// only the ids up to it, since the page holds the first limit ids of the
// union and there is a next page anyway (the two hold more than limit). Reading the customers of the events
// not yet aggregated up to it, not all of them, saves sorting them.
func PageBound(profiles []*Customer, ids []string, limit int) string {
	all := make([]string, 0, len(profiles)+len(ids))
	for _, c := range profiles {
		all = append(all, c.ID)
	}
	all = MergeIDs(all, ids)
	if len(all) > limit {
		return all[limit-1]
	}
	return ""
}

// MergeIDs merges sorted lists of ids into one, sorted, without repeats.
func MergeIDs(lists ...[]string) []string {
	var all []string
	for _, l := range lists {
		all = append(all, l...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}
