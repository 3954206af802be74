package odometer_test

import (
	"strings"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
)

func TestPortalToken(t *testing.T) {
	secret := []byte(strings.Repeat("s", 32))
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	exp := now.Add(24 * time.Hour)
	tok := odometer.SignPortalToken(secret, "cust_ü<1>", exp)
	if !strings.HasPrefix(tok, odometer.PortalPrefix) {
		t.Fatalf("token %q lacks the prefix", tok)
	}
	t.Run("OK", func(t *testing.T) {
		c, e, err := odometer.VerifyPortalToken(secret, tok, now)
		if err != nil || c != "cust_ü<1>" || !e.Equal(exp) {
			t.Fatalf("got %q %v %v", c, e, err)
		}
	})
	for _, tt := range []struct {
		name, token string
		secret      []byte
		now         time.Time
		want        string
	}{
		{"ErrExpired", tok, secret, exp, "expired"},
		{"ErrOtherSecret", tok, []byte(strings.Repeat("r", 32)), now, "not valid"},
		{"ErrNoSecret", tok, nil, now, "not valid"},
		{"ErrTamperedCustomer", odometer.PortalPrefix + tamper(tok[4:]), secret, now, "not valid"},
		{"ErrNoPrefix", tok[4:], secret, now, "not valid"},
		{"ErrTruncated", tok[:len(tok)-3], secret, now, "not valid"},
		{"ErrGarbage", "odp_!!.??", secret, now, "not valid"},
		{"ErrAPIKey", "odo_0123456789abcdef", secret, now, "not valid"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := odometer.VerifyPortalToken(tt.secret, tt.token, tt.now)
			if odometer.ErrorCode(err) != odometer.EUNAUTHORIZED || !strings.Contains(odometer.ErrorMessage(err), tt.want) {
				t.Fatalf("err %v, want EUNAUTHORIZED saying %q", err, tt.want)
			}
		})
	}
}

// tamper flips one character of the payload, before the signature.
func tamper(s string) string {
	b := []byte(s)
	i := strings.IndexByte(s, '.') - 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}
