package http

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/odometer-dev/odometer"
)

// CustomerRecord is a customer as the API shows it (and the client reads
// it).
type CustomerRecord struct {
	ID              string          `json:"id"`
	Name            string          `json:"name,omitempty"`
	Timezone        string          `json:"timezone,omitempty"`
	BillingAnchor   string          `json:"billingAnchor,omitempty"`
	BillingInterval string          `json:"billingInterval"`
	Metadata        json.RawMessage `json:"metadata"`
	CreatedAt       string          `json:"createdAt,omitempty"`
	UpdatedAt       string          `json:"updatedAt,omitempty"`
	FirstEventAt    string          `json:"firstEventAt,omitempty"`
	LastEventAt     string          `json:"lastEventAt,omitempty"`
	CurrentCycle    *CycleRecord    `json:"currentCycle,omitempty"`
	// Usage is the customer's usage of one meter in its current cycle, in
	// GET /customers?sort=usage.
	Usage *UsageRecord `json:"usage,omitempty"`
}

// CycleRecord is a billing cycle and its usage so far, in GET
// /customers/{id}. PeriodEnd is its last millisecond, as an aggregation's.
type CycleRecord struct {
	PeriodStart string                           `json:"periodStart"`
	PeriodEnd   string                           `json:"periodEnd"`
	PeriodKey   string                           `json:"periodKey"`
	Timezone    string                           `json:"timezone"`
	Events      map[string]float64               `json:"events"`
	EventCounts map[string]int64                 `json:"eventCounts"`
	Groups      map[string][]odometer.GroupValue `json:"groups,omitempty"`
}

func optTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return odometer.FormatTime(*t)
}

func toCustomerJSON(c *odometer.Customer) CustomerRecord {
	out := CustomerRecord{ID: c.ID, Name: c.Name, Timezone: c.Timezone, BillingAnchor: optTime(c.BillingAnchor),
		BillingInterval: string(c.BillingInterval), Metadata: c.Metadata,
		FirstEventAt: optTime(c.FirstEventAt), LastEventAt: optTime(c.LastEventAt)}
	if c.HasProfile() {
		out.CreatedAt, out.UpdatedAt = odometer.FormatTime(c.CreatedAt), odometer.FormatTime(c.UpdatedAt)
	}
	if len(out.Metadata) == 0 {
		out.Metadata = json.RawMessage(`{}`)
	}
	return out
}

// customerFields are the keys of a PUT /customers/{id} body.
var customerFields = []string{"name", "timezone", "billingAnchor", "billingInterval", "metadata"}

const customerBodyExample = `a JSON object such as {"name": "Acme", "timezone": "Europe/Paris", "billingAnchor": "2026-01-15T00:00:00+01:00", "billingInterval": "month", "metadata": {"plan": "pro"}}`

