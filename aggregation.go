package odometer

import (
	"encoding/binary"
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
	// States holds the partial state of each event type.
	States map[string]*State
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

// Values are what an aggregation shows for each event type.
type Values struct {
	Events      map[string]float64 `json:"events"`
	EventCounts map[string]int64   `json:"eventCounts"`
}

// Values computes the values of every event type with its configured op.
// Event types no longer in the configuration are shown with sum.
func (a *Aggregation) Values(c *Config) *Values {
	v := &Values{Events: make(map[string]float64, len(a.States)), EventCounts: make(map[string]int64, len(a.States))}
	for t, s := range a.States {
		op := OpSum
		if et, ok := c.Events[t]; ok {
			op = et.Op
		}
		v.Events[t] = s.Value(op)
		v.EventCounts[t] = s.Count
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

// EncodeStates encodes an aggregation's states, sorted by event type.
func EncodeStates(states map[string]*State) []byte {
	names := make([]string, 0, len(states))
	for n := range states {
		names = append(names, n)
	}
	sort.Strings(names)
	b := []byte{} // never nil: a period whose events were all deleted has no states
	for _, n := range names {
		b = binary.AppendUvarint(b, uint64(len(n)))
		b = append(b, n...)
		b = states[n].AppendBinary(b)
	}
	return b
}

// DecodeStates decodes what EncodeStates wrote.
func DecodeStates(b []byte) (map[string]*State, error) {
	m := map[string]*State{}
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return nil, errState
		}
		name := string(b[k : k+int(n)])
		b = b[k+int(n):]
		s := new(State)
		var err error
		if b, err = DecodeState(b, s); err != nil {
			return nil, err
		}
		m[name] = s
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
