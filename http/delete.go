package http

import (
	"net/http"

	"github.com/odometer-dev/odometer"
)

// handleDeleteEvents is DELETE /events?customerId=&eventType=&from=&to=
// (admin): the events go, and the buckets and periods that held them are
// rebuilt from the events that remain before the answer, so the aggregates
// stay true; completed periods get a new revision and an
// aggregation.updated webhook.
func (s *Server) handleDeleteEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := odometer.EventFilter{CustomerID: q.Get("customerId"), EventType: q.Get("eventType")}
	var err error
	if f.From, err = timeParam(q.Get("from"), "from"); err == nil {
		f.To, err = timeParam(q.Get("to"), "to")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if f.CustomerID == "" && f.EventType == "" && f.From == nil && f.To == nil && q.Get("all") != "true" {
		s.writeError(w, r, odometer.Errorf(odometer.EINVALID, "give at least one of customerId, eventType, from and to (or all=true to delete every event)"))
		return
	}
	n, res, err := s.Aggregator.DeleteEvents(r.Context(), s.Events, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.Kick != nil && res.PeriodsRevised > 0 {
		s.Kick()
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"message": "Events deleted", "deleted": n,
		"aggregationsUpdated": res.AggregationsUpdated, "periodsRevised": res.PeriodsRevised,
	})
}
