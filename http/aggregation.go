package http

import (
	"net/http"
	"strings"
	"time"

	"github.com/odometer-dev/odometer"
)

// aggregationJSON is an aggregation as GET /aggregations shows it.
type aggregationJSON struct {
	ID            string                           `json:"_id"`
	CustomerID    string                           `json:"customerId"`
	Period        odometer.Period                  `json:"period"`
	PeriodStart   string                           `json:"periodStart"`
	PeriodEnd     string                           `json:"periodEnd"`
	PeriodKey     string                           `json:"periodKey"`
	Timestamp     string                           `json:"timestamp"`
	Events        map[string]float64               `json:"events"`
	EventCounts   map[string]int64                 `json:"eventCounts"`
	Groups        map[string][]odometer.GroupValue `json:"groups,omitempty"`
	WebhookStatus odometer.WebhookStatus           `json:"webhookStatus"`
	Complete      bool                             `json:"complete"`
	Revision      int                              `json:"revision"`
}

func toAggregationJSON(a *odometer.Aggregation, cfg *odometer.Config) aggregationJSON {
	v := a.Values(cfg)
	return aggregationJSON{
		ID: a.ID(), CustomerID: a.CustomerID, Period: a.Period,
		PeriodStart: odometer.FormatTime(a.PeriodStart), PeriodEnd: odometer.FormatTime(odometer.LastMilli(a.PeriodEnd)),
		PeriodKey: a.PeriodKey, Timestamp: odometer.FormatTime(a.Timestamp),
		Events: v.Events, EventCounts: v.EventCounts, Groups: v.Groups, WebhookStatus: a.Webhook,
		Complete: a.Complete, Revision: a.Revision,
	}
}

// pinnedAggregationJSON is an aggregation as a key pinned to a customer
// sees it: without the vendor's internals, its revision and its webhook
// state (whose lastError is the vendor's endpoint's). The outer fields, of
// the same names and always nil, hide the embedded ones.
type pinnedAggregationJSON struct {
	aggregationJSON
	WebhookStatus *struct{} `json:"webhookStatus,omitempty"`
	Revision      *struct{} `json:"revision,omitempty"`
}

