package postgres

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/odometer-dev/odometer"
)

var _ odometer.AlertStore = (*Store)(nil)

// CreateAlert implements odometer.AlertStore.
func (s *Store) CreateAlert(ctx context.Context, a *odometer.Alert) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return storeError("create alert", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// No evaluator is at work without alerts: the first one starts it at
	// the newest event.
	if _, err := tx.Exec(ctx, `UPDATE alert_progress SET watermark = (SELECT coalesce(max(seq), 0) FROM events)
		WHERE NOT EXISTS (SELECT 1 FROM alerts)`); err != nil {
		return storeError("create alert", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO alerts (id, meter, period, threshold, customer_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		a.ID, a.Meter, string(a.Period), a.Threshold, a.CustomerID, ms(a.CreatedAt)); err != nil {
		return storeError("create alert", err)
	}
	return storeError("create alert", tx.Commit(ctx))
}

// FindAlerts implements odometer.AlertStore.
func (s *Store) FindAlerts(ctx context.Context) ([]*odometer.Alert, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, meter, period, threshold, customer_id, created_at FROM alerts ORDER BY created_at, id`)
	if err != nil {
		return nil, storeError("find alerts", err)
	}
	defer rows.Close()
	var out []*odometer.Alert
	for rows.Next() {
		var a odometer.Alert
		var period string
		if err := rows.Scan(&a.ID, &a.Meter, &period, &a.Threshold, &a.CustomerID, &a.CreatedAt); err != nil {
			return nil, storeError("find alerts", err)
		}
		a.Period, a.CreatedAt = odometer.Period(period), a.CreatedAt.UTC()
		out = append(out, &a)
	}
	return out, storeError("find alerts", rows.Err())
}

// DeleteAlert implements odometer.AlertStore. Its firings stay: the record
// of what was sent.
func (s *Store) DeleteAlert(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM alerts WHERE id = $1`, id)
	if err != nil {
		return storeError("delete alert", err)
	}
	if tag.RowsAffected() == 0 {
		return odometer.Errorf(odometer.ENOTFOUND, "Alert not found")
	}
	return nil
}

// LockAlerts implements odometer.AlertStore with a session-level advisory
// lock, tried and not waited for: the replica that holds it evaluates,
// the others pass their turn. A replica that dies loses it with its
// session.
func (s *Store) LockAlerts(ctx context.Context) (func(), bool, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, storeError("lock alerts", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, s.alertKey).Scan(&ok); err != nil {
		c := conn.Hijack()
		c.Close(context.WithoutCancel(ctx))
		return nil, false, storeError("lock alerts", err)
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, s.alertKey); err != nil {
				c := conn.Hijack()
				c.Close(ctx)
			} else {
				conn.Release()
			}
		})
	}, true, nil
}

// AlertWatermark implements odometer.AlertStore.
func (s *Store) AlertWatermark(ctx context.Context) (int64, error) {
	var wm int64
	err := s.pool.QueryRow(ctx, `SELECT watermark FROM alert_progress`).Scan(&wm)
	return wm, storeError("alert watermark", err)
}