// handlePutCustomer is PUT /customers/{id}: creates or replaces the
// customer's profile, and answers the customer as GET does.
func (s *Server) handlePutCustomer(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, s.MaxBodyBytes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := decodeCustomer(r.PathValue("id"), body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c.UpdatedAt = s.Now()
	if err := odometer.SaveCustomer(r.Context(), s.Customers, c, s.Now(), s.Config().Location); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeCustomer(w, r, c.ID)
}

// decodeCustomer reads a PUT body: every key optional, unknown keys
// refused, each wrong type named. An empty body is a profile of defaults.
func decodeCustomer(id string, body []byte) (*odometer.Customer, error) {
	c := &odometer.Customer{ID: id}
	if len(trimSpace(body)) == 0 {
		return c, c.Validate()
	}
	var in struct {
		Name            json.RawMessage `json:"name"`
		Timezone        json.RawMessage `json:"timezone"`
		BillingAnchor   json.RawMessage `json:"billingAnchor"`
		BillingInterval json.RawMessage `json:"billingInterval"`
		Metadata        json.RawMessage `json:"metadata"`
	}
	if err := strictObject(body, &in, customerFields...); err != nil {
		return nil, jsonError(body, err, customerBodyExample)
	}
	text := func(raw json.RawMessage, name string, dst *string) error {
		v, _, err := str(raw)
		if err != nil {
			return odometer.Errorf(odometer.EINVALID, "%s", strMessage(name, err))
		}
		*dst = v
		return nil
	}
	var anchor, interval string
	for _, f := range []struct {
		raw  json.RawMessage
		name string
		dst  *string
	}{{in.Name, "name", &c.Name}, {in.Timezone, "timezone", &c.Timezone}, {in.BillingAnchor, "billingAnchor", &anchor}, {in.BillingInterval, "billingInterval", &interval}} {
		if err := text(f.raw, f.name, f.dst); err != nil {
			return nil, err
		}
	}
	if anchor != "" {
		t, err := time.Parse(time.RFC3339Nano, anchor)
		if err != nil {
			return nil, odometer.Errorf(odometer.EINVALID, "billingAnchor must be an RFC 3339 date-time, such as 2026-01-15T00:00:00Z")
		}
		c.BillingAnchor = &t
	}
	c.BillingInterval = odometer.BillingInterval(interval)
	if len(in.Metadata) > 0 && string(in.Metadata) != "null" && in.Metadata[0] != '{' {
		return nil, odometer.Errorf(odometer.EINVALID, "metadata must be a JSON object, such as {\"plan\": \"pro\"}")
	}
	c.Metadata = in.Metadata
	return c, c.Validate()
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

// handleCustomer is GET /customers/{id}: the customer, its first and last
// events, and its current billing cycle. A pinned key asking for another
// customer gets 404, as if it did not exist.
func (s *Server) handleCustomer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if p := pinned(r); p != "" && p != id {
		s.writeError(w, r, odometer.Errorf(odometer.ENOTFOUND, "Not found"))
		return
	}
	s.writeCustomer(w, r, id)
}

func (s *Server) writeCustomer(w http.ResponseWriter, r *http.Request, id string) {
	c, err := s.Customers.FindCustomer(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	cfg := s.Config()
	cyc, err := odometer.CurrentCycle(r.Context(), s.Aggs, cfg, c, cfg.Location, s.Now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := toCustomerJSON(c)
	out.CurrentCycle = &CycleRecord{
		PeriodStart: odometer.FormatTime(cyc.Start), PeriodEnd: odometer.FormatTime(odometer.LastMilli(cyc.End)), PeriodKey: cyc.Key,
		Timezone: cyc.Location.String(),
		Events:   cyc.Values.Events, EventCounts: cyc.Values.EventCounts, Groups: cyc.Values.Groups,
	}
	writeJSON(w, http.StatusOK, out)
}

// handleCustomers is GET /customers: profiles and customers seen through
// events, sorted by id, paged by X-Next-Cursor; or, with sort=usage, the
// customers with usage in their current cycle by a meter's value in it
// (see customersByUsage). A pinned key sees its own customer only.
func (s *Server) handleCustomers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := odometer.CustomerFilter{Q: q.Get("q"), ID: pinned(r), Cursor: q.Get("cursor")}
	var err error
	if f.Limit, err = limitParam(q.Get("limit")); err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(f.Q) > odometer.MaxCustomerBytes {
		s.writeError(w, r, odometer.Errorf(odometer.EINVALID, "q must be at most %d bytes", odometer.MaxCustomerBytes))
		return
	}
	switch q.Get("sort") {
	case "", "id":
		if o := q.Get("order"); o != "" && o != "asc" {
			s.writeError(w, r, odometer.Errorf(odometer.EINVALID, "order=%s needs sort=usage: customers by id are listed in ascending order only", clip(o)))
			return
		}
		if q.Has("meter") {
			s.writeError(w, r, odometer.Errorf(odometer.EINVALID, "meter needs sort=usage: customers by id are not ordered by a meter"))
			return
		}
	case "usage":
		s.customersByUsage(w, r, f)
		return
	default:
		s.writeError(w, r, odometer.Errorf(odometer.EINVALID, "sort must be id or usage, not %q", clip(q.Get("sort"))))
		return
	}
	list, next, err := s.Customers.FindCustomers(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]CustomerRecord, len(list))
	for i, c := range list {
		out[i] = toCustomerJSON(c)
	}
	if next != "" {
		w.Header().Set("X-Next-Cursor", next)
	}
	writeJSON(w, http.StatusOK, out)
}

// clip shortens a parameter quoted back in an error message.
func clip(v string) string {
	if len(v) > 64 {
		return v[:64] + "..."
	}
	return v
}
