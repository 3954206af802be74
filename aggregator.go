package odometer

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Aggregator folds new events into buckets and aggregations and finalizes
// the periods that have ended. A run costs what the new events cost: it
// reads only the events past the watermark, sorted by customer, and
// touches only the buckets and periods they fall in, each once.
type Aggregator struct {
	Store AggregationStore
	// Config returns the configuration in force.
	Config func() *Config
	Now    func() time.Time
	// ChunkSize bounds the events (by Seq) of one pass; 0 means 50 million.
	ChunkSize int64
	// FlushEvents is how many events are folded between two commits, so
	// that ingest gets its turn at the single writer; 0 means 100,000.
	FlushEvents int
	// Skipped, when set, is told after each run how many events each
	// meter skipped, and why (odometer_meter_events_skipped_total).
	Skipped func(MeterSkip, int64)

	mu sync.Mutex // one run at a time in this process
}

// RunResult counts what a run did.
type RunResult struct {
	AggregationsCreated int `json:"aggregationsCreated"`
	AggregationsUpdated int `json:"aggregationsUpdated"`
	EventsProcessed     int `json:"eventsProcessed"`
	// PeriodsCompleted and PeriodsRevised count the notifications recorded.
	PeriodsCompleted int `json:"periodsCompleted"`
	PeriodsRevised   int `json:"periodsRevised"`
	// Skipped counts the events each meter skipped, by reason.
	Skipped map[MeterSkip]int64 `json:"-"`
}

// MeterSkip names a meter and why it skipped events.
type MeterSkip struct{ Meter, Reason string }

func (r *RunResult) addSkips(s map[MeterSkip]int64) {
	for k, n := range s {
		if r.Skipped == nil {
			r.Skipped = map[MeterSkip]int64{}
		}
		r.Skipped[k] += n
	}
}

// Run folds every event past the watermark into the aggregates, then
// finalizes every period that has ended, whatever its age.
func (a *Aggregator) Run(ctx context.Context) (RunResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var res RunResult
	defer a.reportSkips(&res)
	release, err := a.Store.LockAggregation(ctx)
	if err != nil {
		return res, fmt.Errorf("aggregate: %w", err)
	}
	defer release()
	cfg := a.Config()
	chunk := a.ChunkSize
	if chunk <= 0 {
		chunk = 50_000_000
	}
	flush := a.FlushEvents
	if flush <= 0 {
		flush = 100_000
	}
	pk := newPeriodKeys(cfg)
	for {
		st, err := a.Store.RunState(ctx)
		if err != nil {
			return res, fmt.Errorf("aggregate: %w", err)
		}
		stored := st
		if !st.InProgress() {
			max, err := a.Store.MaxSeq(ctx)
			if err != nil {
				return res, fmt.Errorf("aggregate: %w", err)
			}
			if max <= st.Watermark {
				break
			}
			st.To, st.After = min(max, st.Watermark+chunk), ""
		}
		r := &runner{ctx: ctx, a: a, cfg: cfg, pk: pk, res: &res, st: st, stored: stored, flushEvents: flush, slots: map[typeSlot]State{}, fold: newFolder(cfg)}
		err = a.Store.ScanEvents(ctx, st.Watermark, st.To, st.After, cfg.readsMetadata(), r.add)
		if err == nil {
			err = r.finish(ctx)
		}
		res.addSkips(r.fold.skipped)
		if err != nil {
			return res, fmt.Errorf("aggregate: %w", err)
		}
	}
	if err := a.rebuild(ctx, cfg, pk, &res); err != nil {
		return res, err
	}
	if err := a.finalize(ctx, cfg, pk, &res); err != nil {
		return res, err
	}
	return res, nil
}

func (a *Aggregator) reportSkips(res *RunResult) {
	if a.Skipped == nil {
		return
	}
	for k, n := range res.Skipped {
		a.Skipped(k, n)
	}
}

// typeSlot names one 15-minute slot of one meter of the customer being
// folded.
type typeSlot struct {
	meter string
	slot  int64
}

// customerFold is the delta of one customer.
type customerFold struct {
	customer string
	slots    map[typeSlot]State
}

// folder turns each event into the samples of the meters that count it,
// and counts the events each meter skips.
type folder struct {
	cfg     *Config
	md      metadata
	out     []meterSample
	skipped map[MeterSkip]int64
	removed map[string][]*Meter
}

