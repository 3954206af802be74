package sqlite

import (
	"context"
	"database/sql"
	"strings"

	"github.com/odometer-dev/odometer"
)

var _ odometer.AlertStore = (*Store)(nil)

// CreateAlert implements odometer.AlertStore.
func (s *Store) CreateAlert(ctx context.Context, a *odometer.Alert) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return storeError("create alert", err)
	}
	defer tx.Rollback()
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM alerts`).Scan(&n); err != nil {
		return storeError("create alert", err)
	}
	if n == 0 {
		// No evaluator has been at work: start at the newest event.
		if _, err := tx.ExecContext(ctx, `UPDATE meta SET value = (SELECT coalesce(max(seq), 0) FROM events) WHERE key = 'alert_watermark'`); err != nil {
			return storeError("create alert", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO alerts (id, meter, period, threshold, customer_id, created_at) VALUES (?,?,?,?,?,?)`,
		a.ID, a.Meter, string(a.Period), a.Threshold, a.CustomerID, ms(a.CreatedAt)); err != nil {
		return storeError("create alert", err)
	}
	return storeError("create alert", tx.Commit())
}

// FindAlerts implements odometer.AlertStore.
func (s *Store) FindAlerts(ctx context.Context) ([]*odometer.Alert, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, meter, period, threshold, customer_id, created_at FROM alerts ORDER BY created_at, id`)
	if err != nil {
		return nil, storeError("find alerts", err)
	}
	defer rows.Close()
	var out []*odometer.Alert
	for rows.Next() {
		var a odometer.Alert
		var period string
		var created int64
		if err := rows.Scan(&a.ID, &a.Meter, &period, &a.Threshold, &a.CustomerID, &created); err != nil {
			return nil, storeError("find alerts", err)
		}
		a.Period, a.CreatedAt = odometer.Period(period), fromMS(created)
		out = append(out, &a)
	}
	return out, storeError("find alerts", rows.Err())
}

// DeleteAlert implements odometer.AlertStore. Its firings stay: the record
// of what was sent.
func (s *Store) DeleteAlert(ctx context.Context, id string) error {
	res, err := s.write.ExecContext(ctx, `DELETE FROM alerts WHERE id = ?`, id)
	if err != nil {
		return storeError("delete alert", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return odometer.Errorf(odometer.ENOTFOUND, "Alert not found")
	}
	return nil
}

// LockAlerts implements odometer.AlertStore. One process serves one
// SQLite file, so a lock in the process excludes every other evaluator.
func (s *Store) LockAlerts(ctx context.Context) (func(), bool, error) {
	select {
	case s.alertLock <- struct{}{}:
		return func() { <-s.alertLock }, true, nil
	default:
		return nil, false, nil
	}
}

// AlertWatermark implements odometer.AlertStore.
func (s *Store) AlertWatermark(ctx context.Context) (int64, error) {
	var wm int64
	err := s.read.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'alert_watermark'`).Scan(&wm)
	return wm, storeError("alert watermark", err)
}

// ScanAlertEvents implements odometer.AlertStore.
func (s *Store) ScanAlertEvents(ctx context.Context, after, upto int64, eventTypes []string, fn func(*odometer.Event) error) error {
	if len(eventTypes) == 0 {
		return nil
	}
	args := []any{after, upto}
	for _, t := range eventTypes {
		args = append(args, t)
	}
	rows, err := s.read.QueryContext(ctx, `SELECT seq, event_type, customer_id, value, metadata, ts, received_at FROM events
		WHERE seq > ? AND seq <= ? AND event_type IN (`+strings.Repeat("?,", len(eventTypes)-1)+`?) ORDER BY seq`, args...)
	if err != nil {
		return storeError("scan alert events", err)
	}
	defer rows.Close()
	var e odometer.Event
	for rows.Next() {
		var ts, received int64
		var md sql.RawBytes
		if err := rows.Scan(&e.Seq, &e.EventType, &e.CustomerID, &e.Value, &md, &ts, &received); err != nil {
			return storeError("scan alert events", err)
		}
		e.Metadata = append(e.Metadata[:0], md...)
		if md == nil {
			e.Metadata = nil
		}
		e.Time, e.ReceivedAt = fromMS(ts), fromMS(received)
		if err := fn(&e); err != nil {
			return err
		}
	}
	return storeError("scan alert events", rows.Err())
}

