package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/odometer-dev/odometer"
)

var _ odometer.DeliveryStore = (*Store)(nil)

const deliveryColumns = `d.rid, d.id, d.notification_id, d.type, d.aggregation_id, d.customer_id, d.revision, d.endpoint, d.status, d.attempts,
	d.next_attempt_at, d.last_error, d.last_status, d.last_attempt_at, d.delivered_at, d.dry_run, d.created_at, n.payload`

func scanDelivery(row interface{ Scan(...any) error }) (*odometer.Delivery, int64, error) {
	var d odometer.Delivery
	var rid, created int64
	var next, lastAttempt, delivered, lastStatus sql.NullInt64
	var lastErr sql.NullString
	if err := row.Scan(&rid, &d.ID, &d.NotificationID, &d.Type, &d.AggregationID, &d.CustomerID, &d.Revision, &d.Endpoint, &d.Status,
		&d.Attempts, &next, &lastErr, &lastStatus, &lastAttempt, &delivered, &d.DryRun, &created, &d.Payload); err != nil {
		return nil, 0, err
	}
	d.NextAttemptAt, d.LastAttemptAt, d.DeliveredAt = fromNullMS(next), fromNullMS(lastAttempt), fromNullMS(delivered)
	d.LastError, d.LastStatus = lastErr.String, int(lastStatus.Int64)
	d.CreatedAt = fromMS(created)
	return &d, rid, nil
}

