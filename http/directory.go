package http

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/odometer-dev/odometer"
)

// The customer directory's order by usage: GET /customers?sort=usage&
// meter=NAME[&order=desc|asc]. See docs/DASHBOARD.md.

// UsageRecord is a customer's usage of a meter in its current cycle: the
// cycle as its aggregation has it (the billing cycle, or the month).
type UsageRecord struct {
	Meter       string      `json:"meter"`
	Op          odometer.Op `json:"op"`
	Value       float64     `json:"value"`
	Count       int64       `json:"count"`
	Period      string      `json:"period"`
	PeriodKey   string      `json:"periodKey"`
	PeriodStart string      `json:"periodStart"`
	PeriodEnd   string      `json:"periodEnd"`
	// Timezone is the cycle's zone: the customer's for a billing cycle.
	Timezone string `json:"timezone"`
	// ComputedAt is when the ranking was read from the aggregations.
	ComputedAt string `json:"computedAt"`
}

// directoryCache holds the last ranking of every meter by this cycle's
// usage, reused as GET /stats/usage reuses its answers: for totalsTTL, and
// up to totalsMaxAge while no aggregation run has folded new events, but
// never past the end of a cycle it holds. One read at a time: concurrent
// requests wait for it.
type directoryCache struct {
	mu        sync.Mutex
	cfg       *odometer.Config
	period    odometer.Period
	at        time.Time
	watermark int64
	ends      time.Time // the earliest end of a cycle in the ranking
	ranking   map[string]odometer.UsageRanking
}

// customersByUsage answers GET /customers?sort=usage: the customers with
// usage in their current cycle, by the value of a meter in it.
func (s *Server) customersByUsage(w http.ResponseWriter, r *http.Request, f odometer.CustomerFilter) {
	q := r.URL.Query()
	cfg := s.Config()
	name := q.Get("meter")
	m := cfg.Meter(name)
	if m == nil {
		s.writeError(w, r, odometer.Errorf(odometer.EINVALID, "meter must be one of the configured meters or event types with sort=usage: %s", strings.Join(cfg.MeterNames(), ", ")))
		return
	}
	desc := true
	switch q.Get("order") {
	case "", "desc":
	case "asc":
		desc = false
	default:
		s.writeError(w, r, odometer.Errorf(odometer.EINVALID, "order must be desc or asc, not %q", clip(q.Get("order"))))
		return
	}
	period, err := cfg.CyclePeriod()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ranking, at, err := s.usageRanking(r.Context(), cfg, period)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	page, next, err := ranking[m.Name].Page(odometer.UsageFilter{Q: f.Q, ID: f.ID, Desc: desc, Limit: f.Limit, Cursor: f.Cursor})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]CustomerRecord, len(page))
	for i, u := range page {
		c := u.Profile
		if c == nil {
			c = odometer.NewCustomer(u.CustomerID)
		}
		out[i] = toCustomerJSON(c)
		out[i].Usage = &UsageRecord{Meter: m.Name, Op: m.Op, Value: u.Value, Count: u.Count, Period: string(period),
			PeriodKey: u.Cycle.Key, PeriodStart: odometer.FormatTime(u.Cycle.Start), PeriodEnd: odometer.FormatTime(odometer.LastMilli(u.Cycle.End)),
			Timezone: u.Cycle.Location.String(), ComputedAt: odometer.FormatTime(at)}
	}
	if next != "" {
		w.Header().Set("X-Next-Cursor", next)
	}
	writeJSON(w, http.StatusOK, out)
}

// usageRanking returns the ranking of every meter by this cycle's usage,
// read from the store or reused (see directoryCache), and when it was read.
func (s *Server) usageRanking(ctx context.Context, cfg *odometer.Config, period odometer.Period) (map[string]odometer.UsageRanking, time.Time, error) {
	now := s.Now().UTC()
	run, err := s.Aggs.RunState(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	c := &s.ui.directory
	c.mu.Lock()
	defer c.mu.Unlock()
	fresh := c.ranking != nil && c.cfg == cfg && c.period == period && now.Before(c.ends) && reusable(c.at, c.watermark, run, now)
	if fresh {
		return c.ranking, c.at, nil
	}
	aggs, err := s.Aggs.FindCycleAggregations(ctx, period, now)
	if err != nil {
		return nil, time.Time{}, err
	}
	ends := now.Add(totalsMaxAge)
	for _, a := range aggs {
		if a.Aggregation.PeriodEnd.Before(ends) {
			ends = a.Aggregation.PeriodEnd
		}
	}
	c.cfg, c.period, c.at, c.watermark, c.ends = cfg, period, now, run.Watermark, ends
	c.ranking = odometer.RankUsage(cfg, aggs)
	return c.ranking, now, nil
}
