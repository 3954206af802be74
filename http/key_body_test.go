package http

import (
	"net/http"
	"testing"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

// TestCreateKey_StrictBody: POST /keys takes its keys exactly, once each,
// so that a second "scope" or a "Scope" cannot make a key other than the
// one asked for.
func TestCreateKey_StrictBody(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		ts := MustOpenServer(t, open)
		for _, tt := range []struct {
			name, body, err string
		}{
			{"ErrScopeTwice", `{"scope": "read", "scope": "admin"}`, `Request body has the key "scope" more than once`},
			{"ErrScopeCase", `{"Scope": "admin"}`, `Request body has the unknown key "Scope"; it must be a JSON object such as {"scope": "ingest", "name": "web app"}`},
			{"ErrUnknown", `{"scope": "read", "admin": true}`, `Request body has the unknown key "admin"; it must be a JSON object such as {"scope": "ingest", "name": "web app"}`},
		} {
			t.Run(tt.name, func(t *testing.T) {
				var keys []any
				ts.MustDo(t, http.StatusOK, "GET", "/keys", ts.AdminKey, "").Decode(t, &keys)
				before := len(keys)
				r := ts.MustDo(t, http.StatusBadRequest, "POST", "/keys", ts.AdminKey, tt.body)
				if got := r.Error(); got != tt.err {
					t.Errorf("error %q, want %q", got, tt.err)
				}
				ts.MustDo(t, http.StatusOK, "GET", "/keys", ts.AdminKey, "").Decode(t, &keys)
				if after := len(keys); after != before {
					t.Errorf("%d keys after a refused request, %d before", after, before)
				}
			})
		}
		t.Run("OK", func(t *testing.T) {
			m := ts.MustDo(t, http.StatusCreated, "POST", "/keys", ts.AdminKey, `{"scope": "read", "customerId": "c", "name": "n"}`).Map(t)
			if m["scope"] != "read" || m["customerId"] != "c" || m["name"] != "n" {
				t.Errorf("created %v", m)
			}
		})
	})
}