// ClaimDeliveries implements odometer.DeliveryStore.
func (s *Store) ClaimDeliveries(ctx context.Context, endpoint string, now time.Time, lease time.Duration, limit int) ([]*odometer.Delivery, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, storeError("claim deliveries", err)
	}
	defer tx.Rollback()
	// Alerts first: a usage.threshold_reached is due within seconds, and
	// must not queue behind the period webhooks of a long catch-up run.
	var out []*odometer.Delivery
	var rids []int64
	for _, q := range []string{
		`AND d.type = '` + odometer.UsageThresholdReached + `'`,
		`AND d.type <> '` + odometer.UsageThresholdReached + `'`,
	} {
		if len(out) >= limit {
			break
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries d JOIN notifications n ON n.id = d.notification_id
			WHERE d.endpoint = ? AND d.status = 'pending' AND d.next_attempt_at <= ? `+q+` ORDER BY d.next_attempt_at, d.rid LIMIT ?`,
			endpoint, ms(now), limit-len(out))
		if err != nil {
			return nil, storeError("claim deliveries", err)
		}
		for rows.Next() {
			d, rid, err := scanDelivery(rows)
			if err != nil {
				rows.Close()
				return nil, storeError("claim deliveries", err)
			}
			out = append(out, d)
			rids = append(rids, rid)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, storeError("claim deliveries", err)
		}
	}
	until := ms(now.Add(lease))
	if len(rids) > 0 {
		st, err := tx.PrepareContext(ctx, `UPDATE deliveries SET next_attempt_at = ? WHERE rid = ?`)
		if err != nil {
			return nil, storeError("claim deliveries", err)
		}
		defer st.Close()
		for _, rid := range rids {
			if _, err := st.ExecContext(ctx, until, rid); err != nil {
				return nil, storeError("claim deliveries", err)
			}
		}
	}
	return out, storeError("claim deliveries", tx.Commit())
}

// RecordAttempts implements odometer.DeliveryStore.
//
// Each aggregation's webhookStatus is computed here from the rows of its
// deliveries rather than by correlated subqueries in the UPDATE: SQLite
// re-prepared that statement on every execution whenever the revision was
// bound to 1 (nearly always), which took most of a batch's time.
func (s *Store) RecordAttempts(ctx context.Context, ds []*odometer.Delivery) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return storeError("record attempts", err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `UPDATE deliveries SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?, last_status = ?,
		last_attempt_at = ?, delivered_at = ?, dry_run = ? WHERE id = ?`)
	if err != nil {
		return storeError("record attempts", err)
	}
	defer st.Close()
	aggs := map[string]int{}
	for _, d := range ds {
		var lastErr any
		if d.LastError != "" {
			lastErr = d.LastError
		}
		var lastStatus any
		if d.LastStatus != 0 {
			lastStatus = d.LastStatus
		}
		if _, err := st.ExecContext(ctx, d.Status, d.Attempts, nullMS(d.NextAttemptAt), lastErr, lastStatus, nullMS(d.LastAttemptAt),
			nullMS(d.DeliveredAt), d.DryRun, d.ID); err != nil {
			return storeError("record attempts", err)
		}
		// An alert's delivery belongs to no aggregation: its status is
		// its own.
		if d.AggregationID != "" {
			aggs[d.AggregationID] = d.Revision
		}
	}
	sel, err := tx.PrepareContext(ctx, `SELECT status, attempts, delivered_at, last_error, last_attempt_at, dry_run
		FROM deliveries WHERE aggregation_id = ? AND revision = ?`)
	if err != nil {
		return storeError("update webhook status", err)
	}
	defer sel.Close()
	upd, err := tx.PrepareContext(ctx, `UPDATE aggregations SET wh_delivered = ?, wh_attempts = ?, wh_delivered_at = ?, wh_last_error = ?,
		wh_last_attempt_at = ?, wh_dry_run = ? WHERE customer_id = ? AND period = ? AND period_key = ? AND revision = ?`)
	if err != nil {
		return storeError("update webhook status", err)
	}
	defer upd.Close()
	for id, rev := range aggs {
		customer, period, key, ok := odometer.ParseAggregationID(id)
		if !ok {
			continue
		}
		w, err := webhookStatus(ctx, sel, id, rev)
		if err != nil {
			return storeError("update webhook status", err)
		}
		var lastErr any
		if w.LastError != "" {
			lastErr = w.LastError
		}
		if _, err := upd.ExecContext(ctx, w.Delivered, w.Attempts, nullMS(w.DeliveredAt), lastErr, nullMS(w.LastAttemptAt), w.DryRun,
			customer, string(period), key, rev); err != nil {
			return storeError("update webhook status", err)
		}
	}
	return storeError("record attempts", tx.Commit())
}

// webhookStatus computes an aggregation's webhookStatus from the
// deliveries of its revision.
func webhookStatus(ctx context.Context, sel *sql.Stmt, aggID string, revision int) (odometer.WebhookStatus, error) {
	rows, err := sel.QueryContext(ctx, aggID, revision)
	if err != nil {
		return odometer.WebhookStatus{}, err
	}
	defer rows.Close()
	var ds []odometer.Delivery
	for rows.Next() {
		var d odometer.Delivery
		var deliveredAt, lastAttempt sql.NullInt64
		var lastErr sql.NullString
		if err := rows.Scan(&d.Status, &d.Attempts, &deliveredAt, &lastErr, &lastAttempt, &d.DryRun); err != nil {
			return odometer.WebhookStatus{}, err
		}
		d.DeliveredAt, d.LastAttemptAt, d.LastError = fromNullMS(deliveredAt), fromNullMS(lastAttempt), lastErr.String
		ds = append(ds, d)
	}
	if err := rows.Err(); err != nil {
		return odometer.WebhookStatus{}, err
	}
	return odometer.WebhookStatusOf(ds), nil
}

// FindDeliveries implements odometer.DeliveryStore.
func (s *Store) FindDeliveries(ctx context.Context, f odometer.DeliveryFilter) ([]*odometer.Delivery, string, error) {
	var where []string
	var args []any
	if f.Cursor != "" {
		c, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil {
			return nil, "", odometer.Errorf(odometer.EINVALID, "cursor is not valid")
		}
		where, args = append(where, "d.rid < ?"), append(args, c)
	}
	if f.Status != "" {
		where, args = append(where, "d.status = ?"), append(args, f.Status)
	}
	if f.CustomerID != "" {
		where, args = append(where, "d.customer_id = ?"), append(args, f.CustomerID)
	}
	if f.Endpoint != "" {
		where, args = append(where, "d.endpoint = ?"), append(args, f.Endpoint)
	}
	q := `SELECT ` + deliveryColumns + ` FROM deliveries d JOIN notifications n ON n.id = d.notification_id`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY d.rid DESC LIMIT ?"
	args = append(args, f.Limit+1)
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", storeError("find deliveries", err)
	}
	defer rows.Close()
	var out []*odometer.Delivery
	var last int64
	for rows.Next() {
		d, rid, err := scanDelivery(rows)
		if err != nil {
			return nil, "", storeError("find deliveries", err)
		}
		if len(out) < f.Limit {
			last = rid
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, "", storeError("find deliveries", err)
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		next = strconv.FormatInt(last, 10)
	}
	return out, next, nil
}

// FindDelivery implements odometer.DeliveryStore.
func (s *Store) FindDelivery(ctx context.Context, id string) (*odometer.Delivery, error) {
	d, _, err := scanDelivery(s.read.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries d JOIN notifications n ON n.id = d.notification_id WHERE d.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, odometer.Errorf(odometer.ENOTFOUND, "Delivery not found")
	}
	return d, storeError("find delivery", err)
}

// RetryDelivery implements odometer.DeliveryStore.
func (s *Store) RetryDelivery(ctx context.Context, id string, now time.Time) (*odometer.Delivery, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, storeError("retry delivery", err)
	}
	defer tx.Rollback()
	var endpoint, status string
	err = tx.QueryRowContext(ctx, `SELECT endpoint, status FROM deliveries WHERE id = ?`, id).Scan(&endpoint, &status)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, odometer.Errorf(odometer.ENOTFOUND, "Delivery not found")
	}
	if err != nil {
		return nil, storeError("retry delivery", err)
	}
	if status == odometer.DeliveryDelivered {
		return nil, odometer.Errorf(odometer.ECONFLICT, "Delivery %s was already delivered", id)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = 'pending', next_attempt_at = ? WHERE id = ?`, ms(now), id); err != nil {
		return nil, storeError("retry delivery", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM disabled_endpoints WHERE endpoint = ?`, endpoint); err != nil {
		return nil, storeError("retry delivery", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, storeError("retry delivery", err)
	}
	return s.FindDelivery(ctx, id)
}

// DisableEndpoint implements odometer.DeliveryStore.
func (s *Store) DisableEndpoint(ctx context.Context, endpoint, reason string, now time.Time) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO disabled_endpoints (endpoint, reason, disabled_at) VALUES (?,?,?)
		ON CONFLICT (endpoint) DO UPDATE SET reason = excluded.reason, disabled_at = excluded.disabled_at`, endpoint, reason, ms(now))
	return storeError("disable endpoint", err)
}

// DisabledEndpoints implements odometer.DeliveryStore.
func (s *Store) DisabledEndpoints(ctx context.Context) (map[string]string, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT endpoint, reason FROM disabled_endpoints`)
	if err != nil {
		return nil, storeError("disabled endpoints", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var e, r string
		if err := rows.Scan(&e, &r); err != nil {
			return nil, storeError("disabled endpoints", err)
		}
		out[e] = r
	}
	return out, storeError("disabled endpoints", rows.Err())
}

// RetryDeliveries implements odometer.DeliveryStore.
func (s *Store) RetryDeliveries(ctx context.Context, endpoint string, now time.Time) (int64, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, storeError("retry deliveries", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = 'pending', next_attempt_at = ? WHERE endpoint = ? AND status = 'failed'`, ms(now), endpoint)
	if err != nil {
		return 0, storeError("retry deliveries", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, storeError("retry deliveries", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM disabled_endpoints WHERE endpoint = ?`, endpoint); err != nil {
		return 0, storeError("retry deliveries", err)
	}
	return n, storeError("retry deliveries", tx.Commit())
}

// EndpointStats implements odometer.DeliveryStore.
func (s *Store) EndpointStats(ctx context.Context, since time.Time) (map[string]*odometer.EndpointStats, error) {
	out := map[string]*odometer.EndpointStats{}
	get := func(e string) *odometer.EndpointStats {
		if out[e] == nil {
			out[e] = odometer.NewEndpointStats()
		}
		return out[e]
	}
	later := func(cur *time.Time, v sql.NullInt64) *time.Time {
		if t := fromNullMS(v); t != nil && (cur == nil || t.After(*cur)) {
			return t
		}
		return cur
	}
	rows, err := s.read.QueryContext(ctx, `SELECT endpoint, status, count(*), sum(CASE WHEN last_attempt_at >= ? THEN 1 ELSE 0 END),
		max(delivered_at), max(last_attempt_at) FROM deliveries GROUP BY endpoint, status`, ms(since))
	if err != nil {
		return nil, storeError("endpoint stats", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e, status string
		var n, recent int64
		var delivered, attempted sql.NullInt64
		if err := rows.Scan(&e, &status, &n, &recent, &delivered, &attempted); err != nil {
			return nil, storeError("endpoint stats", err)
		}
		st := get(e)
		st.Counts[status], st.Recent[status] = n, recent
		st.LastSuccessAt = later(st.LastSuccessAt, delivered)
		st.LastAttemptAt = later(st.LastAttemptAt, attempted)
	}
	if err := rows.Err(); err != nil {
		return nil, storeError("endpoint stats", err)
	}
	rows, err = s.read.QueryContext(ctx, `SELECT endpoint, reason, disabled_at FROM disabled_endpoints`)
	if err != nil {
		return nil, storeError("endpoint stats", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e, reason string
		var at int64
		if err := rows.Scan(&e, &reason, &at); err != nil {
			return nil, storeError("endpoint stats", err)
		}
		t := fromMS(at)
		st := get(e)
		st.DisabledReason, st.DisabledAt = reason, &t
	}
	return out, storeError("endpoint stats", rows.Err())
}