// FindFirings implements odometer.AlertStore.
func (s *Store) FindFirings(ctx context.Context, keys []odometer.FiringKey) (map[odometer.FiringKey]*odometer.AlertFiring, error) {
	out := map[odometer.FiringKey]*odometer.AlertFiring{}
	for len(keys) > 0 {
		n := min(len(keys), chunk)
		args := make([]any, 0, 4*n)
		for _, k := range keys[:n] {
			args = append(args, k.AlertID, k.CustomerID, string(k.Period), k.PeriodKey)
		}
		keys = keys[n:]
		rows, err := s.read.QueryContext(ctx, `SELECT alert_id, customer_id, period, period_key, value, fired_at FROM alert_firings
			WHERE (alert_id, customer_id, period, period_key) IN (VALUES `+placeholders(n, 4)+`)`, args...)
		if err != nil {
			return nil, storeError("find firings", err)
		}
		for rows.Next() {
			var f odometer.AlertFiring
			var p string
			var fired int64
			if err := rows.Scan(&f.AlertID, &f.CustomerID, &p, &f.PeriodKey, &f.Value, &fired); err != nil {
				rows.Close()
				return nil, storeError("find firings", err)
			}
			f.Period, f.FiredAt = odometer.Period(p), fromMS(fired)
			out[f.FiringKey] = &f
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, storeError("find firings", err)
		}
	}
	return out, nil
}

// AlertUsage implements odometer.AlertStore: one read transaction is one
// snapshot of the aggregations, the progress and the events.
func (s *Store) AlertUsage(ctx context.Context, keys []odometer.AggregationKey, eventTypes []string, upto int64) (map[odometer.AggregationKey]*odometer.Aggregation, []odometer.Event, odometer.RunState, error) {
	var run odometer.RunState
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, nil, run, storeError("alert usage", err)
	}
	defer tx.Rollback()
	t := &aggTx{ctx: ctx, tx: tx}
	defer t.close()
	run, err = t.RunState()
	if err != nil {
		return nil, nil, run, err
	}
	aggs, err := t.LoadAggregations(keys)
	if err != nil {
		return nil, nil, run, err
	}
	customers := map[string]bool{}
	for _, k := range keys {
		customers[k.CustomerID] = true
	}
	var events []odometer.Event
	if len(eventTypes) > 0 && upto > run.Watermark {
		args := []any{run.Watermark, upto}
		for _, et := range eventTypes {
			args = append(args, et)
		}
		rows, err := tx.QueryContext(ctx, `SELECT seq, event_type, customer_id, value, metadata, ts FROM events
			WHERE seq > ? AND seq <= ? AND event_type IN (`+strings.Repeat("?,", len(eventTypes)-1)+`?)`, args...)
		if err != nil {
			return nil, nil, run, storeError("alert usage", err)
		}
		defer rows.Close()
		for rows.Next() {
			var e odometer.Event
			var ts int64
			var md sql.RawBytes
			if err := rows.Scan(&e.Seq, &e.EventType, &e.CustomerID, &e.Value, &md, &ts); err != nil {
				return nil, nil, run, storeError("alert usage", err)
			}
			if !customers[e.CustomerID] || run.Folded(e.CustomerID, e.Seq) {
				continue
			}
			if md != nil {
				e.Metadata = append([]byte(nil), md...)
			}
			e.Time = fromMS(ts)
			events = append(events, e)
		}
		if err := rows.Err(); err != nil {
			return nil, nil, run, storeError("alert usage", err)
		}
	}
	return aggs, events, run, nil
}

// FireAlerts implements odometer.AlertStore.
func (s *Store) FireAlerts(ctx context.Context, from, to int64, fs []*odometer.AlertFiring) (int, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, storeError("fire alerts", err)
	}
	defer tx.Rollback()
	var wm int64
	if err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'alert_watermark'`).Scan(&wm); err != nil {
		return 0, storeError("fire alerts", err)
	}
	if wm != from {
		return 0, odometer.Errorf(odometer.ECONFLICT, "the alert watermark moved from %d to %d: another evaluator is at work", from, wm)
	}
	t := &aggTx{ctx: ctx, tx: tx}
	defer t.close()
	fired := 0
	for _, f := range fs {
		res, err := tx.ExecContext(ctx, `INSERT INTO alert_firings (alert_id, customer_id, period, period_key, value, fired_at)
			SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM alerts WHERE id = ?) ON CONFLICT DO NOTHING`,
			f.AlertID, f.CustomerID, string(f.Period), f.PeriodKey, f.Value, ms(f.FiredAt), f.AlertID)
		if err != nil {
			return 0, storeError("fire alerts", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue
		}
		if err := t.AddNotifications([]*odometer.Notification{f.Notification}); err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE alert_firings SET notification_id = ? WHERE alert_id = ? AND customer_id = ? AND period = ? AND period_key = ?`,
			f.Notification.ID, f.AlertID, f.CustomerID, string(f.Period), f.PeriodKey); err != nil {
			return 0, storeError("fire alerts", err)
		}
		fired++
	}
	if _, err := tx.ExecContext(ctx, `UPDATE meta SET value = ? WHERE key = 'alert_watermark'`, to); err != nil {
		return 0, storeError("fire alerts", err)
	}
	return fired, storeError("fire alerts", tx.Commit())
}
