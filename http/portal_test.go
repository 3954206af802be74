package http

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

var testPortalSecret = []byte("portal-secret-for-tests-0123456789abcdef")

// portalToken makes a portal link for customer and returns its token.
func portalToken(t *testing.T, ts *TestServer, customer, body string) string {
	t.Helper()
	res := ts.MustDo(t, http.StatusOK, "POST", "/customers/"+customer+"/portal", ts.AdminKey, body)
	var out struct {
		URL       string `json:"url"`
		ExpiresAt string `json:"expiresAt"`
	}
	res.Decode(t, &out)
	u, err := url.Parse(out.URL)
	if err != nil || !u.IsAbs() || u.Path != "/ui/portal.html" || u.Fragment == "" {
		t.Fatalf("portal url %q", out.URL)
	}
	if strings.Contains(out.URL, ts.AdminKey) || strings.Contains(out.URL, "odo_") {
		t.Fatalf("the link holds an API key: %s", out.URL)
	}
	return u.Fragment
}

func TestPortal(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		ts := MustOpenServer(t, open)
		ts.API.PortalSecret = testPortalSecret
		ts.MustDo(t, http.StatusCreated, "POST", "/usagebatch", ts.IngestKey,
			`[{"eventType": "api.calls", "customerId": "cust_a", "value": 5}, {"eventType": "api.calls", "customerId": "cust_b", "value": 7}]`)
		ts.MustDo(t, http.StatusOK, "POST", "/aggregations/trigger", ts.AdminKey, "")

		t.Run("OK", func(t *testing.T) {
			tok := portalToken(t, ts, "cust_a", `{"expiresIn": "1h"}`)
			res := ts.MustDo(t, http.StatusOK, "GET", "/portal/usage", tok, "")
			var view struct {
				CustomerID string `json:"customerId"`
				Period     string `json:"period"`
				Meters     []struct {
					Name        string `json:"name"`
					Description string `json:"description"`
				} `json:"meters"`
				Periods []struct {
					Events map[string]float64 `json:"events"`
				} `json:"periods"`
			}
			res.Decode(t, &view)
			if view.CustomerID != "cust_a" || view.Period != "monthly" || len(view.Periods) != 1 || view.Periods[0].Events["api.calls"] != 5 {
				t.Fatalf("portal view %+v", view)
			}
			if len(view.Meters) == 0 || view.Meters[0].Description == "" {
				t.Errorf("meters %+v lack their descriptions", view.Meters)
			}
			// Nothing of the vendor's: no revision, webhook state, profile
			// or configuration.
			for _, internal := range []string{"revision", "webhookStatus", "attempts", "lastError", "metadata", "webhooks", "secret", "timezone"} {
				if strings.Contains(string(res.Body), internal) {
					t.Errorf("the portal view shows %q: %s", internal, res.Body)
				}
			}
		})
		t.Run("ErrOtherCustomer", func(t *testing.T) {
			tok := portalToken(t, ts, "cust_a", "")
			ts.MustDo(t, http.StatusNotFound, "GET", "/portal/usage?customerId=cust_b", tok, "")
		})
		t.Run("ErrOnlyReadsUsage", func(t *testing.T) {
			tok := portalToken(t, ts, "cust_a", "")
			for _, rq := range []struct{ method, path, body string }{
				{"GET", "/events", ""}, {"GET", "/stats", ""}, {"GET", "/keys", ""}, {"GET", "/deliveries", ""},
				{"GET", "/aggregations", ""}, {"GET", "/config", ""}, {"GET", "/customers/cust_a", ""}, {"GET", "/usage?eventType=api.calls", ""},
				{"POST", "/usage/api.calls", `{"customerId": "cust_a", "value": 1}`},
				{"POST", "/customers/cust_a/portal", ""},
			} {
				res := ts.Do(t, rq.method, rq.path, tok, rq.body)
				if res.Status != http.StatusForbidden {
					t.Errorf("%s %s with a portal token: %d %s, want 403", rq.method, rq.path, res.Status, res.Body)
				}
			}
		})
		t.Run("ErrExpired", func(t *testing.T) {
			tok := portalToken(t, ts, "cust_a", `{"expiresIn": "1h"}`)
			ts.SetNow(testNow.Add(2 * time.Hour))
			defer ts.SetNow(testNow)
			res := ts.MustDo(t, http.StatusUnauthorized, "GET", "/portal/usage", tok, "")
			if !strings.Contains(res.Error(), "expired") {
				t.Errorf("error %q", res.Error())
			}
		})
		t.Run("ErrTampered", func(t *testing.T) {
			tok := portalToken(t, ts, "cust_a", "")
			forged := odometer.SignPortalToken([]byte("another-secret-another-secret-0123"), "cust_b", testNow.Add(time.Hour))
			for _, bad := range []string{forged, tok[:len(tok)-2] + "AA", strings.Replace(tok, "odp_", "odp_A", 1)} {
				if res := ts.Do(t, "GET", "/portal/usage", bad, ""); res.Status != http.StatusUnauthorized {
					t.Errorf("token %q: %d, want 401", bad, res.Status)
				}
			}
		})
		t.Run("ErrRotatedSecret", func(t *testing.T) {
			tok := portalToken(t, ts, "cust_a", "")
			ts.API.PortalSecret = []byte("a-new-secret-a-new-secret-a-new-secret")
			defer func() { ts.API.PortalSecret = testPortalSecret }()
			ts.MustDo(t, http.StatusUnauthorized, "GET", "/portal/usage", tok, "")
		})
		t.Run("ErrBadInput", func(t *testing.T) {
			for _, body := range []string{`{"expiresIn": "forever"}`, `{"expiresIn": "91d"}`, `{"expiresIn": "0"}`, `{"expires": "1h"}`, `[]`} {
				ts.MustDo(t, http.StatusBadRequest, "POST", "/customers/cust_a/portal", ts.AdminKey, body)
			}
			ts.MustDo(t, http.StatusForbidden, "POST", "/customers/cust_a/portal", ts.ReadKey, "")
		})
		t.Run("ErrNoSecret", func(t *testing.T) {
			ts.API.PortalSecret = nil
			defer func() { ts.API.PortalSecret = testPortalSecret }()
			res := ts.MustDo(t, http.StatusConflict, "POST", "/customers/cust_a/portal", ts.AdminKey, "")
			if !strings.Contains(res.Error(), "--portal-secret") {
				t.Errorf("error %q", res.Error())
			}
		})
	})
}
