package odometer

import (
	"sort"
	"strings"
	"time"
)

// Aggregation is the aggregate of one customer's events over one calendar
// period, every event type together: the template's aggregation document.
type Aggregation struct {
	CustomerID string
	Period     Period
	PeriodKey  string
	// PeriodStart is the first instant of the period; PeriodEnd the first
	// instant after it (the JSON shows the last millisecond, .999Z).
	PeriodStart, PeriodEnd time.Time
	// Timestamp is when the aggregation last changed.
	Timestamp time.Time
	// States holds the partial state of each meter (an event type is one).
	States map[string]State
	// Complete: the period has ended (plus the grace period) and its
	// aggregation.completed notification is recorded.
	Complete bool
	// Revision is 0 while the period is open, 1 once complete, and goes up
	// by one each time late events change a completed period.
	Revision int
	// Dirty: events arrived after completion and a new revision is due.
	Dirty bool
	// Published are the values of the last notified revision.
	Published *Values
	Webhook   WebhookStatus
}

// AggregationKey names an aggregation.
type AggregationKey struct {
	CustomerID string
	Period     Period
	Key        string
}

// Key returns the aggregation's key.
func (a *Aggregation) Key() AggregationKey {
	return AggregationKey{a.CustomerID, a.Period, a.PeriodKey}
}

// ID is the template's document id: {customerId}_{period}_{periodKey}.
func (a *Aggregation) ID() string { return AggregationID(a.CustomerID, a.Period, a.PeriodKey) }

// AggregationID returns {customerId}_{period}_{periodKey}.
func AggregationID(customerID string, p Period, key string) string {
	return customerID + "_" + string(p) + "_" + key
}

// Values are what an aggregation shows for each meter.
type Values struct {
	Events      map[string]float64 `json:"events"`
	EventCounts map[string]int64   `json:"eventCounts"`
	// Groups holds the groups of each meter with groupBy.
	Groups map[string][]GroupValue `json:"groups,omitempty"`
}

// Values computes the value of every meter with its configured op. A
// stored state of a name that is no longer a meter is shown with sum if it
// is the template's kind of state, as event types removed from the
// configuration always were, and not shown otherwise.
func (a *Aggregation) Values(c *Config) *Values {
	return StateValues(c, a.States, a.PeriodStart, a.PeriodEnd)
}

// StateValues computes what states of the span [start, end) show, by
// meter name.
func StateValues(c *Config, states map[string]State, start, end time.Time) *Values {
	v := &Values{Events: make(map[string]float64, len(states)), EventCounts: make(map[string]int64, len(states))}
	for name, s := range states {
		op := OpSum
		m := c.Meter(name)
		if m != nil {
			op = m.Op
		} else if s.kind() != statsKind {
			continue
		}
		span := m.span(start, end)
		v.Events[name] = value(op, s, span)
		v.EventCounts[name] = s.Count()
		if m != nil && m.Grouped() {
			if v.Groups == nil {
				v.Groups = map[string][]GroupValue{}
			}
			v.Groups[name] = m.groups(s, span)
		}
	}
	return v
}

// WebhookStatus is the delivery state of an aggregation's latest notification.
type WebhookStatus struct {
	Delivered     bool       `json:"delivered"`
	Attempts      int        `json:"attempts"`
	DeliveredAt   *time.Time `json:"deliveredAt,omitempty"`
	LastError     string     `json:"lastError,omitempty"`
	LastAttemptAt *time.Time `json:"lastAttemptAt,omitempty"`
	DryRun        bool       `json:"dryRun,omitempty"`
}

// statesFormat is the first byte of an aggregation's states since states
// carry their kind and version. Before, the first byte was the length of
// the first name, never 0.
const statesFormat = 0

// EncodeStates encodes an aggregation's states, sorted by meter name.
func EncodeStates(states map[string]State) []byte {
	names := make([]string, 0, len(states))
	for n := range states {
		names = append(names, n)
	}
	sort.Strings(names)
	b := []byte{} // never nil: a period whose events were all deleted has no states
	if len(states) == 0 {
		return b
	}
	b = append(b, statesFormat)
	for _, n := range names {
		b = appendString(b, n)
		b = AppendState(b, states[n])
	}
	return b
}

// DecodeStates decodes what EncodeStates wrote, and what it wrote before
// states carried a kind (each state then the template's).
func DecodeStates(b []byte) (map[string]State, error) {
	m := map[string]State{}
	legacy := len(b) > 0 && b[0] != statesFormat
	if !legacy && len(b) > 0 {
		if b = b[1:]; len(b) == 0 {
			return nil, errState // the format byte is written only before states
		}
	}
	r := &reader{b: b}
	for len(r.b) > 0 && !r.err {
		name := string(r.bytes(r.uvarint()))
		s := readState(r, legacy)
		if r.err {
			break
		}
		m[name] = s
	}
	if r.err {
		return nil, errState
	}
	return m, nil
}

// AggregationFilter selects aggregations. From and To bound PeriodStart.
type AggregationFilter struct {
	CustomerID string
	Period     Period
	From, To   *time.Time
	Complete   *bool
	Limit      int
	// Cursor continues a previous page.
	Cursor string
}

// DefaultPageSize is the page of a filter that gives no Limit.
const DefaultPageSize = 100

// PageSize is the filter's Limit, or DefaultPageSize when it gives none.
func (f AggregationFilter) PageSize() int {
	if f.Limit <= 0 {
		return DefaultPageSize
	}
	return f.Limit
}

// ParseCustomerOfID splits an aggregation id into its parts.
func ParseAggregationID(id string) (customerID string, p Period, key string, ok bool) {
	i := strings.LastIndexByte(id, '_')
	if i < 0 {
		return "", "", "", false
	}
	j := strings.LastIndexByte(id[:i], '_')
	if j < 0 {
		return "", "", "", false
	}
	p, err := ParsePeriod(id[j+1 : i])
	if err != nil {
		return "", "", "", false
	}
	return id[:j], p, id[i+1:], true
}
