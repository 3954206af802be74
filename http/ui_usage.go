package http

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/odometer-dev/odometer"
)

// The dashboard's views across customers and of webhook endpoints: GET
// /stats/usage (a meter's totals over every customer per window, and the
// top customers of a range), GET /webhooks (each endpoint's health), POST
// /deliveries/retry (every failed delivery of an endpoint, again) and GET
// /deliveries/{id} (one delivery with its payload). See docs/DASHBOARD.md.

// totalsTTL is how long GET /stats/usage reuses an answer for the same
// question; totalsMaxAge, how long while no aggregation run has folded new
// events since (the run state's watermark has not moved). Its values are
// the aggregations', which change only in a run: a dashboard refreshing
// every 10 s then costs one read of the range per run, not per refresh.
// The age bounds what a rebuild after a delete, which may leave the
// watermark where it was, can hide.
const (
	totalsTTL    = 10 * time.Second
	totalsMaxAge = 5 * time.Minute
)

// unchangedSince reports whether an answer read from the aggregations at
// at, when the run state's watermark was watermark, still holds at now: no
// aggregation run has folded events since (the watermark has not moved,
// and none is in progress), for up to totalsMaxAge.
func unchangedSince(at time.Time, watermark int64, run odometer.RunState, now time.Time) bool {
	return !now.Before(at) && now.Sub(at) < totalsMaxAge && watermark == run.Watermark && !run.InProgress()
}

// reusable reports whether an answer read at at may be given again at now:
// for totalsTTL whatever happened since, and then while unchangedSince.
func reusable(at time.Time, watermark int64, run odometer.RunState, now time.Time) bool {
	return (!now.Before(at) && now.Sub(at) < totalsTTL) || unchangedSince(at, watermark, run, now)
}

// maxTotalsCached bounds the answers GET /stats/usage keeps.
const maxTotalsCached = 32

// totalsCache holds GET /stats/usage's recent answers by their question.
type totalsCache struct {
	mu sync.Mutex
	m  map[string]*totalsAnswer
}

// totalsWindow is one window of GET /stats/usage.
type totalsWindow struct {
	Key       string  `json:"key"`
	Start     string  `json:"start"`
	End       string  `json:"end"`
	Value     float64 `json:"value"`
	Count     int64   `json:"count"`
	Customers int     `json:"customers"`
	// Groups, for a grouped meter: each group over every customer.
	Groups []odometer.GroupValue `json:"groups,omitempty"`
}

type totalsAnswer struct {
	at        time.Time
	watermark int64
	Meter     string           `json:"meter"`
	Op        odometer.Op      `json:"op"`
	Window    string           `json:"window"`
	Timezone  string           `json:"timezone"`
	From      string           `json:"from"`
	To        string           `json:"to"`
	Customers int              `json:"customers"`
	Usage     []totalsWindow   `json:"usage"`
	Top       []topCustomer    `json:"topCustomers"`
	Computed  string           `json:"computedAt"`
	Note      string           `json:"note,omitempty"`
	states    []odometer.State // per window, for ops whose totals merge
}

// additive reports whether an op's value over several customers, or
// several windows, is the sum of their values. The others merge their
// states: the maximum of maxima, the distinct values of the union, the
// quantile of the merged sketch.
func additive(op odometer.Op) bool {
	switch op {
	case odometer.OpSum, odometer.OpCount, odometer.OpIntegral, odometer.OpTWA:
		return true
	}
	return false
}