type meterSample struct {
	m *Meter
	s Sample
}

func newFolder(cfg *Config) *folder {
	return &folder{cfg: cfg, skipped: map[MeterSkip]int64{}}
}

// samples returns the samples of e, one per meter that counts it. The
// slice is reused by the next call.
func (f *folder) samples(e *Event) []meterSample {
	f.out = f.out[:0]
	f.md.reset(e.Metadata)
	ms := e.Time.UnixMilli()
	for _, m := range f.metersOf(e.EventType) {
		f.out = append(f.out, meterSample{m: m, s: Sample{Time: ms, Seq: e.Seq}})
		ps := &f.out[len(f.out)-1]
		switch reason := m.sample(e, &f.md, &ps.s); reason {
		case "":
		case filteredOut:
			f.out = f.out[:len(f.out)-1]
		default:
			f.skipped[MeterSkip{m.Name, reason}]++
			f.out = f.out[:len(f.out)-1]
		}
	}
	return f.out
}

// metersOf returns the meters of an event type. An event type no longer
// in the configuration is still folded, as one meter of its name shown
// with sum, as it always was.
func (f *folder) metersOf(eventType string) []*Meter {
	if ms, ok := f.cfg.metersByType[eventType]; ok {
		return ms
	}
	if f.removed == nil {
		f.removed = map[string][]*Meter{}
	}
	ms, ok := f.removed[eventType]
	if !ok {
		ms = []*Meter{{Name: eventType, EventType: eventType, Op: OpSum, def: opsByName[OpSum]}}
		f.removed[eventType] = ms
	}
	return ms
}

// runner folds one pass, customer by customer.
type runner struct {
	a           *Aggregator
	cfg         *Config
	pk          *periodKeys
	res         *RunResult
	st          RunState // the pass: the range and the customers done
	stored      RunState // what the store holds, to check no one else moved it
	flushEvents int

	fold *folder

	ctx      context.Context
	customer string
	slots    map[typeSlot]State
	done     []customerFold // folded, not yet written
	pending  int            // events in done
	slotsIn  int            // slots in done: each may touch a bucket and five periods
}

func (r *runner) add(e *Event) error {
	if e.CustomerID != r.customer {
		if err := r.endCustomer(r.ctx); err != nil {
			return err
		}
		r.customer = e.CustomerID
	}
	slot := SlotOf(e.Time.UnixMilli())
	for i := range r.fold.samples(e) {
		ps := &r.fold.out[i]
		k := typeSlot{ps.m.Name, slot}
		st := r.slots[k]
		if st == nil {
			st = ps.m.NewState()
			r.slots[k] = st
		}
		st.Add(&ps.s)
	}
	r.pending++
	r.res.EventsProcessed++
	return nil
}

// endCustomer queues the customer folded so far and writes the queue once
// it holds enough events.
func (r *runner) endCustomer(ctx context.Context) error {
	if r.customer == "" || len(r.slots) == 0 {
		return nil
	}
	r.done = append(r.done, customerFold{r.customer, r.slots})
	r.slots = make(map[typeSlot]State, len(r.slots))
	r.slotsIn += len(r.done[len(r.done)-1].slots)
	// Flush by events, and by slots too: sparse events each touch their
	// own periods, and it is what a flush touches that it holds in memory.
	if r.pending >= r.flushEvents || r.slotsIn >= r.flushEvents/4 {
		return r.write(ctx, false)
	}
	return nil
}

func (r *runner) finish(ctx context.Context) error {
	if err := r.endCustomer(ctx); err != nil {
		return err
	}
	return r.write(ctx, true)
}

