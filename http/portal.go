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

// portalRoutes are what a portal token may read: one view of its
// customer's usage, with nothing of the vendor's (no revision, webhook
// state, configuration or profile).
var portalRoutes = []string{"/portal/usage"}

// portalKey returns the read key, pinned to its customer, that a valid
// portal token stands for.
func (s *Server) portalKey(r *http.Request, token string) (*odometer.APIKey, error) {
	customer, _, err := odometer.VerifyPortalToken(s.PortalSecret, token, s.Now())
	if err != nil {
		return nil, err
	}
	allowed := false
	for _, p := range portalRoutes {
		allowed = allowed || r.URL.Path == p
	}
	if r.Method != http.MethodGet || !allowed {
		return nil, odometer.Errorf(odometer.EFORBIDDEN, "A portal link only reads its customer's usage")
	}
	// Each customer's links share a rate limit of their own.
	return &odometer.APIKey{ID: "portal:" + customer, Name: "portal link", Scope: odometer.ScopeRead, CustomerID: customer, Portal: true}, nil
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

// portalMeter is what the portal shows of a meter.
type portalMeter struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Unit        string   `json:"unit,omitempty"`
	GroupBy     []string `json:"groupBy,omitempty"`
}

// portalPeriod is what the portal shows of one aggregation.
type portalPeriod struct {
	PeriodKey   string                           `json:"periodKey"`
	PeriodStart string                           `json:"periodStart"`
	PeriodEnd   string                           `json:"periodEnd"`
	Complete    bool                             `json:"complete"`
	Events      map[string]float64               `json:"events"`
	EventCounts map[string]int64                 `json:"eventCounts"`
	Groups      map[string][]odometer.GroupValue `json:"groups,omitempty"`
}

// portalPeriods is how many periods the portal shows, newest first.
const portalPeriods = 12

// handlePortalUsage is GET /portal/usage: a customer's usage per meter
// and period (its billing cycles when that period is configured, else
// months, else the first period), newest first, with the meters' names,
// descriptions and units, and nothing else: what a portal link shows.
func (s *Server) handlePortalUsage(w http.ResponseWriter, r *http.Request) {
	cfg := s.Config()
	customer, err := customerFilter(r, r.URL.Query().Get("customerId"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if customer == "" {
		s.writeError(w, r, odometer.Errorf(odometer.EINVALID, "customerId is required"))
		return
	}
	period := cfg.Periods[0]
	for _, p := range []odometer.Period{odometer.Monthly, odometer.Billing} {
		if cfg.HasPeriod(p) {
			period = p
		}
	}
	aggs, _, err := s.Aggs.FindAggregations(r.Context(), odometer.AggregationFilter{CustomerID: customer, Period: period, Limit: portalPeriods})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	meters := []portalMeter{}
	for _, name := range cfg.MeterNames() {
		m := cfg.Meter(name)
		meters = append(meters, portalMeter{Name: name, Description: m.Description, Unit: m.Unit, GroupBy: m.GroupBy})
	}
	periods := make([]portalPeriod, 0, len(aggs))
	for _, a := range aggs {
		v := a.Values(cfg)
		periods = append(periods, portalPeriod{PeriodKey: a.PeriodKey, PeriodStart: odometer.FormatTime(a.PeriodStart),
			PeriodEnd: odometer.FormatTime(odometer.LastMilli(a.PeriodEnd)), Complete: a.Complete,
			Events: v.Events, EventCounts: v.EventCounts, Groups: v.Groups})
	}
	writeJSON(w, http.StatusOK, map[string]any{"customerId": customer, "period": period, "meters": meters, "periods": periods})
}
