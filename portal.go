package odometer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"time"
)

// PortalPrefix starts every portal token, so that it is told apart from
// an API key (KeyPrefix) at a glance and by the server.
const PortalPrefix = "odp_"

// MaxPortalLifetime bounds how long a portal link lives.
const MaxPortalLifetime = 90 * 24 * time.Hour

// MinPortalSecret is the shortest portal secret accepted, in bytes.
const MinPortalSecret = 32

// A portal token lets whoever holds it read one customer's usage until it
// expires, with no API key: what a vendor hands to its customer. It is
// odp_ + base64url(expiry, customer id) + "." + base64url(HMAC-SHA256 of
// that, keyed with the server's portal secret). Nothing is stored: a
// token is valid while its signature checks and it has not expired, and
// rotating the secret revokes every token at once.

// SignPortalToken returns the token for customerID until expires.
func SignPortalToken(secret []byte, customerID string, expires time.Time) string {
	payload := binary.BigEndian.AppendUint64(nil, uint64(expires.UnixMilli()))
	payload = append(payload, customerID...)
	enc := base64.RawURLEncoding
	return PortalPrefix + enc.EncodeToString(payload) + "." + enc.EncodeToString(portalMAC(secret, payload))
}

func portalMAC(secret, payload []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("odometer portal v1\x00"))
	m.Write(payload)
	return m.Sum(nil)
}

// VerifyPortalToken returns the customer and expiry of a token signed
// with secret, or EUNAUTHORIZED saying why it is refused.
func VerifyPortalToken(secret []byte, token string, now time.Time) (customerID string, expires time.Time, err error) {
	invalid := Errorf(EUNAUTHORIZED, "This portal link is not valid: ask for a new one")
	body, ok := strings.CutPrefix(token, PortalPrefix)
	if !ok || len(secret) == 0 {
		return "", time.Time{}, invalid
	}
	p, s, ok := strings.Cut(body, ".")
	if !ok {
		return "", time.Time{}, invalid
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(p)
	mac, err2 := enc.DecodeString(s)
	if err1 != nil || err2 != nil || len(payload) < 9 || !hmac.Equal(mac, portalMAC(secret, payload)) {
		return "", time.Time{}, invalid
	}
	expires = time.UnixMilli(int64(binary.BigEndian.Uint64(payload))).UTC()
	if !now.Before(expires) {
		return "", time.Time{}, Errorf(EUNAUTHORIZED, "This portal link expired at %s: ask for a new one", FormatTime(expires))
	}
	return string(payload[8:]), expires, nil
}