// write stores the queued customers in one transaction, with the progress
// that lets a stopped run resume after the last of them.
func (r *runner) write(ctx context.Context, last bool) error {
	next := r.st
	if last {
		next = RunState{Watermark: r.st.To, To: r.st.To}
	} else if len(r.done) > 0 {
		next.After = r.done[len(r.done)-1].customer
	}
	now := r.a.Now().UTC()
	var res RunResult
	err := r.a.Store.Aggregate(ctx, func(tx AggregationTx) error {
		res = RunResult{}
		cur, err := tx.RunState()
		if err != nil {
			return err
		}
		if cur != r.stored {
			return fmt.Errorf("aggregation progress moved from %+v to %+v: another writer is aggregating", r.stored, cur)
		}
		if err := r.apply(tx, now, &res); err != nil {
			return err
		}
		return tx.SetRunState(next)
	})
	if err != nil {
		return err
	}
	r.res.AggregationsCreated += res.AggregationsCreated
	r.res.AggregationsUpdated += res.AggregationsUpdated
	r.res.PeriodsCompleted += res.PeriodsCompleted
	r.res.PeriodsRevised += res.PeriodsRevised
	r.st, r.stored = next, next
	r.done = r.done[:0]
	r.pending, r.slotsIn = 0, 0
	return nil
}

// apply merges the queued customers' deltas into their buckets and
// aggregations, each row read and written once, and finalizes at once the
// periods that have already ended.
func (r *runner) apply(tx AggregationTx, now time.Time, res *RunResult) error {
	cfg := r.cfg
	// Buckets: one per customer, event type and UTC hour.
	days := make(map[BucketKey]map[int64]State)
	for i := range r.done {
		cf := &r.done[i]
		for k, s := range cf.slots {
			bk := BucketKey{cf.customer, k.meter, HourOfSlot(k.slot)}
			d := days[bk]
			if d == nil {
				d = make(map[int64]State, 4)
				days[bk] = d
			}
			d[k.slot] = s
		}
	}
	keys := make([]BucketKey, 0, len(days))
	for k := range days {
		keys = append(keys, k)
	}
	stored, err := tx.LoadBuckets(keys)
	if err != nil {
		return err
	}
	out := make(map[BucketKey][]byte, len(days))
	for bk, delta := range days {
		slots := make(map[int64]State, len(delta))
		if b, ok := stored[bk]; ok {
			if err := DecodeSlots(bk.Hour, b, slots); err != nil {
				return fmt.Errorf("bucket %v: %w", bk, err)
			}
		}
		for s, st := range delta {
			if cur := slots[s]; cur != nil && sameKind(cur, st) {
				cur.Merge(st)
			} else {
				slots[s] = st.Clone()
			}
		}
		out[bk] = EncodeSlots(bk.Hour, slots)
	}
	if err := tx.SaveBuckets(out); err != nil {
		return err
	}

	// Aggregations: each slot's delta into every period holding it.
	deltas := make(map[AggregationKey]map[string]State)
	for i := range r.done {
		cf := &r.done[i]
		for k, s := range cf.slots {
			for j, key := range r.pk.of(k.slot) {
				ak := AggregationKey{cf.customer, cfg.Periods[j], key}
				d := deltas[ak]
				if d == nil {
					d = make(map[string]State, 2)
					deltas[ak] = d
				}
				if cur := d[k.meter]; cur != nil {
					cur.Merge(s)
				} else {
					d[k.meter] = s.Clone()
				}
			}
		}
	}
	akeys := make([]AggregationKey, 0, len(deltas))
	for k := range deltas {
		akeys = append(akeys, k)
	}
	existing, err := tx.LoadAggregations(akeys)
	if err != nil {
		return err
	}
	aggs := make([]*Aggregation, 0, len(deltas))
	carry := newCarrier(cfg, r.pk, tx, now)
	var carried []*Aggregation // those whose gauges changed
	for ak, states := range deltas {
		ag := existing[ak]
		if ag == nil {
			start, stop := r.pk.bound(ak.Period, ak.Key)
			ag = &Aggregation{CustomerID: ak.CustomerID, Period: ak.Period, PeriodKey: ak.Key, PeriodStart: start, PeriodEnd: stop, States: states}
			res.AggregationsCreated++
		} else {
			for t, s := range states {
				if cur := ag.States[t]; cur != nil && sameKind(cur, s) {
					cur.Merge(s)
				} else {
					ag.States[t] = s
				}
			}
			if ag.Complete {
				ag.Dirty = true
			}
			res.AggregationsUpdated++
		}
		ag.Timestamp = now
		aggs = append(aggs, ag)
		if carry != nil && carry.hasGauge(states) {
			carried = append(carried, ag)
		}
	}
	if len(carried) > 0 {
		carry.saving(aggs)
		more, err := carry.settle(carried)
		if err != nil {
			return err
		}
		aggs = append(aggs, more[len(carried):]...)
		res.AggregationsCreated += carry.created
	}
	return finalizeAndSave(tx, cfg, aggs, now, res)
}

