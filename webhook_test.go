package odometer_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	"github.com/odometer-dev/odometer"
)

// The expected signatures below were computed outside Go, with
// `openssl dgst -sha256 -hmac SECRET`, so they do not share code (or a
// misreading of the format) with the signer.

// TestSignStandard_PublishedVector reproduces the example of the Standard
// Webhooks specification.
func TestSignStandard_PublishedVector(t *testing.T) {
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		ts     = 1614265330
		body   = `{"test": 2432232314}`
	)
	if got, want := odometer.SignStandard(secret, id, ts, []byte(body)), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("SignStandard = %q, want %q", got, want)
	}
}

var signStandardTests = []struct {
	name, secret, id string
	ts               int64
	body             string
	want             string
}{
	// A secret that is not whsec_ + base64 keys the HMAC with its own bytes.
	{"PlainSecret", "plain-secret!", "msg_1", 1768350000, `{"a":1}`, "v1,8yUwxPUghpXF2MLac6Jvl7nwVkYXCTuE0OuE2VZWshw="},
	{"PrefixNotBase64", "whsec_not*base64", "msg_1", 1768350000, `{"a":1}`, "v1,M3cTtB1cnkm3NP/DzLLCpDCf0/BQyF6YPF3tBaLmZk8="},
}

func TestSignStandard(t *testing.T) {
	for _, tt := range signStandardTests {
		t.Run(tt.name, func(t *testing.T) {
			if got := odometer.SignStandard(tt.secret, tt.id, tt.ts, []byte(tt.body)); got != tt.want {
				t.Fatalf("SignStandard = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSignStandard_CoversEveryPart: changing the id, the timestamp, the
// body or the secret changes the signature.
func TestSignStandard_CoversEveryPart(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	base := odometer.SignStandard(secret, "msg_1", 1000, []byte(`{"a":1}`))
	for name, sig := range map[string]string{
		"ID":        odometer.SignStandard(secret, "msg_2", 1000, []byte(`{"a":1}`)),
		"Timestamp": odometer.SignStandard(secret, "msg_1", 1001, []byte(`{"a":1}`)),
		"Body":      odometer.SignStandard(secret, "msg_1", 1000, []byte(`{"a":2}`)),
		"Secret":    odometer.SignStandard("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "msg_1", 1000, []byte(`{"a":1}`)),
	} {
		if sig == base {
			t.Errorf("%s: signature unchanged", name)
		}
	}
}

var standardKeyTests = []struct {
	name, secret string
	want         []byte
}{
	{"Base64", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", mustBase64("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")},
	{"NotBase64", "whsec_not*base64", []byte("whsec_not*base64")},
	{"EmptyAfterPrefix", "whsec_", []byte("whsec_")},
	{"NoPrefix", "plain-secret!", []byte("plain-secret!")},
	// Without the prefix a secret is the template's: its own bytes, even
	// when it happens to be valid base64.
	{"NoPrefixBase64", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", []byte("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")},
}

func TestStandardKey(t *testing.T) {
	for _, tt := range standardKeyTests {
		t.Run(tt.name, func(t *testing.T) {
			if got := odometer.StandardKey(tt.secret); !bytes.Equal(got, tt.want) {
				t.Fatalf("StandardKey(%q) = %x, want %x", tt.secret, got, tt.want)
			}
		})
	}
}

func mustBase64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestSignTemplate(t *testing.T) {
	const (
		secret = "whsec_t0p5ecret"
		ts     = 1768350000
		body   = `{"type":"aggregation.completed","customerId":"cust_123"}`
	)
	got := odometer.SignTemplate(secret, ts, []byte(body))
	t.Run("OpenSSL", func(t *testing.T) {
		if want := "v1=08498268eed1ade4872eaa497db5619b2131e7d54d5406d6ed31e2fa6078eb92"; got != want {
			t.Fatalf("SignTemplate = %q, want %q", got, want)
		}
	})
	// The template keys with the secret string as written, whsec_ and
	// all, even when the rest is base64.
	t.Run("KeyedWithSecretString", func(t *testing.T) {
		const b64 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		m := hmac.New(sha256.New, []byte(b64))
		m.Write([]byte(strconv.Itoa(ts) + "." + body))
		if got, want := odometer.SignTemplate(b64, ts, []byte(body)), "v1="+hex.EncodeToString(m.Sum(nil)); got != want {
			t.Fatalf("SignTemplate = %q, want %q", got, want)
		}
	})
	t.Run("LowercaseHex", func(t *testing.T) {
		hexPart, ok := strings.CutPrefix(got, "v1=")
		if !ok || len(hexPart) != 64 || strings.ToLower(hexPart) != hexPart {
			t.Fatalf("SignTemplate = %q, want v1= and 64 lowercase hex digits", got)
		}
	})
}

func TestNewWebhookSecret(t *testing.T) {
	a, b := odometer.NewWebhookSecret(), odometer.NewWebhookSecret()
	if a == b {
		t.Fatalf("two secrets are equal: %q", a)
	}
	rest, ok := strings.CutPrefix(a, "whsec_")
	if !ok {
		t.Fatalf("secret %q lacks whsec_", a)
	}
	k, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		t.Fatalf("secret %q is not base64: %v", a, err)
	}
	if got, want := len(k), 32; got != want {
		t.Fatalf("secret has %d bytes, want %d", got, want)
	}
	if got := odometer.StandardKey(a); !bytes.Equal(got, k) {
		t.Fatalf("StandardKey of a fresh secret = %x, want its decoded bytes %x", got, k)
	}
}
