package http

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/odometer-dev/odometer"
)

// handleUsageEvent is POST /usage/{eventType}.
func (s *Server) handleUsageEvent(w http.ResponseWriter, r *http.Request) {
	cfg := s.Config()
	body, err := readBody(w, r, s.MaxEventBytes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var we wireEvent
	if err := decodeBody(body, &we); err != nil {
		s.writeError(w, r, jsonError(body, err, "a JSON object such as {\"customerId\": \"cust_123\", \"value\": 1}"))
		return
	}
	now := s.Now().UTC()
	e, errs := s.toEvent(cfg, &we, r.PathValue("eventType"), strings.TrimSpace(r.Header.Get("Idempotency-Key")), now)
	if len(errs) > 0 {
		// The template answers one error at a time, the event type first.
		s.writeError(w, r, &odometer.Error{Code: odometer.EINVALID, Message: errs[0]})
		return
	}
	events := []odometer.Event{e}
	dup, err := s.Events.CreateEvents(r.Context(), events)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if dup[0] {
		writeJSON(w, http.StatusOK, map[string]any{"message": "Event already captured", "eventType": e.EventType,
			"customerId": e.CustomerID, "id": e.ID, "duplicate": true})
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"message": "Event captured", "eventType": e.EventType,
		"customerId": e.CustomerID, "id": e.ID})
}

type validationError struct {
	Index  int      `json:"index"`
	Errors []string `json:"errors"`
}

// handleUsageBatch is POST /usagebatch: up to 1000 events, stored
// atomically or not at all.
func (s *Server) handleUsageBatch(w http.ResponseWriter, r *http.Request) {
	cfg := s.Config()
	body, err := readBody(w, r, s.MaxBatchBytes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !json.Valid(body) {
		s.writeError(w, r, jsonError(body, syntaxError(body), "a JSON array of events"))
		return
	}
	var raw [][]byte
	if err := eachElement(body, func(e []byte) error { raw = append(raw, e); return nil }); err != nil {
		s.writeError(w, r, jsonError(body, err, "a JSON array of events"))
		return
	}
	if len(raw) > odometer.MaxBatch {
		s.writeError(w, r, &odometer.Error{Code: odometer.ETOOLARGE,
			Message: "Batch size exceeds maximum limit of 1000 events",
			Details: map[string]any{"received": len(raw), "maxAllowed": odometer.MaxBatch}})
		return
	}
	if len(raw) == 0 {
		s.writeError(w, r, odometer.Errorf(odometer.EINVALID, "Batch is empty: send an array of 1 to 1000 events"))
		return
	}
	now := s.Now().UTC()
	events := make([]odometer.Event, len(raw))
	var verrs []validationError
	for i, m := range raw {
		var we wireEvent
		var errs []string
		if err := decodeWire(m, &we); err != nil {
			errs = []string{wireMessage(err)}
		} else {
			events[i], errs = s.toEvent(cfg, &we, "", "", now)
		}
		if len(errs) > 0 {
			verrs = append(verrs, validationError{Index: i, Errors: errs})
		}
	}
	if len(verrs) > 0 {
		s.writeError(w, r, &odometer.Error{Code: odometer.EUNPROCESSABLE, Message: "Validation failed for some events",
			Details: map[string]any{"validationErrors": verrs, "validCount": len(raw) - len(verrs), "invalidCount": len(verrs)}})
		return
	}
	dup, err := s.Events.CreateEvents(r.Context(), events)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	d := 0
	for _, x := range dup {
		if x {
			d++
		}
	}
	status := http.StatusCreated
	if d == len(events) {
		status = http.StatusOK
	}
	writeJSON(w, status, map[string]any{"message": "Events captured", "count": len(events), "duplicates": d})
}

// eventJSON is a stored event as GET /events shows it.
type eventJSON struct {
	ID         string          `json:"_id"`
	EventType  string          `json:"eventType"`
	CustomerID string          `json:"customerId"`
	Value      float64         `json:"value"`
	Metadata   json.RawMessage `json:"metadata"`
	ReceivedAt string          `json:"receivedAt"`
	Timestamp  string          `json:"timestamp"`
	Minute     string          `json:"minute"`
	Hour       string          `json:"hour"`
	Day        string          `json:"day"`
	Week       string          `json:"week"`
	Month      string          `json:"month"`
	Year       string          `json:"year"`
}

func toEventJSON(e *odometer.Event, loc *time.Location) eventJSON {
	t := e.Time.In(loc)
	meta := json.RawMessage(e.Metadata)
	if meta == nil {
		meta = json.RawMessage("{}")
	}
	return eventJSON{
		ID: e.ID, EventType: e.EventType, CustomerID: e.CustomerID, Value: e.Value, Metadata: meta,
		ReceivedAt: odometer.FormatTime(e.ReceivedAt), Timestamp: odometer.FormatTime(e.Time),
		Minute: odometer.MinuteKey(t), Hour: odometer.Hourly.Key(t), Day: odometer.Daily.Key(t),
		Week: odometer.Weekly.Key(t), Month: odometer.Monthly.Key(t), Year: odometer.Yearly.Key(t),
	}
}

// handleEvents is GET /events: newest first, with a cursor.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	cfg := s.Config()
	q := r.URL.Query()
	var f odometer.EventFilter
	var err error
	if f.CustomerID, err = customerFilter(r, q.Get("customerId")); err != nil {
		s.writeError(w, r, err)
		return
	}
	f.EventType = q.Get("eventType")
	if f.From, err = timeParam(q.Get("from"), "from"); err == nil {
		f.To, err = timeParam(q.Get("to"), "to")
	}
	if err == nil {
		f.Limit, err = limitParam(q.Get("limit"))
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f.Cursor = q.Get("cursor")
	events, next, err := s.Events.FindEvents(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]eventJSON, len(events))
	for i := range events {
		out[i] = toEventJSON(&events[i], cfg.Location)
	}
	if next != "" {
		w.Header().Set("X-Next-Cursor", next)
	}
	writeJSON(w, http.StatusOK, out)
}

// timeParam parses an ISO 8601 query parameter: an RFC 3339 date-time or
// a date (midnight UTC).
func timeParam(v, name string) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			t = t.UTC()
			return &t, nil
		}
	}
	return nil, odometer.Errorf(odometer.EINVALID, "%s must be an ISO 8601 date or date-time, such as 2026-01-13 or 2026-01-13T10:00:00Z", name)
}

// limitParam parses limit: 1 to 1000, default 100.
func limitParam(v string) (int, error) {
	if v == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, odometer.Errorf(odometer.EINVALID, "limit must be a whole number from 1 to 1000")
	}
	return n, nil
}
