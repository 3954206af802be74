package odometer

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// UsageThresholdReached is the notification of an alert: a customer's
// value of a meter in a period reached the alert's threshold.
const UsageThresholdReached = "usage.threshold_reached"

// Alert asks for a usage.threshold_reached webhook when a customer's value
// of Meter in the current Period first reaches Threshold: once per alert,
// customer and period.
type Alert struct {
	ID        string
	Meter     string
	Period    Period
	Threshold float64
	// CustomerID limits the alert to one customer; "" watches every one.
	CustomerID string
	CreatedAt  time.Time
}

// AlertOps are the ops an alert may watch, and why: their value within a
// period only grows as events arrive (sum of non-negative values, count,
// max, unique), so "first reaches the threshold" is the moment of one
// event, and the evaluator, which looks when events arrive, sees it. The
// others are refused: avg, min, first, last and the quantiles go up and
// down with each event (an average can cross the threshold and fall back
// between two looks, and which crossing is "first" would depend on when
// one looks); integral and twa grow with time alone, between events,
// which an evaluator driven by events does not see.
var AlertOps = []Op{OpSum, OpCount, OpMax, OpUnique}

// Validate checks an alert against the configuration: a known meter of an
// op that alerts support, a configured period, a finite positive
// threshold, a valid customer id. It answers EINVALID.
func (a *Alert) Validate(cfg *Config) error {
	if a.Meter == "" {
		return Errorf(EINVALID, "meter is required")
	}
	m := cfg.Meter(a.Meter)
	if m == nil {
		return &Error{Code: EINVALID, Message: cfg.InvalidMeter(a.Meter)}
	}
	if err := alertOp(m); err != nil {
		return err
	}
	if a.Period == "" {
		return Errorf(EINVALID, "period is required; allowed: %s", periodList(cfg))
	}
	if !hasPeriod(cfg, a.Period) {
		p := strings.ToValidUTF8(string(a.Period), "\uFFFD")
		if len(p) > 64 {
			p = p[:64] + "..."
		}
		return Errorf(EINVALID, "period %q is not configured; allowed: %s", p, periodList(cfg))
	}
	if math.IsNaN(a.Threshold) || math.IsInf(a.Threshold, 0) || a.Threshold <= 0 || a.Threshold > MaxValue {
		return Errorf(EINVALID, "threshold must be a number greater than 0")
	}
	if a.CustomerID != "" {
		if err := ValidateCustomerID(a.CustomerID); err != nil {
			return err
		}
	}
	return nil
}

// alertOp answers whether alerts can watch meter m, and why not.
func alertOp(m *Meter) error {
	for _, op := range AlertOps {
		if m.Op == op {
			return nil
		}
	}
	if m.def.kind == gaugeKind {
		return Errorf(EINVALID, "meter %s is a gauge (%s), whose value grows with time between events: alerts watch sum, count, max and unique meters", m.Name, m.Op)
	}
	return Errorf(EINVALID, "meter %s (%s) goes up and down as events arrive: alerts watch sum, count, max and unique meters, whose value only grows within a period", m.Name, m.Op)
}

func hasPeriod(cfg *Config, p Period) bool {
	for _, q := range cfg.Periods {
		if q == p {
			return true
		}
	}
	return false
}

