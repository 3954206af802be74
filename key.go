package odometer

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"time"
)

// Scope is what an API key may do.
type Scope string

const (
	// ScopeIngest may post usage.
	ScopeIngest Scope = "ingest"
	// ScopeRead may read events, aggregations, usage and the config.
	ScopeRead Scope = "read"
	// ScopeAdmin may do everything.
	ScopeAdmin Scope = "admin"
)

// ParseScope returns the scope named s, or EINVALID.
func ParseScope(s string) (Scope, error) {
	switch Scope(s) {
	case ScopeIngest, ScopeRead, ScopeAdmin:
		return Scope(s), nil
	}
	return "", Errorf(EINVALID, "scope must be one of: ingest, read, admin")
}

// APIKey is a stored key. The key itself is never stored, only its SHA-256.
type APIKey struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Scope is ingest, read or admin.
	Scope Scope `json:"scope"`
	// CustomerID pins a read key to one customer.
	CustomerID string `json:"customerId,omitempty"`
	// Prefix is the first characters of the key, to tell keys apart.
	Prefix     string     `json:"prefix"`
	Hash       [32]byte   `json:"-"`
	CreatedAt  time.Time  `json:"createdAt"`
	LastUsedAt *time.Time `json:"lastUsedAt,omitempty"`
	RevokedAt  *time.Time `json:"revokedAt,omitempty"`
	// Portal: not a stored key but a portal link's token, which reads its
	// customer's usage only.
	Portal bool `json:"-"`
}

// Allows reports whether k may act with scope s. Admin may do everything.
func (k *APIKey) Allows(s Scope) bool { return k.Scope == ScopeAdmin || k.Scope == s }

// KeyPrefix is how keys start, so that leaked ones can be found by scanners.
const KeyPrefix = "odo_"

// NewAPIKey makes a key with a fresh secret and returns the secret, to be
// shown once.
func NewAPIKey(scope Scope, customerID, name string, now time.Time) (string, *APIKey) {
	secret := KeyPrefix + randomHex(24)
	return secret, &APIKey{
		ID:         "key_" + randomHex(8),
		Name:       name,
		Scope:      scope,
		CustomerID: customerID,
		Prefix:     secret[:len(KeyPrefix)+6],
		Hash:       HashKey(secret),
		CreatedAt:  now.UTC(),
	}
}

// HashKey returns the SHA-256 of a key. Looking keys up by this hash, not
// by the key, means the time taken tells nothing of how much of a key
// matched.
func HashKey(key string) [32]byte { return sha256.Sum256([]byte(key)) }

// EqualHash compares two key hashes in constant time.
func EqualHash(a, b [32]byte) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }

func randomHex(n int) string {
	b := make([]byte, n)
	readRandom(b)
	return hex.EncodeToString(b)
}

// readRandom fills b from the system's secure source. crypto/rand.Read
// never fails on the platforms Go supports.
func readRandom(b []byte) { rand.Read(b) }

// NewID returns a random id with the prefix, for events without a client id.
func NewID(prefix string) string { return prefix + randomHex(12) }
