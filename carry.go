package odometer

import (
	"sort"
	"time"
)

// carrier keeps the gauges' carries true within one aggregation
// transaction. A gauge meter's state in a period holds the carry, the last
// point before the period; when a period's points or carry change, the
// periods after it change too, up to the first one that already carries
// the same, and a period in which a non-zero gauge is held has usage even
// with no event: it is made, and so aggregated, completed and sent.
type carrier struct {
	cfg    *Config
	pk     *calendar
	tx     AggregationTx
	now    time.Time
	gauges []*Meter
	// loaded holds every aggregation read or made in this transaction,
	// nil for one known not to exist.
	loaded map[AggregationKey]*Aggregation
	// made and changed are those to save beyond the caller's.
	out     []*Aggregation
	inOut   map[AggregationKey]bool
	created int
}

// newCarrier returns nil when no meter is a gauge: then nothing carries.
func newCarrier(cfg *Config, pk *calendar, tx AggregationTx, now time.Time) *carrier {
	if len(cfg.gauges) == 0 {
		return nil
	}
	return &carrier{cfg: cfg, pk: pk, tx: tx, now: now, gauges: cfg.gauges,
		loaded: map[AggregationKey]*Aggregation{}, inOut: map[AggregationKey]bool{}}
}

// hasGauge reports whether states hold a state of a gauge meter.
func (c *carrier) hasGauge(states map[string]State) bool {
	for _, m := range c.gauges {
		if st := states[m.Name]; st != nil && sameKind(st, m.NewState()) {
			return true
		}
	}
	return false
}

// saving tells the carrier of aggregations the caller saves in this
// transaction: a carry reaching one of them changes that copy, never a
// second one loaded from the store, which would hold none of this run's
// other states and, saved after it, would drop them.
func (c *carrier) saving(aggs []*Aggregation) {
	for _, ag := range aggs {
		c.loaded[ag.Key()] = ag
		c.inOut[ag.Key()] = true
	}
}

func (c *carrier) load(k AggregationKey) (*Aggregation, error) {
	if ag, ok := c.loaded[k]; ok {
		return ag, nil
	}
	m, err := c.tx.LoadAggregations([]AggregationKey{k})
	if err != nil {
		return nil, err
	}
	c.loaded[k] = m[k]
	return m[k], nil
}

// settle sets the carries of changed, whose gauge states changed, from the
// periods before them, and pushes them forward. all is every aggregation
// the transaction writes already (changed among them): a period that the
// carries reach is taken from there, never read again from the store. It
// returns the other aggregations it changed or made, to save too.
func (c *carrier) settle(all, changed []*Aggregation) ([]*Aggregation, error) {
	c.saving(all)
	order := append([]*Aggregation(nil), changed...)
	sort.Slice(order, func(i, j int) bool { return order[i].PeriodStart.Before(order[j].PeriodStart) })
	for _, ag := range order {
		prevKey, err := c.pk.keyAt(ag.CustomerID, ag.Period, ag.PeriodStart.Add(-time.Millisecond))
		if err != nil {
			return nil, err
		}
		prev, err := c.load(AggregationKey{ag.CustomerID, ag.Period, prevKey})
		if err != nil {
			return nil, err
		}
		c.carryFrom(prev, ag)
		if err := c.forward(ag); err != nil {
			return nil, err
		}
	}
	return c.out, nil
}

// carryFrom sets next's carries from cur (nil: nothing before), and
// reports whether any changed. A state is made for a carried gauge that
// next lacks only when it holds a value other than 0.
func (c *carrier) carryFrom(cur, next *Aggregation) bool {
	changed := false
	for _, m := range c.gauges {
		var carry State
		if cur != nil {
			if st := cur.States[m.Name]; st != nil && sameKind(st, m.NewState()) {
				carry = carryOf(st)
			}
		}
		st := next.States[m.Name]
		if st != nil && !sameKind(st, m.NewState()) {
			// Stored under the name before the meter became a gauge (while
			// the server was stopped): replaced, as such states are.
			delete(next.States, m.Name)
			st = nil
		}
		if st == nil {
			if carry == nil || !holds(carry) {
				continue
			}
			st = m.NewState()
			next.States[m.Name] = st
		}
		changed = carryInto(st, carry) || changed
		if idle(st) {
			delete(next.States, m.Name)
		}
	}
	return changed
}

// forward pushes ag's carries into the periods after it that have begun,
// until one carries the same already, or none is held and the next period
// does not exist.
func (c *carrier) forward(ag *Aggregation) error {
	for cur := ag; cur.PeriodEnd.Compare(c.now) <= 0; {
		nextKey, err := c.pk.keyAt(cur.CustomerID, cur.Period, cur.PeriodEnd)
		if err != nil {
			return err
		}
		key := AggregationKey{cur.CustomerID, cur.Period, nextKey}
		next, err := c.load(key)
		if err != nil {
			return err
		}
		made := false
		if next == nil {
			start, end := c.pk.bound(key.CustomerID, key.Period, key.Key)
			next = &Aggregation{CustomerID: key.CustomerID, Period: key.Period, PeriodKey: key.Key,
				PeriodStart: start, PeriodEnd: end, States: map[string]State{}}
			made = true
		}
		if !c.carryFrom(cur, next) && !made {
			return nil
		}
		if made {
			if len(next.States) == 0 {
				return nil // nothing held: the period has no usage
			}
			c.loaded[key] = next
			c.created++
		} else if next.Complete {
			next.Dirty = true
		}
		next.Timestamp = c.now
		if !c.inOut[key] {
			c.inOut[key] = true
			c.out = append(c.out, next)
		}
		cur = next
	}
	return nil
}

// forwardFrom pushes the carries of aggs, saved already, forward, and
// returns the other aggregations it changed or made, to save.
func (c *carrier) forwardFrom(aggs []*Aggregation) ([]*Aggregation, error) {
	c.saving(aggs)
	for _, ag := range aggs {
		if c.hasGauge(ag.States) {
			if err := c.forward(ag); err != nil {
				return nil, err
			}
		}
	}
	return c.out, nil
}
