package http

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/odometer-dev/odometer"
)

// DefaultPortalLifetime is how long a portal link lives when the request
// does not say.
const DefaultPortalLifetime = 24 * time.Hour

// portalRoutes are what a portal token may read: its customer's usage,
// aggregations and profile, and the meters' names and descriptions.
var portalRoutes = []string{"/usage", "/aggregations", "/config", "/customers/"}

// portalKey returns the read key, pinned to its customer, that a valid
// portal token stands for.
func (s *Server) portalKey(r *http.Request, token string) (*odometer.APIKey, error) {
	customer, _, err := odometer.VerifyPortalToken(s.PortalSecret, token, s.Now())
	if err != nil {
		return nil, err
	}
	allowed := false
	for _, p := range portalRoutes {
		if r.URL.Path == p || (strings.HasSuffix(p, "/") && strings.HasPrefix(r.URL.Path, p)) {
			allowed = true
		}
	}
	if r.Method != http.MethodGet || !allowed {
		return nil, odometer.Errorf(odometer.EFORBIDDEN, "A portal link only reads its customer's usage")
	}
	return &odometer.APIKey{ID: "portal", Name: "portal link", Scope: odometer.ScopeRead, CustomerID: customer, Portal: true}, nil
}

// handleCreatePortal is POST /customers/{id}/portal: a link to hand to the
// customer, which opens its usage in the dashboard with no key until it
// expires.
func (s *Server) handleCreatePortal(w http.ResponseWriter, r *http.Request) {
	customer := r.PathValue("id")
	if err := odometer.ValidateCustomerID(customer); err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(s.PortalSecret) == 0 {
		s.writeError(w, r, odometer.Errorf(odometer.ECONFLICT,
			"portal links need a portal secret: start the server with --portal-secret (or ODOMETER_PORTAL_SECRET), at least %d bytes", odometer.MinPortalSecret))
		return
	}
	body, err := readBody(w, r, s.MaxBodyBytes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in struct {
		ExpiresIn string `json:"expiresIn"`
	}
	if len(body) > 0 {
		if err := strictObject(body, &in, "expiresIn"); err != nil {
			s.writeError(w, r, jsonError(body, err, `a JSON object such as {"expiresIn": "24h"}`))
			return
		}
	}
	life := DefaultPortalLifetime
	if in.ExpiresIn != "" {
		d, err := odometer.ParseDuration(in.ExpiresIn)
		if err != nil || d <= 0 || time.Duration(d) > odometer.MaxPortalLifetime {
			s.writeError(w, r, odometer.Errorf(odometer.EINVALID, "expiresIn must be a duration such as \"1h\", \"24h\" or \"30d\", at most 90d"))
			return
		}
		life = time.Duration(d)
	}
	expires := s.Now().UTC().Add(life).Truncate(time.Millisecond)
	token := odometer.SignPortalToken(s.PortalSecret, customer, expires)
	base := s.PublicURL
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	link := strings.TrimSuffix(base, "/") + "/ui/portal.html#" + url.QueryEscape(token)
	writeJSON(w, http.StatusOK, map[string]any{"url": link, "expiresAt": odometer.FormatTime(expires), "customerId": customer})
}
