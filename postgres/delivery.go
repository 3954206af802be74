package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/odometer-dev/odometer"
)

const deliveryColumns = `d.rid, d.id, d.notification_id, d.type, d.aggregation_id, d.customer_id, d.revision, d.endpoint, d.status, d.attempts,
	d.next_attempt_at, d.last_error, d.last_status, d.last_attempt_at, d.delivered_at, d.dry_run, d.created_at, n.payload`

func scanDelivery(row pgx.Row) (*odometer.Delivery, int64, error) {
	var d odometer.Delivery
	var rid int64
	var lastErr *string
	var lastStatus *int32
	if err := row.Scan(&rid, &d.ID, &d.NotificationID, &d.Type, &d.AggregationID, &d.CustomerID, &d.Revision, &d.Endpoint, &d.Status,
		&d.Attempts, &d.NextAttemptAt, &lastErr, &lastStatus, &d.LastAttemptAt, &d.DeliveredAt, &d.DryRun, &d.CreatedAt, &d.Payload); err != nil {
		return nil, 0, err
	}
	d.NextAttemptAt, d.LastAttemptAt, d.DeliveredAt = utc(d.NextAttemptAt), utc(d.LastAttemptAt), utc(d.DeliveredAt)
	d.CreatedAt = d.CreatedAt.UTC()
	if lastErr != nil {
		d.LastError = *lastErr
	}
	if lastStatus != nil {
		d.LastStatus = int(*lastStatus)
	}
	return &d, rid, nil
}

