package odometer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
)

// SignTemplate returns the template's signature header value,
// "v1=" + hex(HMAC-SHA256(secret, timestamp + "." + body)), keyed with the
// secret string as it is written, so its receivers keep working.
func SignTemplate(secret string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// SignStandard returns the Standard Webhooks signature header value,
// "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)). A
// secret whsec_X whose X is base64 is keyed with the decoded bytes; any
// other secret with its own bytes.
func SignStandard(secret, id string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, StandardKey(secret))
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// StandardKey returns the HMAC key of a secret for Standard Webhooks.
func StandardKey(secret string) []byte {
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		if k, err := base64.StdEncoding.DecodeString(rest); err == nil && len(k) > 0 {
			return k
		}
	}
	return []byte(secret)
}

// NewWebhookSecret returns a fresh whsec_ secret: 32 random bytes, base64.
func NewWebhookSecret() string {
	b := make([]byte, 32)
	readRandom(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}
