package odometer

import (
	"context"
	"time"
)

// calendar names the periods of a run and their bounds: the configured
// calendar periods in the configured zone, the same for every customer and
// cached by slot; and the billing period, each customer's own cycle.
type calendar struct {
	ctx     context.Context
	cfg     *Config
	billing int // the index of Billing in cfg.Periods, -1 without it
	bySlot  map[int64][]string
	bounds  map[string][2]time.Time
	// The billing period's: the profiles read, and each cycle's bounds by
	// customer and key.
	customers CustomerSource
	profiles  map[string]*Customer
	cycles    map[AggregationKey][2]time.Time
}

func newCalendar(ctx context.Context, cfg *Config, customers CustomerSource) *calendar {
	c := &calendar{ctx: ctx, cfg: cfg, billing: -1, bySlot: map[int64][]string{}, bounds: map[string][2]time.Time{}, customers: customers}
	for i, p := range cfg.Periods {
		if p == Billing {
			c.billing = i
			c.profiles = map[string]*Customer{}
			c.cycles = map[AggregationKey][2]time.Time{}
		}
	}
	return c
}

// keysAt returns the key of each configured period holding slot, for the
// customer, in the order of cfg.Periods. The slice may be shared: it must
// not be changed.
func (c *calendar) keysAt(customer string, slot int64) ([]string, error) {
	k, ok := c.bySlot[slot]
	if !ok {
		t := SlotStart(slot).In(c.cfg.Location)
		k = make([]string, len(c.cfg.Periods))
		for i, p := range c.cfg.Periods {
			if p != Billing {
				k[i] = p.Key(t)
			}
		}
		c.bySlot[slot] = k
	}
	if c.billing < 0 {
		return k, nil
	}
	key, err := c.keyAt(customer, Billing, SlotStart(slot))
	if err != nil {
		return nil, err
	}
	out := append([]string(nil), k...)
	out[c.billing] = key
	return out, nil
}

// keyAt returns the key of the period of type p holding t, for customer.
func (c *calendar) keyAt(customer string, p Period, t time.Time) (string, error) {
	if p != Billing {
		return p.Key(t.In(c.cfg.Location)), nil
	}
	prof, err := c.profile(customer)
	if err != nil {
		return "", err
	}
	key, start, end := prof.CycleKey(t, c.cfg.Location)
	c.cycles[AggregationKey{customer, Billing, key}] = [2]time.Time{start, end}
	return key, nil
}

// bound returns the bounds of a period named by keysAt or keyAt.
func (c *calendar) bound(customer string, p Period, key string) (time.Time, time.Time) {
	if p == Billing {
		b := c.cycles[AggregationKey{customer, p, key}]
		return b[0], b[1]
	}
	id := string(p) + key
	if b, ok := c.bounds[id]; ok {
		return b[0], b[1]
	}
	s, e, _ := p.Bounds(key, c.cfg.Location)
	c.bounds[id] = [2]time.Time{s, e}
	return s, e
}

// profile returns the customer's billing settings: its profile, or the
// calendar month for a customer without one.
func (c *calendar) profile(customer string) (*Customer, error) {
	if p, ok := c.profiles[customer]; ok {
		return p, nil
	}
	p := NewCustomer(customer)
	if c.customers != nil {
		found, err := c.customers.FindProfile(c.ctx, customer)
		switch {
		case err == nil:
			p = found
		case ErrorCode(err) != ENOTFOUND:
			return nil, err
		}
	}
	c.profiles[customer] = p
	return p, nil
}
