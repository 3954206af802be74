package http

import (
	"net/http"

	"github.com/odometer-dev/odometer"
)

// handleDeliveries is GET /deliveries?status=&customerId=&endpoint=, newest first.
func (s *Server) handleDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := odometer.DeliveryFilter{Status: q.Get("status"), CustomerID: q.Get("customerId"), Endpoint: q.Get("endpoint"), Cursor: q.Get("cursor")}
	switch f.Status {
	case "", odometer.DeliveryPending, odometer.DeliveryDelivered, odometer.DeliveryFailed:
	default:
		s.writeError(w, r, odometer.Errorf(odometer.EINVALID, "status must be one of: pending, delivered, failed"))
		return
	}
	var err error
	if f.Limit, err = limitParam(q.Get("limit")); err != nil {
		s.writeError(w, r, err)
		return
	}
	ds, next, err := s.Deliveries.FindDeliveries(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ds == nil {
		ds = []*odometer.Delivery{}
	}
	if next != "" {
		w.Header().Set("X-Next-Cursor", next)
	}
	writeJSON(w, http.StatusOK, ds)
}

// handleRetryDelivery is POST /deliveries/{id}/retry: one more try, now.
func (s *Server) handleRetryDelivery(w http.ResponseWriter, r *http.Request) {
	d, err := s.Deliveries.RetryDelivery(r.Context(), r.PathValue("id"), s.Now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.Kick != nil {
		s.Kick()
	}
	writeJSON(w, http.StatusAccepted, d)
}
