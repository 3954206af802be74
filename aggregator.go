package odometer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Aggregator folds new events into buckets and aggregations and finalizes
// the periods that have ended. A run costs what the new events cost: it
// reads only events past the watermark and touches only the buckets and
// periods they fall in.
type Aggregator struct {
	Store AggregationStore
	// Config returns the configuration in force.
	Config func() *Config
	Now    func() time.Time
	// ChunkSize is how many events one write transaction folds in.
	ChunkSize int

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
}

// errMoved: another run advanced the watermark first; start over from it.
var errMoved = errors.New("watermark moved")

// Run folds every event past the watermark into the aggregates, then
// finalizes every period that has ended, whatever its age.
func (a *Aggregator) Run(ctx context.Context) (RunResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var res RunResult
	cfg := a.Config()
	chunk := a.ChunkSize
	if chunk <= 0 {
		chunk = 250_000
	}
	keys := newPeriodKeys(cfg)
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		w, err := a.Store.Watermark(ctx)
		if err != nil {
			return res, fmt.Errorf("aggregate: %w", err)
		}
		f := newFold()
		err = a.Store.ScanEvents(ctx, w, chunk, func(e *Event) error {
			f.add(e)
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("aggregate: scan: %w", err)
		}
		if f.n == 0 {
			break
		}
		err = a.Store.Aggregate(ctx, func(tx AggregationTx) error {
			return a.apply(tx, w, f, keys, cfg, &res)
		})
		if errors.Is(err, errMoved) {
			continue
		}
		if err != nil {
			return res, fmt.Errorf("aggregate: %w", err)
		}
		res.EventsProcessed += f.n
	}
	if err := a.finalize(ctx, cfg, &res); err != nil {
		return res, err
	}
	return res, nil
}

// fold is the delta of a run's chunk: the state of each slot touched.
type fold struct {
	n     int
	last  int64
	slots map[slotKey]*State
}

type slotKey struct {
	customer, eventType string
	slot                int64
}

func newFold() *fold { return &fold{slots: make(map[slotKey]*State)} }

func (f *fold) add(e *Event) {
	ms := e.Time.UnixMilli()
	k := slotKey{e.CustomerID, e.EventType, SlotOf(ms)}
	s := f.slots[k]
	if s == nil {
		s = new(State)
		f.slots[k] = s
	}
	s.Add(e.Value, ms, e.Seq)
	f.n++
	f.last = e.Seq
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

func (a *Aggregator) apply(tx AggregationTx, w int64, f *fold, pk *periodKeys, cfg *Config, res *RunResult) error {
	if cur, err := tx.Watermark(); err != nil {
		return err
	} else if cur != w {
		return errMoved
	}
	now := a.Now().UTC()

	// Buckets: merge each slot's delta into its day.
	days := make(map[BucketKey]map[int64]*State)
	for k, s := range f.slots {
		bk := BucketKey{k.customer, k.eventType, DayOfSlot(k.slot)}
		d := days[bk]
		if d == nil {
			d = make(map[int64]*State, 4)
			days[bk] = d
		}
		d[k.slot] = s
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
		slots := make(map[int64]*State, len(delta))
		if b, ok := stored[bk]; ok {
			if err := DecodeSlots(bk.Day, b, slots); err != nil {
				return fmt.Errorf("bucket %v: %w", bk, err)
			}
		}
		for s, st := range delta {
			if cur := slots[s]; cur != nil {
				cur.Merge(st)
			} else {
				slots[s] = cloneState(st)
			}
		}
		out[bk] = EncodeSlots(bk.Day, slots)
	}
	if err := tx.SaveBuckets(out); err != nil {
		return err
	}

	// Aggregations: merge each slot's delta into every period holding it.
	type aggDelta struct {
		customer string
		period   Period
		key      string
		states   map[string]*State
	}
	deltas := make(map[string]*aggDelta)
	for k, s := range f.slots {
		for i, key := range pk.of(k.slot) {
			p := cfg.Periods[i]
			id := AggregationID(k.customer, p, key)
			d := deltas[id]
			if d == nil {
				d = &aggDelta{customer: k.customer, period: p, key: key, states: make(map[string]*State, 2)}
				deltas[id] = d
			}
			if cur := d.states[k.eventType]; cur != nil {
				cur.Merge(s)
			} else {
				d.states[k.eventType] = cloneState(s)
			}
		}
	}
	ids := make([]string, 0, len(deltas))
	for id := range deltas {
		ids = append(ids, id)
	}
	existing, err := tx.LoadAggregations(ids)
	if err != nil {
		return err
	}
	aggs := make([]*Aggregation, 0, len(deltas))
	for id, d := range deltas {
		ag := existing[id]
		if ag == nil {
			start, end := pk.bound(d.period, d.key)
			ag = &Aggregation{CustomerID: d.customer, Period: d.period, PeriodKey: d.key,
				PeriodStart: start, PeriodEnd: end, States: d.states}
			res.AggregationsCreated++
		} else {
			for t, s := range d.states {
				if cur := ag.States[t]; cur != nil {
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
	}
	if err := tx.SaveAggregations(aggs); err != nil {
		return err
	}
	return tx.SetWatermark(f.last)
}

func cloneState(s *State) *State {
	c := *s
	c.Sum.p = append([]float64(nil), s.Sum.p...)
	return &c
}

// finalize completes every period that has ended (plus the grace period)
// and revises every completed one that changed, recording their
// notifications in the same transaction.
func (a *Aggregator) finalize(ctx context.Context, cfg *Config, res *RunResult) error {
	const batch = 5000
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := a.Now().UTC()
		end := now.Add(-time.Duration(cfg.GracePeriod))
		var n int
		err := a.Store.Aggregate(ctx, func(tx AggregationTx) error {
			due, err := tx.FindDue(end, batch)
			if err != nil {
				return err
			}
			n = len(due)
			notes := make([]*Notification, 0, len(due))
			for _, ag := range due {
				v := ag.Values(cfg)
				switch {
				case !ag.Complete:
					ag.Complete, ag.Revision = true, 1
					notes = append(notes, newNotification(cfg, ag, v, AggregationCompleted, nil, now))
					res.PeriodsCompleted++
				case ag.Dirty:
					ag.Revision++
					notes = append(notes, newNotification(cfg, ag, v, AggregationUpdated, ag.Published, now))
					res.PeriodsRevised++
				}
				ag.Dirty = false
				ag.Published = v
				ag.Webhook = WebhookStatus{}
			}
			if err := tx.SaveAggregations(due); err != nil {
				return err
			}
			return tx.AddNotifications(notes)
		})
		if err != nil {
			return fmt.Errorf("finalize: %w", err)
		}
		if n < batch {
			return nil
		}
	}
}