// ClaimDeliveries implements odometer.DeliveryStore. SKIP LOCKED passes
// over the deliveries another replica is claiming at the same moment, so
// replicas claim disjoint sets; once committed, the lease keeps them
// apart.
func (s *Store) ClaimDeliveries(ctx context.Context, endpoint string, now time.Time, lease time.Duration, limit int) ([]*odometer.Delivery, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, storeError("claim deliveries", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
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
		rows, err := tx.Query(ctx, `SELECT `+deliveryColumns+` FROM deliveries d JOIN notifications n ON n.id = d.notification_id
			WHERE d.endpoint = $1 AND d.status = 'pending' AND d.next_attempt_at <= $2 `+q+` ORDER BY d.next_attempt_at, d.rid LIMIT $3
			FOR UPDATE OF d SKIP LOCKED`, endpoint, ms(now), limit-len(out))
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
	if len(rids) == 0 {
		return nil, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE deliveries SET next_attempt_at = $1 WHERE rid = ANY($2)`, ms(now.Add(lease)), rids); err != nil {
		return nil, storeError("claim deliveries", err)
	}
	return out, storeError("claim deliveries", tx.Commit(ctx))
}

// RecordAttempts implements odometer.DeliveryStore.
func (s *Store) RecordAttempts(ctx context.Context, ds []*odometer.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return storeError("record attempts", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	b := &pgx.Batch{}
	type aggRev struct {
		id  string
		rev int
	}
	aggs := map[string]int{}
	for _, d := range ds {
		var lastErr, lastStatus any
		if d.LastError != "" {
			lastErr = text(d.LastError)
		}
		if d.LastStatus != 0 {
			lastStatus = int32(d.LastStatus)
		}
		b.Queue(`UPDATE deliveries SET status = $1, attempts = $2, next_attempt_at = $3, last_error = $4, last_status = $5,
			last_attempt_at = $6, delivered_at = $7, dry_run = $8 WHERE id = $9`,
			d.Status, d.Attempts, nullMS(d.NextAttemptAt), lastErr, lastStatus, nullMS(d.LastAttemptAt), nullMS(d.DeliveredAt), d.DryRun, d.ID)
		// An alert's delivery belongs to no aggregation: its status is
		// its own.
		if d.AggregationID != "" {
			aggs[d.AggregationID] = d.Revision
		}
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return storeError("record attempts", err)
	}
	var pairs []aggRev
	ids, revs := make([]string, 0, len(aggs)), make([]int32, 0, len(aggs))
	var customers, periods, keys []string
	for id, rev := range aggs {
		pairs = append(pairs, aggRev{id, rev})
		ids, revs = append(ids, id), append(revs, int32(rev))
		if c, p, k, ok := odometer.ParseAggregationID(id); ok {
			customers, periods, keys = append(customers, c), append(periods, string(p)), append(keys, k)
		}
	}
	// Lock the aggregations first, in key order: senders of other
	// endpoints recording tries of the same aggregations wait here, and
	// then read this transaction's deliveries, so that the last status
	// written counts every endpoint's latest try.
	if _, err := tx.Exec(ctx, `SELECT 1 FROM aggregations a
		JOIN unnest($1::text[], $2::text[], $3::text[]) AS k (customer_id, period, period_key)
			ON (a.customer_id, a.period, a.period_key) = (k.customer_id, k.period, k.period_key)
		ORDER BY a.customer_id, a.period, a.period_key FOR UPDATE OF a`, customers, periods, keys); err != nil {
		return storeError("update webhook status", err)
	}
	// The webhook status of each aggregation, from the deliveries of its
	// revision.
	rows, err := tx.Query(ctx, `SELECT d.aggregation_id, d.status, d.attempts, d.delivered_at, d.last_error, d.last_attempt_at, d.dry_run
		FROM deliveries d JOIN unnest($1::text[], $2::integer[]) AS u (id, revision) ON d.aggregation_id = u.id AND d.revision = u.revision`,
		ids, revs)
	if err != nil {
		return storeError("update webhook status", err)
	}
	byAgg := map[string][]odometer.Delivery{}
	for rows.Next() {
		var id string
		var d odometer.Delivery
		var lastErr *string
		if err := rows.Scan(&id, &d.Status, &d.Attempts, &d.DeliveredAt, &lastErr, &d.LastAttemptAt, &d.DryRun); err != nil {
			rows.Close()
			return storeError("update webhook status", err)
		}
		if lastErr != nil {
			d.LastError = *lastErr
		}
		byAgg[id] = append(byAgg[id], d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return storeError("update webhook status", err)
	}
	b = &pgx.Batch{}
	for _, p := range pairs {
		customer, period, key, ok := odometer.ParseAggregationID(p.id)
		if !ok {
			continue
		}
		st := odometer.WebhookStatusOf(byAgg[p.id])
		var lastErr *string
		if st.LastError != "" {
			lastErr = &st.LastError
		}
		b.Queue(`UPDATE aggregations SET wh_delivered = $1, wh_attempts = $2, wh_delivered_at = $3, wh_last_error = $4,
			wh_last_attempt_at = $5, wh_dry_run = $6 WHERE customer_id = $7 AND period = $8 AND period_key = $9 AND revision = $10`,
			st.Delivered, int32(st.Attempts), st.DeliveredAt, lastErr, st.LastAttemptAt, st.DryRun, customer, string(period), key, int32(p.rev))
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return storeError("update webhook status", err)
	}
	return storeError("record attempts", tx.Commit(ctx))
}

// FindDeliveries implements odometer.DeliveryStore.
func (s *Store) FindDeliveries(ctx context.Context, f odometer.DeliveryFilter) ([]*odometer.Delivery, string, error) {
	var where []string
	var a args
	if f.Cursor != "" {
		c, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil {
			return nil, "", odometer.Errorf(odometer.EINVALID, "cursor is not valid")
		}
		where = append(where, "d.rid < "+a.add(c))
	}
	if f.Status != "" {
		where = append(where, "d.status = "+a.add(f.Status))
	}
	if f.CustomerID != "" {
		where = append(where, "d.customer_id = "+a.add(f.CustomerID))
	}
	if f.Endpoint != "" {
		where = append(where, "d.endpoint = "+a.add(f.Endpoint))
	}
	q := `SELECT ` + deliveryColumns + ` FROM deliveries d JOIN notifications n ON n.id = d.notification_id`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY d.rid DESC LIMIT " + a.add(f.Limit+1)
	rows, err := s.pool.Query(ctx, q, a...)
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
	d, _, err := scanDelivery(s.pool.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM deliveries d JOIN notifications n ON n.id = d.notification_id
		WHERE d.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, odometer.Errorf(odometer.ENOTFOUND, "Delivery not found")
	}
	return d, storeError("find delivery", err)
}

// RetryDelivery implements odometer.DeliveryStore.
func (s *Store) RetryDelivery(ctx context.Context, id string, now time.Time) (*odometer.Delivery, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, storeError("retry delivery", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var endpoint, status string
	err = tx.QueryRow(ctx, `SELECT endpoint, status FROM deliveries WHERE id = $1 FOR UPDATE`, id).Scan(&endpoint, &status)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, odometer.Errorf(odometer.ENOTFOUND, "Delivery not found")
	}
	if err != nil {
		return nil, storeError("retry delivery", err)
	}
	if status == odometer.DeliveryDelivered {
		return nil, odometer.Errorf(odometer.ECONFLICT, "Delivery %s was already delivered", id)
	}
	if _, err := tx.Exec(ctx, `UPDATE deliveries SET status = 'pending', next_attempt_at = $1 WHERE id = $2`, ms(now), id); err != nil {
		return nil, storeError("retry delivery", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM disabled_endpoints WHERE endpoint = $1`, endpoint); err != nil {
		return nil, storeError("retry delivery", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, storeError("retry delivery", err)
	}
	return s.FindDelivery(ctx, id)
}

// DisableEndpoint implements odometer.DeliveryStore.
func (s *Store) DisableEndpoint(ctx context.Context, endpoint, reason string, now time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO disabled_endpoints (endpoint, reason, disabled_at) VALUES ($1, $2, $3)
		ON CONFLICT (endpoint) DO UPDATE SET reason = excluded.reason, disabled_at = excluded.disabled_at`, endpoint, text(reason), ms(now))
	return storeError("disable endpoint", err)
}

// DisabledEndpoints implements odometer.DeliveryStore.
func (s *Store) DisabledEndpoints(ctx context.Context) (map[string]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT endpoint, reason FROM disabled_endpoints`)
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

// text makes a message the server wrote (an error of the network or of a
// receiver) storable in a text column: valid UTF-8, no NUL.
func text(s string) string {
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
}

// RetryDeliveries implements odometer.DeliveryStore.
func (s *Store) RetryDeliveries(ctx context.Context, endpoint string, now time.Time) (int64, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, storeError("retry deliveries", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	tag, err := tx.Exec(ctx, `UPDATE deliveries SET status = 'pending', next_attempt_at = $1 WHERE endpoint = $2 AND status = 'failed'`, ms(now), endpoint)
	if err != nil {
		return 0, storeError("retry deliveries", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM disabled_endpoints WHERE endpoint = $1`, endpoint); err != nil {
		return 0, storeError("retry deliveries", err)
	}
	return tag.RowsAffected(), storeError("retry deliveries", tx.Commit(ctx))
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
	later := func(cur, t *time.Time) *time.Time {
		if t != nil && (cur == nil || t.After(*cur)) {
			u := t.UTC()
			return &u
		}
		return cur
	}
	rows, err := s.pool.Query(ctx, `SELECT endpoint, status, count(*), count(*) FILTER (WHERE last_attempt_at >= $1),
		max(delivered_at), max(last_attempt_at) FROM deliveries GROUP BY endpoint, status`, ms(since))
	if err != nil {
		return nil, storeError("endpoint stats", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e, status string
		var n, recent int64
		var delivered, attempted *time.Time
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
	rows, err = s.pool.Query(ctx, `SELECT endpoint, reason, disabled_at FROM disabled_endpoints`)
	if err != nil {
		return nil, storeError("endpoint stats", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e, reason string
		var at time.Time
		if err := rows.Scan(&e, &reason, &at); err != nil {
			return nil, storeError("endpoint stats", err)
		}
		at = at.UTC()
		st := get(e)
		st.DisabledReason, st.DisabledAt = reason, &at
	}
	return out, storeError("endpoint stats", rows.Err())
}