// handleAggregations is GET /aggregations: newest period first, with a cursor.
func (s *Server) handleAggregations(w http.ResponseWriter, r *http.Request) {
	cfg := s.Config()
	q := r.URL.Query()
	var f odometer.AggregationFilter
	var err error
	if f.CustomerID, err = customerFilter(r, q.Get("customerId")); err != nil {
		s.writeError(w, r, err)
		return
	}
	if p := q.Get("period"); p != "" {
		if f.Period, err = odometer.ParsePeriod(p); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	switch q.Get("complete") {
	case "":
	case "true":
		t := true
		f.Complete = &t
	case "false":
		t := false
		f.Complete = &t
	default:
		s.writeError(w, r, odometer.Errorf(odometer.EINVALID, "complete must be true or false"))
		return
	}
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
	aggs, next, err := s.Aggs.FindAggregations(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if next != "" {
		w.Header().Set("X-Next-Cursor", next)
	}
	if pinned(r) != "" {
		out := make([]pinnedAggregationJSON, len(aggs))
		for i, a := range aggs {
			out[i] = pinnedAggregationJSON{aggregationJSON: toAggregationJSON(a, cfg)}
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	out := make([]aggregationJSON, len(aggs))
	for i, a := range aggs {
		out[i] = toAggregationJSON(a, cfg)
	}
	writeJSON(w, http.StatusOK, out)
}

// handleTrigger is POST /aggregations/trigger: the scheduler's work, now,
// answered when done.
func (s *Server) handleTrigger(w http.ResponseWriter, r *http.Request) {
	res, err := s.Aggregator.Run(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.Kick != nil && (res.PeriodsCompleted > 0 || res.PeriodsRevised > 0) {
		s.Kick()
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"message":             "Aggregation triggered",
		"aggregationsCreated": res.AggregationsCreated,
		"aggregationsUpdated": res.AggregationsUpdated,
		"eventsProcessed":     res.EventsProcessed,
		"periodsCompleted":    res.PeriodsCompleted,
		"periodsRevised":      res.PeriodsRevised,
	})
}

var windows = map[string]odometer.Period{"hour": odometer.Hourly, "day": odometer.Daily, "week": odometer.Weekly,
	"month": odometer.Monthly, "year": odometer.Yearly}

// handleUsageQuery is GET /usage: one customer's usage of one event type
// per window, from the buckets.
func (s *Server) handleUsageQuery(w http.ResponseWriter, r *http.Request) {
	cfg := s.Config()
	q := r.URL.Query()
	uq := odometer.UsageQuery{Meter: q.Get("meter"), Location: cfg.Location}
	byType := q.Has("eventType") || !q.Has("meter")
	if byType {
		uq.Meter = q.Get("eventType")
	}
	var err error
	if uq.CustomerID, err = customerFilter(r, q.Get("customerId")); err != nil {
		s.writeError(w, r, err)
		return
	}
	fail := func(format string, args ...any) {
		s.writeError(w, r, odometer.Errorf(odometer.EINVALID, format, args...))
	}
	if uq.CustomerID == "" {
		fail("customerId is required")
		return
	}
	if uq.Meter == "" {
		if len(cfg.MeterOrder) == 0 {
			fail("eventType is required")
		} else {
			fail("meter (or eventType) is required")
		}
		return
	}
	if q.Has("meter") && q.Has("eventType") {
		fail("give meter or eventType, not both")
		return
	}
	if byType {
		if _, ok := cfg.Events[uq.Meter]; !ok {
			s.writeError(w, r, odometer.Errorf(odometer.EINVALID, "%s", cfg.InvalidEventType(uq.Meter)))
			return
		}
	}
	if g := q.Get("groupBy"); g != "" {
		uq.GroupBy = strings.Split(g, ",")
	}
	wname := q.Get("window")
	if wname == "" {
		wname = "day"
	}
	var ok bool
	if uq.Window, ok = windows[wname]; !ok {
		fail("window must be one of: hour, day, week, month, year")
		return
	}
	if tz := q.Get("timezone"); tz != "" {
		if uq.Location, err = time.LoadLocation(tz); err != nil || tz == "Local" {
			fail("timezone must be an IANA time zone name, such as Europe/Oslo")
			return
		}
	}
	now := s.Now().UTC()
	from, err := timeParam(q.Get("from"), "from")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	to, err := timeParam(q.Get("to"), "to")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if to == nil {
		// The end of the current window: an event stamped now, or a few
		// minutes ahead as ingest allows, is in it.
		_, end, err := uq.Window.Bounds(uq.Window.Key(now.In(uq.Location)), uq.Location)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		to = &end
	}
	if from == nil {
		t := uq.Window.PeriodStart(to.Add(-time.Millisecond), uq.Location)
		from = &t
	}
	uq.From, uq.To = *from, *to
	points, err := odometer.Usage(r.Context(), s.Aggs, cfg, uq)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	type point struct {
		Key    string                `json:"key"`
		Start  string                `json:"start"`
		End    string                `json:"end"`
		Value  float64               `json:"value"`
		Count  int64                 `json:"count"`
		Groups []odometer.GroupValue `json:"groups,omitempty"`
	}
	out := make([]point, len(points))
	for i, p := range points {
		out[i] = point{p.Key, odometer.FormatTime(p.Start), odometer.FormatTime(odometer.LastMilli(p.End)), p.Value, p.Count, p.Groups}
	}
	body := map[string]any{
		"customerId": uq.CustomerID, "op": cfg.Meter(uq.Meter).Op,
		"window": wname, "timezone": uq.Location.String(),
		"from": odometer.FormatTime(uq.From), "to": odometer.FormatTime(uq.To), "usage": out,
	}
	if byType {
		body["eventType"] = uq.Meter
	} else {
		body["meter"] = uq.Meter
	}
	if len(uq.GroupBy) > 0 {
		body["groupBy"] = uq.GroupBy
	}
	writeJSON(w, http.StatusOK, body)
}