// handleStatsUsage is GET /stats/usage?meter=&window=&from=&to=: a meter
// over every customer, per window, from the aggregations of the window's
// period, and the customers with the highest value over the whole range.
func (s *Server) handleStatsUsage(w http.ResponseWriter, r *http.Request) {
	if pinned(r) != "" {
		s.writeError(w, r, odometer.Errorf(odometer.ENOTFOUND, "Not found"))
		return
	}
	cfg := s.Config()
	q := r.URL.Query()
	fail := func(format string, args ...any) {
		s.writeError(w, r, odometer.Errorf(odometer.EINVALID, format, args...))
	}
	name := q.Get("meter")
	m := cfg.Meter(name)
	if name == "" || m == nil {
		fail("meter must be one of the configured meters or event types")
		return
	}
	wname := q.Get("window")
	if wname == "" {
		wname = "day"
	}
	period, ok := windows[wname]
	if !ok {
		fail("window must be one of: hour, day, week, month, year")
		return
	}
	configured := false
	for _, p := range cfg.Periods {
		configured = configured || p == period
	}
	if !configured {
		fail("the %s period is not configured: totals per %s come from its aggregations", period, wname)
		return
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
	loc := cfg.Location
	if to == nil {
		_, end, err := period.Bounds(period.Key(now.In(loc)), loc)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		to = &end
	}
	if from == nil {
		t := period.PeriodStart(to.Add(-time.Millisecond), loc)
		from = &t
	}
	if !from.Before(*to) {
		fail("from must be before to")
		return
	}
	if n := to.Sub(*from) / approxLength[period]; n > maxTotalsWindows {
		fail("the range holds about %d windows of a %s; at most %d", n, wname, maxTotalsWindows)
		return
	}
	key := name + "\x00" + wname + "\x00" + from.Format(time.RFC3339Nano) + "\x00" + to.Format(time.RFC3339Nano)
	run, err := s.Aggs.RunState(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.ui.totals.mu.Lock()
	defer s.ui.totals.mu.Unlock()
	ans := s.ui.totals.m[key]
	fresh := ans != nil && reusable(ans.at, ans.watermark, run, now)
	if !fresh {
		if ans, err = s.readTotals(r.Context(), cfg, m, period, *from, *to, now); err != nil {
			s.writeError(w, r, err)
			return
		}
		ans.Window, ans.Timezone, ans.watermark = wname, loc.String(), run.Watermark
		if s.ui.totals.m == nil || len(s.ui.totals.m) >= maxTotalsCached {
			s.ui.totals.m = map[string]*totalsAnswer{}
		}
		s.ui.totals.m[key] = ans
	}
	writeJSON(w, http.StatusOK, ans)
}

// approxLength is about how long a period is, to bound a range.
var approxLength = map[odometer.Period]time.Duration{odometer.Hourly: time.Hour, odometer.Daily: 24 * time.Hour,
	odometer.Weekly: 7 * 24 * time.Hour, odometer.Monthly: 28 * 24 * time.Hour, odometer.Yearly: 365 * 24 * time.Hour}

// maxTotalsWindows bounds the windows of one GET /stats/usage: a year of
// days, or two months of hours.
const maxTotalsWindows = 1500

// readTotals reads the aggregations of period whose start is in [from,
// to), every customer, a thousand at a time.
func (s *Server) readTotals(ctx context.Context, cfg *odometer.Config, m *odometer.Meter, period odometer.Period, from, to, now time.Time) (*totalsAnswer, error) {
	ans := &totalsAnswer{at: now, Meter: m.Name, Op: m.Op, From: odometer.FormatTime(from), To: odometer.FormatTime(to),
		Usage: []totalsWindow{}, Top: []topCustomer{}, Computed: odometer.FormatTime(now)}
	add := additive(m.Op)
	type custRange struct {
		value  float64 // additive: the sum; twa: the sum of value × length
		length time.Duration
		state  odometer.State
		count  int64
	}
	byKey := map[string]int{}
	// A grouped meter's groups per window: added up for additive ops,
	// from the merged state for the others.
	grouped := m.Grouped()
	groupSums := map[int]map[string]*odometer.GroupValue{}
	custs := map[string]*custRange{}
	// One window at a time, each asked by its exact start: the stores
	// index aggregations by period start first, so a range of a year
	// would walk every period's rows of the year to find the monthly ones.
	loc := cfg.Location
	ws := period.PeriodStart(from, loc)
	if ws.Before(from) {
		_, ws, _ = period.Bounds(period.Key(ws.In(loc)), loc)
	}
	for ; ws.Before(to); _, ws, _ = period.Bounds(period.Key(ws.In(loc)), loc) {
		start := ws
		f := odometer.AggregationFilter{Period: period, From: &start, To: &start, Limit: statsPage}
		if err := s.eachAggregation(ctx, f, func(a *odometer.Aggregation) {
			st := a.States[m.Name]
			if st == nil || st.Count() == 0 {
				return
			}
			v := m.ValueOf(st, a.PeriodStart, a.PeriodEnd)
			i, ok := byKey[a.PeriodKey]
			if !ok {
				i = len(ans.Usage)
				byKey[a.PeriodKey] = i
				ans.Usage = append(ans.Usage, totalsWindow{Key: a.PeriodKey, Start: odometer.FormatTime(a.PeriodStart),
					End: odometer.FormatTime(odometer.LastMilli(a.PeriodEnd))})
				ans.states = append(ans.states, nil)
			}
			tw := &ans.Usage[i]
			tw.Count += st.Count()
			tw.Customers++
			if grouped && add {
				vals := odometer.StateValues(cfg, map[string]odometer.State{m.Name: st}, a.PeriodStart, a.PeriodEnd)
				if groupSums[i] == nil {
					groupSums[i] = map[string]*odometer.GroupValue{}
				}
				for _, g := range vals.Groups[m.Name] {
					k := string(g.Group)
					if e := groupSums[i][k]; e != nil {
						e.Value += g.Value
						e.Count += g.Count
					} else {
						g := g
						groupSums[i][k] = &g
					}
				}
			}
			if add {
				tw.Value += v
			} else if ans.states[i] == nil {
				ans.states[i] = st.Clone()
			} else {
				ans.states[i].Merge(st)
			}
			c := custs[a.CustomerID]
			if c == nil {
				c = &custRange{}
				custs[a.CustomerID] = c
			}
			c.count += st.Count()
			switch {
			case m.Op == odometer.OpTWA:
				c.value += v * float64(a.PeriodEnd.Sub(a.PeriodStart))
				c.length += a.PeriodEnd.Sub(a.PeriodStart)
			case add:
				c.value += v
			case c.state == nil:
				c.state = st.Clone()
			default:
				c.state.Merge(st)
			}
		}); err != nil {
			return nil, err
		}
	}
	for i := range ans.Usage {
		if st := ans.states[i]; st != nil {
			ans.Usage[i].Value = m.ValueOf(st, from, to)
			if grouped {
				start, _ := time.Parse(time.RFC3339, ans.Usage[i].Start)
				end, _ := time.Parse(time.RFC3339, ans.Usage[i].End)
				ans.Usage[i].Groups = odometer.StateValues(cfg, map[string]odometer.State{m.Name: st}, start, end.Add(time.Millisecond)).Groups[m.Name]
			}
		}
		if sums := groupSums[i]; sums != nil {
			for _, g := range sums {
				ans.Usage[i].Groups = append(ans.Usage[i].Groups, *g)
			}
			sort.Slice(ans.Usage[i].Groups, func(a, b int) bool {
				return string(ans.Usage[i].Groups[a].Group) < string(ans.Usage[i].Groups[b].Group)
			})
		}
	}
	ans.states = nil
	sort.Slice(ans.Usage, func(i, j int) bool { return ans.Usage[i].Start < ans.Usage[j].Start })
	ans.Customers = len(custs)
	for id, c := range custs {
		v := c.value
		switch {
		case m.Op == odometer.OpTWA:
			// The average over the range's length, a window without an
			// aggregation holding nothing.
			v = c.value / float64(to.Sub(from))
		case c.state != nil:
			v = m.ValueOf(c.state, from, to)
		}
		ans.Top = rank(ans.Top, topCustomer{CustomerID: id, Value: v, Count: c.count})
	}
	return ans, nil
}

// eachAggregation calls fn with every aggregation f selects, reading a
// page at a time.
func (s *Server) eachAggregation(ctx context.Context, f odometer.AggregationFilter, fn func(*odometer.Aggregation)) error {
	for {
		aggs, next, err := s.Aggs.FindAggregations(ctx, f)
		if err != nil {
			return err
		}
		for _, a := range aggs {
			fn(a)
		}
		if next == "" {
			return nil
		}
		f.Cursor = next
	}
}

// endpointJSON is one webhook endpoint in GET /webhooks.
type endpointJSON struct {
	URL string `json:"url"`
	// Enabled is what the configuration says; Active, whether the server
	// sends to it now (enabled, and not disabled by a 410 Gone).
	Enabled        bool             `json:"enabled"`
	Active         bool             `json:"active"`
	State          string           `json:"state"`
	DisabledReason string           `json:"disabledReason,omitempty"`
	DisabledAt     string           `json:"disabledAt,omitempty"`
	Deliveries     map[string]int64 `json:"deliveries"`
	Last24h        map[string]int64 `json:"last24h"`
	FailureRate    *float64         `json:"failureRate"`
	LastSuccessAt  string           `json:"lastSuccessAt,omitempty"`
	LastAttemptAt  string           `json:"lastAttemptAt,omitempty"`
}

// handleWebhooks is GET /webhooks: each configured endpoint, whether the
// server sends to it, and how its deliveries fare.
func (s *Server) handleWebhooks(w http.ResponseWriter, r *http.Request) {
	if pinned(r) != "" {
		s.writeError(w, r, odometer.Errorf(odometer.ENOTFOUND, "Not found"))
		return
	}
	cfg := s.Config()
	now := s.Now().UTC()
	stats, err := s.Deliveries.EndpointStats(r.Context(), now.Add(-24*time.Hour))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := []endpointJSON{}
	for _, wh := range cfg.Webhooks {
		st := stats[wh.URL]
		if st == nil {
			st = odometer.NewEndpointStats()
		}
		e := endpointJSON{URL: wh.URL, Enabled: wh.Enabled, Deliveries: st.Counts, DisabledReason: st.DisabledReason,
			Last24h: map[string]int64{"delivered": st.Recent[odometer.DeliveryDelivered], "failed": st.Recent[odometer.DeliveryFailed],
				"retrying": st.Recent[odometer.DeliveryPending]}}
		switch {
		case !wh.Enabled:
			e.State = "off"
		case st.DisabledAt != nil:
			e.State = "disabled"
		default:
			e.State, e.Active = "active", true
		}
		if st.DisabledAt != nil {
			e.DisabledAt = odometer.FormatTime(*st.DisabledAt)
		}
		if st.LastSuccessAt != nil {
			e.LastSuccessAt = odometer.FormatTime(*st.LastSuccessAt)
		}
		if st.LastAttemptAt != nil {
			e.LastAttemptAt = odometer.FormatTime(*st.LastAttemptAt)
		}
		bad := e.Last24h["failed"] + e.Last24h["retrying"]
		if tried := bad + e.Last24h["delivered"]; tried > 0 {
			rate := float64(bad) / float64(tried)
			e.FailureRate = &rate
		}
		out = append(out, e)
	}
	writeJSON(w, http.StatusOK, out)
}

// handleRetryEndpoint is POST /webhooks/retry?endpoint=URL: every failed
// delivery to a configured endpoint, pending and due now, and the endpoint
// enabled again if a 410 had disabled it.
func (s *Server) handleRetryEndpoint(w http.ResponseWriter, r *http.Request) {
	url := r.URL.Query().Get("endpoint")
	if url == "" {
		s.writeError(w, r, odometer.Errorf(odometer.EINVALID, "endpoint is required: the URL of a configured webhook"))
		return
	}
	known := false
	for _, wh := range s.Config().Webhooks {
		known = known || wh.URL == url
	}
	if !known {
		s.writeError(w, r, odometer.Errorf(odometer.ENOTFOUND, "No webhook endpoint %s is configured", url))
		return
	}
	n, err := s.Deliveries.RetryDeliveries(r.Context(), url, s.Now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.Kick != nil {
		s.Kick()
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"endpoint": url, "retried": n})
}

// handleDelivery is GET /deliveries/{id}: one delivery, with the body it
// sends.
func (s *Server) handleDelivery(w http.ResponseWriter, r *http.Request) {
	d, err := s.Deliveries.FindDelivery(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	b, err := json.Marshal(d)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		s.writeError(w, r, err)
		return
	}
	out["payload"] = nil
	if json.Valid(d.Payload) {
		out["payload"] = json.RawMessage(d.Payload)
	}
	writeJSON(w, http.StatusOK, out)
}
