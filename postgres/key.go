package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/odometer-dev/odometer"
)

// CreateKey implements odometer.KeyStore.
func (s *Store) CreateKey(ctx context.Context, k *odometer.APIKey) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO api_keys (id, name, scope, customer_id, prefix, hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		k.ID, k.Name, string(k.Scope), k.CustomerID, k.Prefix, k.Hash[:], ms(k.CreatedAt))
	return storeError("create key", err)
}

const keyColumns = `id, name, scope, customer_id, prefix, hash, created_at, last_used_at, revoked_at`

func scanKey(row pgx.Row) (*odometer.APIKey, error) {
	var k odometer.APIKey
	var scope string
	var hash []byte
	if err := row.Scan(&k.ID, &k.Name, &scope, &k.CustomerID, &k.Prefix, &hash, &k.CreatedAt, &k.LastUsedAt, &k.RevokedAt); err != nil {
		return nil, err
	}
	k.Scope = odometer.Scope(scope)
	copy(k.Hash[:], hash)
	k.CreatedAt = k.CreatedAt.UTC()
	k.LastUsedAt, k.RevokedAt = utc(k.LastUsedAt), utc(k.RevokedAt)
	return &k, nil
}

// FindKeyByHash implements odometer.KeyStore.
func (s *Store) FindKeyByHash(ctx context.Context, hash [32]byte) (*odometer.APIKey, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE hash = $1 AND revoked_at IS NULL`, hash[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, odometer.Errorf(odometer.ENOTFOUND, "Key not found")
	}
	return k, storeError("find key", err)
}

// FindKeys implements odometer.KeyStore.
func (s *Store) FindKeys(ctx context.Context) ([]*odometer.APIKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM api_keys ORDER BY created_at, id`)
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
	tag, err := s.pool.Exec(ctx, `UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, ms(at), id)
	if err != nil {
		return storeError("revoke key", err)
	}
	if tag.RowsAffected() == 0 {
		return odometer.Errorf(odometer.ENOTFOUND, "Key not found: %s", id)
	}
	return nil
}

// TouchKey implements odometer.KeyStore.
func (s *Store) TouchKey(ctx context.Context, id string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = $1 WHERE id = $2`, ms(at), id)
	return storeError("touch key", err)
}