func periodList(cfg *Config) string {
	s := make([]string, len(cfg.Periods))
	for i, p := range cfg.Periods {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}

// FiringKey names the one notification an alert may send for a customer
// and period.
type FiringKey struct {
	AlertID    string
	CustomerID string
	Period     Period
	PeriodKey  string
}

// AlertFiring records that an alert fired for a customer and period, with
// the notification it sends.
type AlertFiring struct {
	FiringKey
	Value        float64
	FiredAt      time.Time
	Notification *Notification
}

// ThresholdPayload is the body of a usage.threshold_reached webhook.
type ThresholdPayload struct {
	Type       string  `json:"type"`
	CustomerID string  `json:"customerId"`
	AlertID    string  `json:"alertId"`
	Meter      string  `json:"meter"`
	Period     Period  `json:"period"`
	PeriodKey  string  `json:"periodKey"`
	Threshold  float64 `json:"threshold"`
	Value      float64 `json:"value"`
	Created    int64   `json:"created"`
}

// AlertStore keeps alerts and the record of their firings.
type AlertStore interface {
	// CreateAlert stores a new alert. The first alert of a store starts
	// the evaluation at the newest event: alerts watch the events that
	// arrive once they exist.
	CreateAlert(ctx context.Context, a *Alert) error
	// FindAlerts returns every alert, oldest first.
	FindAlerts(ctx context.Context) ([]*Alert, error)
	// DeleteAlert deletes an alert, or answers ENOTFOUND.
	DeleteAlert(ctx context.Context, id string) error

	// LockAlerts makes the caller the only alert evaluator of the store,
	// on every replica, without waiting: ok is false when another holds
	// it.
	LockAlerts(ctx context.Context) (release func(), ok bool, err error)
	// AlertWatermark returns the Seq of the last event evaluated.
	AlertWatermark(ctx context.Context) (int64, error)
	// MaxSeq returns the Seq of the newest event, 0 when there is none.
	MaxSeq(ctx context.Context) (int64, error)
	// ScanAlertEvents calls fn, in Seq order, for each event of one of
	// eventTypes with after < Seq <= upto, with its metadata and arrival
	// time. The Event passed is reused between calls.
	ScanAlertEvents(ctx context.Context, after, upto int64, eventTypes []string, fn func(*Event) error) error
	// FindFirings returns those of keys that have fired, each with the
	// value that reached the threshold and when (no Notification).
	FindFirings(ctx context.Context, keys []FiringKey) (map[FiringKey]*AlertFiring, error)
	// AlertUsage returns, from one consistent snapshot, the aggregations
	// of keys that exist, and the events of their customers of eventTypes
	// with Seq <= upto that are not yet folded into them.
	// It returns the aggregation's progress in that snapshot too, which
	// says which events the aggregations hold.
	AlertUsage(ctx context.Context, keys []AggregationKey, eventTypes []string, upto int64) (map[AggregationKey]*Aggregation, []Event, RunState, error)
	// FireAlerts records, in one transaction, each firing whose key has
	// not fired yet and whose alert still exists, with its notification
	// and one pending delivery per endpoint, and moves the alert
	// watermark from from to to. The key is unique in the store: of two
	// evaluators, one records it. It returns how many firings it recorded;
	// ECONFLICT if the watermark is no longer from.
	FireAlerts(ctx context.Context, from, to int64, fs []*AlertFiring) (int, error)
}

// AlertEvaluator sends usage.threshold_reached within seconds of the
// event that crosses a threshold, whatever the aggregation interval: it
// reads the events past its own watermark, and for the customers and
// periods they touch computes the current value as Usage does, from the
// stored aggregation and the events not yet folded into it. It never
// waits for the aggregation lock; its own lock keeps replicas from
// evaluating the same events, and the store's unique key on firings from
// sending one twice.
type AlertEvaluator struct {
	Store  AlertStore
	Config func() *Config
	Now    func() time.Time
	Logger *slog.Logger
	// Customers, when set, gives the customers' billing settings, for
	// alerts on the billing period.
	Customers CustomerSource
	// Fired, when set, is called after a pass that recorded firings: it
	// wakes the webhook sender.
	Fired func(n int)
	// Chunk bounds the events (by Seq) of one pass; 0 means 100,000.
	Chunk int64
	// CacheFor bounds how long a value computed from the store is kept
	// and brought up to date with new events; 0 means a minute.
	CacheFor time.Duration
	// MaxCached bounds the values kept; 0 means 100,000.
	MaxCached int

	mu    sync.Mutex
	cache *alertCache
}

// alertCache keeps the values of the customers and periods that passes
// computed, and adds each later pass's events to them: a customer that
// keeps sending events under its threshold costs its new events only, not
// a read of the aggregation's backlog at every pass. It holds every event
// up to upto, and is valid only for passes that start there (no other
// evaluator moved the watermark since), with the same alerts and
// configuration. It is dropped every CacheFor, so that a value changed
// under it (events deleted by an operator) is read afresh.
type alertCache struct {
	upto   int64
	cfg    *Config
	alerts string
	born   time.Time
	values map[usageKey]*cachedValue
}

// cachedValue is the state of one customer, meter and period: the stored
// aggregation as of run, plus every event since up to the cache's upto.
type cachedValue struct {
	st  State
	run RunState
}

// alertSet names a list of alerts, to tell when it changed.
func alertSet(alerts []*Alert) string {
	var b strings.Builder
	for _, a := range alerts {
		b.WriteString(a.ID)
		b.WriteByte(' ')
	}
	return b.String()
}

// AlertResult counts what a run did.
type AlertResult struct {
	Events int
	Fired  int
}

// Run evaluates every interval until ctx ends.
func (e *AlertEvaluator) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := e.RunOnce(ctx); err != nil && ctx.Err() == nil {
			e.logger().Error("alerts", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (e *AlertEvaluator) logger() *slog.Logger {
	if e.Logger == nil {
		return slog.Default()
	}
	return e.Logger
}

// RunOnce evaluates the events past the alert watermark, if any alert
// exists and no other evaluator is at work.
func (e *AlertEvaluator) RunOnce(ctx context.Context) (AlertResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var res AlertResult
	alerts, err := e.Store.FindAlerts(ctx)
	if err != nil || len(alerts) == 0 {
		return res, err
	}
	release, ok, err := e.Store.LockAlerts(ctx)
	if err != nil || !ok {
		return res, err
	}
	defer release()
	chunk := e.Chunk
	if chunk <= 0 {
		chunk = 100_000
	}
	cfg := e.Config()
	set := alertSet(alerts)
	for ctx.Err() == nil {
		wm, err := e.Store.AlertWatermark(ctx)
		if err != nil {
			return res, fmt.Errorf("alerts: %w", err)
		}
		max, err := e.Store.MaxSeq(ctx)
		if err != nil {
			return res, fmt.Errorf("alerts: %w", err)
		}
		if max <= wm {
			break
		}
		upto := min(max, wm+chunk)
		e.useCache(cfg, set, wm)
		n, fired, err := e.pass(ctx, cfg, alerts, wm, upto)
		if err != nil {
			// The cache took in events of a pass that did not commit.
			e.cache = nil
		} else {
			e.cache.upto = upto
		}
		res.Events += n
		res.Fired += fired
		if fired > 0 && e.Fired != nil {
			e.Fired(fired)
		}
		if err != nil {
			return res, fmt.Errorf("alerts: %w", err)
		}
	}
	return res, ctx.Err()
}

// useCache keeps the cache for a pass that starts at wm, or starts anew.
func (e *AlertEvaluator) useCache(cfg *Config, alerts string, wm int64) {
	ttl, max := e.CacheFor, e.MaxCached
	if ttl <= 0 {
		ttl = time.Minute
	}
	if max <= 0 {
		max = 100_000
	}
	now := e.Now()
	if c := e.cache; c != nil && c.upto == wm && c.cfg == cfg && c.alerts == alerts && now.Sub(c.born) < ttl && len(c.values) <= max {
		return
	}
	e.cache = &alertCache{upto: wm, cfg: cfg, alerts: alerts, born: now, values: map[usageKey]*cachedValue{}}
}

// watched is an alert with its meter, in force in this configuration.
type watched struct {
	*Alert
	m *Meter
}

// usageKey names the value of one meter of one customer in one period.
type usageKey struct {
	customer string
	meter    string
	period   Period
	key      string
}

// candidate is an alert that events of a pass may have fired.
type candidate struct {
	a          *watched
	u          usageKey
	start, end time.Time
}

// pass evaluates the events (after, upto] and moves the watermark to upto.
func (e *AlertEvaluator) pass(ctx context.Context, cfg *Config, alerts []*Alert, after, upto int64) (events, fired int, err error) {
	byMeter := map[string][]*watched{}
	typeSet := map[string]bool{}
	for _, a := range alerts {
		m := cfg.Meter(a.Meter)
		// An alert whose meter or period the configuration no longer has,
		// or has with another op, sleeps until they are back.
		if m == nil || alertOp(m) != nil || !hasPeriod(cfg, a.Period) {
			continue
		}
		byMeter[m.Name] = append(byMeter[m.Name], &watched{a, m})
		typeSet[m.EventType] = true
	}
	types := make([]string, 0, len(typeSet))
	for t := range typeSet {
		types = append(types, t)
	}
	sort.Strings(types)
	grace := time.Duration(cfg.GracePeriod)
	bounds := newAlertPeriods(ctx, cfg, e.Customers)
	cands := map[FiringKey]*candidate{}
	fold := newFolder(cfg)
	if len(types) > 0 {
		err = e.Store.ScanAlertEvents(ctx, after, upto, types, func(ev *Event) error {
			events++
			at := SlotStart(SlotOf(ev.Time.UnixMilli()))
			for _, s := range fold.samples(ev) {
				added := map[usageKey]bool{}
				for _, a := range byMeter[s.m.Name] {
					if a.CustomerID != "" && a.CustomerID != ev.CustomerID {
						continue
					}
					key, start, end := bounds.of(a.Period, ev.CustomerID, at)
					// A kept value takes in the event once, unless the
					// aggregation it was read from already held it.
					if u := (usageKey{ev.CustomerID, a.m.Name, a.Period, key}); !added[u] {
						added[u] = true
						if v := e.cache.values[u]; v != nil && !v.run.Folded(ev.CustomerID, ev.Seq) {
							v.st.Add(&s.s)
						}
					}
					// The period must have been open when the event was
					// acknowledged: a late event for a period already
					// completed does not alert.
					if !end.Add(grace).After(ev.ReceivedAt) {
						continue
					}
					fk := FiringKey{a.ID, ev.CustomerID, a.Period, key}
					if cands[fk] == nil {
						cands[fk] = &candidate{a: a, u: usageKey{ev.CustomerID, a.m.Name, a.Period, key}, start: start, end: end}
					}
				}
			}
			return bounds.err
		})
		if err != nil {
			return events, 0, err
		}
	}
	var firings []*AlertFiring
	if len(cands) > 0 {
		firings, err = e.evaluate(ctx, cfg, cands, bounds, upto)
		if err == nil {
			err = bounds.err
		}
		if err != nil {
			return events, 0, err
		}
	}
	fired, err = e.Store.FireAlerts(ctx, after, upto, firings)
	return events, fired, err
}

// evaluate computes the current value of each candidate that has not
// fired, and returns the firings of those that reached their threshold.
func (e *AlertEvaluator) evaluate(ctx context.Context, cfg *Config, cands map[FiringKey]*candidate, bounds *alertPeriods, upto int64) ([]*AlertFiring, error) {
	keys := make([]FiringKey, 0, len(cands))
	for k := range cands {
		keys = append(keys, k)
	}
	done, err := e.Store.FindFirings(ctx, keys)
	if err != nil {
		return nil, err
	}
	states := map[usageKey]State{}
	read := map[usageKey]State{} // those of states read from the store
	aggKeys := map[AggregationKey]bool{}
	typeSet := map[string]bool{}
	// periods holds, for each customer and meter, the periods to read.
	periods := map[[2]string][]Period{}
	for k, c := range cands {
		if done[k] != nil {
			delete(cands, k)
			delete(e.cache.values, c.u)
			continue
		}
		if v := e.cache.values[c.u]; v != nil {
			states[c.u] = v.st
			continue
		}
		if states[c.u] == nil {
			states[c.u] = c.a.m.NewState()
			read[c.u] = states[c.u]
			aggKeys[AggregationKey{c.u.customer, c.u.period, c.u.key}] = true
			typeSet[c.a.m.EventType] = true
			cm := [2]string{c.u.customer, c.u.meter}
			if !slices.Contains(periods[cm], c.u.period) {
				periods[cm] = append(periods[cm], c.u.period)
			}
		}
	}
	if len(cands) == 0 {
		return nil, nil
	}
	if len(aggKeys) > 0 {
		ak := make([]AggregationKey, 0, len(aggKeys))
		for k := range aggKeys {
			ak = append(ak, k)
		}
		types := make([]string, 0, len(typeSet))
		for t := range typeSet {
			types = append(types, t)
		}
		sort.Strings(types)
		aggs, pending, run, err := e.Store.AlertUsage(ctx, ak, types, upto)
		if err != nil {
			return nil, err
		}
		for u, st := range read {
			if ag := aggs[AggregationKey{u.customer, u.period, u.key}]; ag != nil {
				if s := ag.States[u.meter]; s != nil && sameKind(s, st) {
					st.Merge(s)
				}
			}
		}
		fold := newFolder(cfg)
		for i := range pending {
			ev := &pending[i]
			at := SlotStart(SlotOf(ev.Time.UnixMilli()))
			for _, s := range fold.samples(ev) {
				for _, p := range periods[[2]string{ev.CustomerID, s.m.Name}] {
					key, _, _ := bounds.of(p, ev.CustomerID, at)
					if st := read[usageKey{ev.CustomerID, s.m.Name, p, key}]; st != nil {
						st.Add(&s.s)
					}
				}
			}
		}
		for u, st := range read {
			e.cache.values[u] = &cachedValue{st: st, run: run}
		}
	}
	now := e.Now().UTC()
	var out []*AlertFiring
	for k, c := range cands {
		st := states[c.u]
		if st.Count() == 0 {
			continue
		}
		v := value(c.a.m.Op, st, c.a.m.span(c.start, c.end))
		if v < c.a.Threshold {
			continue
		}
		// Fired: its value is of no more use this period.
		delete(e.cache.values, c.u)
		out = append(out, &AlertFiring{FiringKey: k, Value: v, FiredAt: now, Notification: newThresholdNotification(cfg, c.a.Alert, k, v, now)})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].FiringKey, out[j].FiringKey
		return a.CustomerID < b.CustomerID || (a.CustomerID == b.CustomerID && a.AlertID < b.AlertID)
	})
	return out, nil
}

func newThresholdNotification(cfg *Config, a *Alert, k FiringKey, v float64, now time.Time) *Notification {
	b, _ := Marshal(ThresholdPayload{
		Type: UsageThresholdReached, CustomerID: k.CustomerID, AlertID: a.ID, Meter: a.Meter,
		Period: k.Period, PeriodKey: k.PeriodKey, Threshold: a.Threshold, Value: v, Created: now.Unix(),
	})
	var endpoints []string
	for _, w := range cfg.Webhooks {
		if w.Enabled {
			endpoints = append(endpoints, w.URL)
		}
	}
	// No aggregation: the delivery's status is its own, and no
	// aggregation's webhookStatus counts it.
	return &Notification{Type: UsageThresholdReached, CustomerID: k.CustomerID, Payload: b, CreatedAt: now, Endpoints: endpoints}
}

// alertPeriods finds the period holding an instant for a customer, with
// its bounds: the aggregator's calendar, billing cycles included. A store
// error reading a customer's profile is kept, and ends the pass.
type alertPeriods struct {
	cal *calendar
	err error
}

func newAlertPeriods(ctx context.Context, cfg *Config, customers CustomerSource) *alertPeriods {
	return &alertPeriods{cal: newCalendar(ctx, cfg, customers)}
}

// of returns the key and bounds of customer's period p holding t.
func (ap *alertPeriods) of(p Period, customer string, t time.Time) (key string, start, end time.Time) {
	key, err := ap.cal.keyAt(customer, p, t)
	if err != nil {
		if ap.err == nil {
			ap.err = err
		}
		return "", time.Time{}, time.Time{}
	}
	start, end = ap.cal.bound(customer, p, key)
	return key, start, end
}

// AlertsFor returns those of alerts that apply to customer, in their
// order: the customer's own, and, unless ownOnly, those of every customer.
// A key pinned to the customer sees its own only (GET /alerts's rule):
// alerts of every customer are the vendor's.
func AlertsFor(alerts []*Alert, customer string, ownOnly bool) []*Alert {
	var out []*Alert
	for _, a := range alerts {
		if a.CustomerID == customer || (a.CustomerID == "" && !ownOnly) {
			out = append(out, a)
		}
	}
	return out
}

// AlertStatus is an alert as it stands for one customer at one instant:
// the alert's period that holds the instant, the customer's value of the
// meter in it so far, and whether, when and at what value the alert fired
// in it.
type AlertStatus struct {
	Alert *Alert
	// Active is false while the configuration lacks the alert's meter or
	// period, or has the meter with an op that alerts do not watch: the
	// alert sleeps (as the evaluator skips it), and the fields below are
	// zero.
	Active bool
	// PeriodKey, Start and End are the alert's period holding the instant,
	// End the first instant after it: for billing, the customer's cycle.
	PeriodKey  string
	Start, End time.Time
	// Location is the zone of the period: the configuration's, or for
	// billing the customer's cycle's.
	Location *time.Location
	// Value is the customer's value of the meter in the period so far,
	// with the op the evaluator compares to the threshold, over Count
	// events; 0 over none.
	Value float64
	Count int64
	// Fired is the firing of this alert, customer and period (without its
	// notification); nil while the alert has not fired in the period.
	Fired *AlertFiring
}

// AlertStatuses returns the status of each of alerts for customer at now.
// The firings are those the evaluator recorded, the one record of a
// usage.threshold_reached sent. The values are computed as GET /usage
// computes them: from the customer's buckets and the events not yet
// folded into them, so a value may be ahead of the evaluator's last pass
// by the events of a few seconds.
func AlertStatuses(ctx context.Context, usage AggregationStore, firings AlertStore, customers CustomerSource, cfg *Config, customer string, alerts []*Alert, now time.Time) ([]AlertStatus, error) {
	cal := newCalendar(ctx, cfg, customers)
	out := make([]AlertStatus, len(alerts))
	var keys []FiringKey
	var meters []*Meter
	var from, to time.Time
	for i, a := range alerts {
		out[i].Alert = a
		m := cfg.Meter(a.Meter)
		if m == nil || alertOp(m) != nil || !hasPeriod(cfg, a.Period) {
			continue
		}
		key, err := cal.keyAt(customer, a.Period, now)
		if err != nil {
			return nil, err
		}
		start, end := cal.bound(customer, a.Period, key)
		loc := cfg.Location
		if a.Period == Billing {
			prof, err := cal.profile(customer)
			if err != nil {
				return nil, err
			}
			_, _, loc = prof.cycleAt(now, cfg.Location)
		}
		out[i] = AlertStatus{Alert: a, Active: true, PeriodKey: key, Start: start, End: end, Location: loc}
		keys = append(keys, FiringKey{a.ID, customer, a.Period, key})
		if !slices.Contains(meters, m) {
			meters = append(meters, m)
		}
		if from.IsZero() || start.Before(from) {
			from = start
		}
		if end.After(to) {
			to = end
		}
	}
	if len(keys) == 0 {
		return out, nil
	}
	fired, err := firings.FindFirings(ctx, keys)
	if err != nil {
		return nil, err
	}
	fromSlot, toSlot := SlotOf(from.UnixMilli()), SlotOf(to.UnixMilli())
	buckets, pending, err := usage.FindCustomerUsage(ctx, customer, HourOfSlot(fromSlot), HourOfSlot(toSlot))
	if err != nil {
		return nil, err
	}
	slots := foldSlots(cfg, meters, buckets, pending, fromSlot, toSlot)
	for i := range out {
		s := &out[i]
		if !s.Active {
			continue
		}
		m := cfg.Meter(s.Alert.Meter)
		st := m.NewState()
		lo, hi := SlotOf(s.Start.UnixMilli()), SlotOf(s.End.UnixMilli())
		for slot, x := range slots[m.Name] {
			if slot >= lo && slot < hi && sameKind(st, x) {
				st.Merge(x)
			}
		}
		if s.Count = st.Count(); s.Count > 0 {
			s.Value = value(m.Op, st, m.span(s.Start, s.End))
		}
		s.Fired = fired[FiringKey{s.Alert.ID, customer, s.Alert.Period, s.PeriodKey}]
	}
	return out, nil
}
