package http

import (
	"encoding/json"
	"net/http"

	"github.com/odometer-dev/odometer"
)

// AlertRecord is an alert as the API shows it.
type AlertRecord struct {
	ID         string          `json:"id"`
	Meter      string          `json:"meter"`
	Period     odometer.Period `json:"period"`
	Threshold  float64         `json:"threshold"`
	CustomerID string          `json:"customerId,omitempty"`
	CreatedAt  string          `json:"createdAt"`
}

func toAlertJSON(a *odometer.Alert) AlertRecord {
	return AlertRecord{ID: a.ID, Meter: a.Meter, Period: a.Period, Threshold: a.Threshold, CustomerID: a.CustomerID,
		CreatedAt: odometer.FormatTime(a.CreatedAt)}
}

const alertExample = `a JSON object such as {"meter": "api.calls", "period": "daily", "threshold": 10000, "customerId": "cust_123"}`

// handleCreateAlert is POST /alerts.
func (s *Server) handleCreateAlert(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, s.MaxBodyBytes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in struct {
		Meter      json.RawMessage `json:"meter"`
		Period     json.RawMessage `json:"period"`
		Threshold  json.RawMessage `json:"threshold"`
		CustomerID json.RawMessage `json:"customerId"`
	}
	if err := strictObject(body, &in, "meter", "period", "threshold", "customerId"); err != nil {
		s.writeError(w, r, jsonError(body, err, alertExample))
		return
	}
	cfg := s.Config()
	a := &odometer.Alert{ID: odometer.NewID("alr_"), CreatedAt: s.Now().UTC()}
	var ok bool
	if a.Meter, _, err = str(in.Meter); err != nil {
		s.writeError(w, r, odometer.Errorf(odometer.EINVALID, "%s", strMessage("meter", err)))
		return
	}
	var period string
	if period, _, err = str(in.Period); err != nil {
		s.writeError(w, r, odometer.Errorf(odometer.EINVALID, "%s", strMessage("period", err)))
		return
	}
	a.Period = odometer.Period(period)
	if a.CustomerID, _, err = str(in.CustomerID); err != nil {
		s.writeError(w, r, odometer.Errorf(odometer.EINVALID, "%s", strMessage("customerId", err)))
		return
	}
	if len(in.Threshold) == 0 || string(in.Threshold) == "null" {
		s.writeError(w, r, odometer.Errorf(odometer.EINVALID, "threshold is required"))
		return
	}
	if a.Threshold, ok = number(in.Threshold); !ok {
		s.writeError(w, r, odometer.Errorf(odometer.EINVALID, "threshold must be a number greater than 0"))
		return
	}
	if err := a.Validate(cfg); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.Alerts.CreateAlert(r.Context(), a); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toAlertJSON(a))
}

// handleAlerts is GET /alerts[?customerId=]: the alerts of that customer,
// or every alert. A pinned key sees its own customer's alerts only, and
// 404 for any other customer.
func (s *Server) handleAlerts(w http.ResponseWriter, r *http.Request) {
	customer, err := customerFilter(r, r.URL.Query().Get("customerId"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	alerts, err := s.Alerts.FindAlerts(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := []AlertRecord{}
	for _, a := range alerts {
		if customer == "" || a.CustomerID == customer {
			out = append(out, toAlertJSON(a))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleDeleteAlert is DELETE /alerts/{id}. What the alert already sent
// stays sent.
func (s *Server) handleDeleteAlert(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.Alerts.DeleteAlert(r.Context(), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"message": "Alert deleted", "id": id})
}

// AlertStatusRecord is an alert as it stands for one customer, in GET
// /customers/{id}/alerts: its period holding now, the customer's value of
// the meter in it so far, and when the alert fired in it (null: not yet).
type AlertStatusRecord struct {
	AlertRecord
	Active      bool         `json:"active"`
	PeriodKey   string       `json:"periodKey,omitempty"`
	PeriodStart string       `json:"periodStart,omitempty"`
	PeriodEnd   string       `json:"periodEnd,omitempty"`
	Timezone    string       `json:"timezone,omitempty"`
	Value       float64      `json:"value"`
	Count       int64        `json:"count"`
	Fired       *FiredRecord `json:"fired"`
}

// FiredRecord is an alert's firing in a period: when, and the value that
// reached the threshold.
type FiredRecord struct {
	FiredAt string  `json:"firedAt"`
	Value   float64 `json:"value"`
}

// handleCustomerAlerts is GET /customers/{id}/alerts: the alerts that
// apply to the customer (its own and those of every customer), oldest
// first, each with its status now. A pinned key sees its own customer's
// alerts only, as GET /alerts shows them, and 404 for any other customer;
// an unknown customer is 404.
func (s *Server) handleCustomerAlerts(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	p := pinned(r)
	if p != "" && p != id {
		s.writeError(w, r, odometer.Errorf(odometer.ENOTFOUND, "Not found"))
		return
	}
	if _, err := s.Customers.FindCustomer(r.Context(), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	all, err := s.Alerts.FindAlerts(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.Now()
	sts, err := odometer.AlertStatuses(r.Context(), s.Aggs, s.Alerts, s.Customers, s.Config(), id, odometer.AlertsFor(all, id, p != ""), now)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]AlertStatusRecord, len(sts))
	for i, st := range sts {
		out[i] = AlertStatusRecord{AlertRecord: toAlertJSON(st.Alert), Active: st.Active, Value: st.Value, Count: st.Count}
		if st.Active {
			out[i].PeriodKey, out[i].PeriodStart = st.PeriodKey, odometer.FormatTime(st.Start)
			out[i].PeriodEnd, out[i].Timezone = odometer.FormatTime(odometer.LastMilli(st.End)), st.Location.String()
		}
		if f := st.Fired; f != nil {
			out[i].Fired = &FiredRecord{FiredAt: odometer.FormatTime(f.FiredAt), Value: f.Value}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"customerId": id, "computedAt": odometer.FormatTime(now), "alerts": out})
}