// finalizeAndSave completes or revises those of aggs that have ended, and
// saves them with their notifications.
func finalizeAndSave(tx AggregationTx, cfg *Config, aggs []*Aggregation, now time.Time, res *RunResult) error {
	end := now.Add(-time.Duration(cfg.GracePeriod))
	var notes []*Notification
	for _, ag := range aggs {
		if !ag.PeriodEnd.After(end) {
			if n := finalizeOne(cfg, ag, now, res); n != nil {
				notes = append(notes, n)
			}
		}
	}
	if err := tx.SaveAggregations(aggs); err != nil {
		return err
	}
	return tx.AddNotifications(notes)
}

// finalizeOne completes an ended aggregation, or revises a completed one
// that changed, and returns the notification due; nil if nothing is due.
func finalizeOne(cfg *Config, ag *Aggregation, now time.Time, res *RunResult) *Notification {
	var n *Notification
	v := ag.Values(cfg)
	switch {
	case !ag.Complete:
		ag.Complete, ag.Revision = true, 1
		n = newNotification(cfg, ag, v, AggregationCompleted, nil, now)
		res.PeriodsCompleted++
	case ag.Dirty:
		ag.Revision++
		n = newNotification(cfg, ag, v, AggregationUpdated, ag.Published, now)
		res.PeriodsRevised++
	default:
		return nil
	}
	ag.Dirty = false
	ag.Published = v
	ag.Webhook = WebhookStatus{}
	return n
}

// periodKeys caches the period keys of slots in the configured zone.
type periodKeys struct {
	cfg    *Config
	bySlot map[int64][]string
	bounds map[string][2]time.Time
}

func newPeriodKeys(cfg *Config) *periodKeys {
	return &periodKeys{cfg: cfg, bySlot: map[int64][]string{}, bounds: map[string][2]time.Time{}}
}

func (pk *periodKeys) of(slot int64) []string {
	if k, ok := pk.bySlot[slot]; ok {
		return k
	}
	t := SlotStart(slot).In(pk.cfg.Location)
	k := make([]string, len(pk.cfg.Periods))
	for i, p := range pk.cfg.Periods {
		k[i] = p.Key(t)
	}
	pk.bySlot[slot] = k
	return k
}

func (pk *periodKeys) bound(p Period, key string) (time.Time, time.Time) {
	id := string(p) + key
	if b, ok := pk.bounds[id]; ok {
		return b[0], b[1]
	}
	s, e, _ := p.Bounds(key, pk.cfg.Location)
	pk.bounds[id] = [2]time.Time{s, e}
	return s, e
}

// finalize completes every period that has ended (plus the grace period)
// without new events, and revises every completed one that changed,
// recording their notifications in the same transaction.
func (a *Aggregator) finalize(ctx context.Context, cfg *Config, pk *periodKeys, res *RunResult) error {
	const batch = 5000
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := a.Now().UTC()
		end := now.Add(-time.Duration(cfg.GracePeriod))
		var n int
		var r RunResult
		err := a.Store.Aggregate(ctx, func(tx AggregationTx) error {
			r = RunResult{}
			due, err := tx.FindDue(end, batch)
			if err != nil {
				return err
			}
			n = len(due)
			notes := make([]*Notification, 0, len(due))
			for _, ag := range due {
				if note := finalizeOne(cfg, ag, now, &r); note != nil {
					notes = append(notes, note)
				}
			}
			if err := tx.SaveAggregations(due); err != nil {
				return err
			}
			if err := tx.AddNotifications(notes); err != nil {
				return err
			}
			// A period that ends hands its gauges to the next one.
			if c := newCarrier(cfg, pk, tx, now); c != nil {
				more, err := c.forwardFrom(due)
				if err != nil {
					return err
				}
				r.AggregationsCreated += c.created
				return finalizeAndSave(tx, cfg, more, now, &r)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("finalize: %w", err)
		}
		res.AggregationsCreated += r.AggregationsCreated
		res.PeriodsCompleted += r.PeriodsCompleted
		res.PeriodsRevised += r.PeriodsRevised
		if n < batch {
			return nil
		}
	}
}