// ScanAlertEvents implements odometer.AlertStore.
func (s *Store) ScanAlertEvents(ctx context.Context, after, upto int64, eventTypes []string, fn func(*odometer.Event) error) error {
	if len(eventTypes) == 0 {
		return nil
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, event_type, customer_id, value, metadata, ts, received_at FROM events
		WHERE seq > $1 AND seq <= $2 AND event_type = ANY($3) ORDER BY seq`, after, upto, eventTypes)
	if err != nil {
		return storeError("scan alert events", err)
	}
	defer rows.Close()
	var e odometer.Event
	for rows.Next() {
		if err := rows.Scan(&e.Seq, &e.EventType, &e.CustomerID, &e.Value, &e.Metadata, &e.Time, &e.ReceivedAt); err != nil {
			return storeError("scan alert events", err)
		}
		e.Time, e.ReceivedAt = e.Time.UTC(), e.ReceivedAt.UTC()
		if err := fn(&e); err != nil {
			return err
		}
	}
	return storeError("scan alert events", rows.Err())
}

// FindFirings implements odometer.AlertStore.
func (s *Store) FindFirings(ctx context.Context, keys []odometer.FiringKey) (map[odometer.FiringKey]*odometer.AlertFiring, error) {
	out := map[odometer.FiringKey]*odometer.AlertFiring{}
	if len(keys) == 0 {
		return out, nil
	}
	alerts, customers, periods, pkeys := make([]string, len(keys)), make([]string, len(keys)), make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		alerts[i], customers[i], periods[i], pkeys[i] = k.AlertID, k.CustomerID, string(k.Period), k.PeriodKey
	}
	rows, err := s.pool.Query(ctx, `SELECT f.alert_id, f.customer_id, f.period, f.period_key, f.value, f.fired_at
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS k (alert_id, customer_id, period, period_key)
		JOIN alert_firings f ON (f.alert_id, f.customer_id, f.period, f.period_key) = (k.alert_id, k.customer_id, k.period, k.period_key)`,
		alerts, customers, periods, pkeys)
	if err != nil {
		return nil, storeError("find firings", err)
	}
	defer rows.Close()
	for rows.Next() {
		var f odometer.AlertFiring
		var p string
		if err := rows.Scan(&f.AlertID, &f.CustomerID, &p, &f.PeriodKey, &f.Value, &f.FiredAt); err != nil {
			return nil, storeError("find firings", err)
		}
		f.Period, f.FiredAt = odometer.Period(p), f.FiredAt.UTC()
		out[f.FiringKey] = &f
	}
	return out, storeError("find firings", rows.Err())
}

// AlertUsage implements odometer.AlertStore: a repeatable-read transaction
// is one snapshot of the aggregations, the progress and the events.
func (s *Store) AlertUsage(ctx context.Context, keys []odometer.AggregationKey, eventTypes []string, upto int64) (map[odometer.AggregationKey]*odometer.Aggregation, []odometer.Event, odometer.RunState, error) {
	var run odometer.RunState
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, nil, run, storeError("alert usage", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := tx.QueryRow(ctx, runStateQuery).Scan(&run.Watermark, &run.To, &run.After); err != nil {
		return nil, nil, run, storeError("alert usage", err)
	}
	t := &aggTx{ctx: ctx, tx: tx, st: run}
	aggs, err := t.LoadAggregations(keys)
	if err != nil {
		return nil, nil, run, err
	}
	set := map[string]bool{}
	for _, k := range keys {
		set[k.CustomerID] = true
	}
	customers := make([]string, 0, len(set))
	for c := range set {
		customers = append(customers, c)
	}
	sort.Strings(customers)
	var events []odometer.Event
	if len(eventTypes) == 0 || upto <= run.Watermark {
		return aggs, nil, run, nil
	}
	rows, err := tx.Query(ctx, `SELECT seq, event_type, customer_id, value, metadata, ts FROM events
		WHERE seq > $1 AND seq <= $2 AND event_type = ANY($3) AND customer_id = ANY($4)`, run.Watermark, upto, eventTypes, customers)
	if err != nil {
		return nil, nil, run, storeError("alert usage", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e odometer.Event
		if err := rows.Scan(&e.Seq, &e.EventType, &e.CustomerID, &e.Value, &e.Metadata, &e.Time); err != nil {
			return nil, nil, run, storeError("alert usage", err)
		}
		if run.Folded(e.CustomerID, e.Seq) {
			continue // in the aggregations already, by a run stopped midway
		}
		e.Time = e.Time.UTC()
		events = append(events, e)
	}
	return aggs, events, run, storeError("alert usage", rows.Err())
}

// FireAlerts implements odometer.AlertStore. The firing's primary key is
// the guard against a second evaluator: ON CONFLICT DO NOTHING records the
// first, and only the first gets a notification.
func (s *Store) FireAlerts(ctx context.Context, from, to int64, fs []*odometer.AlertFiring) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, storeError("fire alerts", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	tag, err := tx.Exec(ctx, `UPDATE alert_progress SET watermark = $2 WHERE watermark = $1`, from, to)
	if err != nil {
		return 0, storeError("fire alerts", err)
	}
	if tag.RowsAffected() == 0 {
		return 0, odometer.Errorf(odometer.ECONFLICT, "the alert watermark is no longer %d: another evaluator is at work", from)
	}
	t := &aggTx{ctx: ctx, tx: tx}
	fired := 0
	for _, f := range fs {
		tag, err := tx.Exec(ctx, `INSERT INTO alert_firings (alert_id, customer_id, period, period_key, value, fired_at)
			SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM alerts WHERE id = $1) ON CONFLICT DO NOTHING`,
			f.AlertID, f.CustomerID, string(f.Period), f.PeriodKey, f.Value, ms(f.FiredAt))
		if err != nil {
			return 0, storeError("fire alerts", err)
		}
		if tag.RowsAffected() == 0 {
			continue
		}
		if err := t.AddNotifications([]*odometer.Notification{f.Notification}); err != nil {
			return 0, err
		}
		if _, err := tx.Exec(ctx, `UPDATE alert_firings SET notification_id = $1
			WHERE alert_id = $2 AND customer_id = $3 AND period = $4 AND period_key = $5`,
			f.Notification.ID, f.AlertID, f.CustomerID, string(f.Period), f.PeriodKey); err != nil {
			return 0, storeError("fire alerts", err)
		}
		fired++
	}
	return fired, storeError("fire alerts", tx.Commit(ctx))
}
