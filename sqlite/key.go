package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/odometer-dev/odometer"
)

// CreateKey implements odometer.KeyStore.
func (s *Store) CreateKey(ctx context.Context, k *odometer.APIKey) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO api_keys (id, name, scope, customer_id, prefix, hash, created_at) VALUES (?,?,?,?,?,?,?)`,
		k.ID, k.Name, string(k.Scope), k.CustomerID, k.Prefix, k.Hash[:], ms(k.CreatedAt))
	return storeError("create key", err)
}

const keyColumns = `id, name, scope, customer_id, prefix, hash, created_at, last_used_at, revoked_at`

func scanKey(row interface{ Scan(...any) error }) (*odometer.APIKey, error) {
	var k odometer.APIKey
	var scope string
	var hash []byte
	var created int64
	var used, revoked sql.NullInt64
	if err := row.Scan(&k.ID, &k.Name, &scope, &k.CustomerID, &k.Prefix, &hash, &created, &used, &revoked); err != nil {
		return nil, err
	}
	k.Scope = odometer.Scope(scope)
	copy(k.Hash[:], hash)
	k.CreatedAt = fromMS(created)
	k.LastUsedAt, k.RevokedAt = fromNullMS(used), fromNullMS(revoked)
	return &k, nil
}

// FindKeyByHash implements odometer.KeyStore.
func (s *Store) FindKeyByHash(ctx context.Context, hash [32]byte) (*odometer.APIKey, error) {
	// Every request asks this: the statement is prepared once.
	k, err := scanKey(s.findKey.QueryRowContext(ctx, hash[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, odometer.Errorf(odometer.ENOTFOUND, "Key not found")
	}
	return k, storeError("find key", err)
}

// FindKeys implements odometer.KeyStore.
func (s *Store) FindKeys(ctx context.Context) ([]*odometer.APIKey, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+keyColumns+` FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, storeError("find keys", err)
	}
	defer rows.Close()
	var keys []*odometer.APIKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, storeError("find keys", err)
		}
		keys = append(keys, k)
	}
	return keys, storeError("find keys", rows.Err())
}

// RevokeKey implements odometer.KeyStore.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) error {
	res, err := s.write.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, ms(at), id)
	if err != nil {
		return storeError("revoke key", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return odometer.Errorf(odometer.ENOTFOUND, "Key not found: %s", id)
	}
	return nil
}

// TouchKey implements odometer.KeyStore.
func (s *Store) TouchKey(ctx context.Context, id string, at time.Time) error {
	_, err := s.write.ExecContext(ctx, `UPDATE api_keys SET last_used_at = ? WHERE id = ?`, ms(at), id)
	return storeError("touch key", err)
}
