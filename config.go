package odometer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// EventType is the configuration of one event type.
type EventType struct {
	Op          Op     `json:"op"`
	Description string `json:"description,omitempty"`
}

// Webhook is one receiver of aggregation notifications.
type Webhook struct {
	URL     string `json:"url"`
	Secret  string `json:"secret"`
	Enabled bool   `json:"enabled"`
}

// Retention says how long raw events are kept.
type Retention struct {
	Events Duration `json:"events"`
}

// Config is systemconfig.json, the contract shared with the template.
type Config struct {
	Periods     []Period             `json:"periods"`
	Events      map[string]EventType `json:"events"`
	Webhooks    []Webhook            `json:"webhooks"`
	Timezone    string               `json:"timezone,omitempty"`
	MaxEventAge Duration             `json:"maxEventAge"`
	GracePeriod Duration             `json:"gracePeriod"`
	Retention   Retention            `json:"retention"`
	// Meters are the meters over events' metadata (SPEC.md, "Meters").
	Meters map[string]*Meter `json:"meters,omitempty"`

	// MeterOrder is the names of Meters in the order of the file.
	MeterOrder []string `json:"-"`
	// meterByName holds every meter, the event types' own included;
	// metersByType the meters of each event type.
	meterByName  map[string]*Meter
	metersByType map[string][]*Meter
	// gauges are the meters whose values carry across periods.
	gauges []*Meter

	// EventOrder is the event type names in the order of the file.
	EventOrder []string `json:"-"`

	// Location is Timezone, loaded.
	Location *time.Location `json:"-"`
}

// Defaults of the optional keys.
const (
	DefaultMaxEventAge = Duration(35 * 24 * time.Hour)
)

// Duration is a config duration: "90s", "5m", "2h", "35d", or "0" for none.
type Duration time.Duration

// ParseDuration parses a config duration.
func ParseDuration(s string) (Duration, error) {
	if s == "0" {
		return 0, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.ParseUint(n, 10, 32)
		if err != nil || len(n) == 0 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return Duration(time.Duration(d) * 24 * time.Hour), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return Duration(d), nil
}

func (d Duration) String() string {
	if d == 0 {
		return "0"
	}
	td := time.Duration(d)
	if td%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(td/(24*time.Hour)), 10) + "d"
	}
	return td.String()
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("must be a duration string such as \"90s\", \"5m\", \"2h\", \"35d\" or \"0\"")
	}
	v, err := ParseDuration(s)
	if err != nil {
		return fmt.Errorf("must be a duration string such as \"90s\", \"5m\", \"2h\", \"35d\" or \"0\", not %q", s)
	}
	*d = v
	return nil
}

// EventTypeNames returns the configured event types, sorted.
func (c *Config) EventTypeNames() []string {
	names := make([]string, 0, len(c.Events))
	for n := range c.Events {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// HasPeriod reports whether p is configured.
func (c *Config) HasPeriod(p Period) bool {
	for _, q := range c.Periods {
		if q == p {
			return true
		}
	}
	return false
}

// Redacted returns a copy with webhook secrets hidden, for GET /config.
func (c *Config) Redacted() *Config {
	r := *c
	r.Webhooks = make([]Webhook, len(c.Webhooks))
	for i, w := range c.Webhooks {
		w.Secret = RedactSecret(w.Secret)
		r.Webhooks[i] = w
	}
	return &r
}

// RedactSecret hides all of a secret but a hint of its kind.
func RedactSecret(s string) string {
	if s == "" {
		return ""
	}
	if strings.HasPrefix(s, "whsec_") {
		return "whsec_********"
	}
	return "********"
}

// ExampleConfig is the configuration used when no file is given: the
// template's own example.
func ExampleConfig() *Config {
	c, err := ParseConfig("built-in example", []byte(exampleConfigJSON))
	if err != nil {
		panic(err)
	}
	return c
}

const exampleConfigJSON = `{
  "periods": ["hourly", "daily", "weekly", "monthly", "yearly"],
  "events": {
    "api.calls":        { "op": "sum",   "description": "Total API calls" },
    "storage.bytes":    { "op": "max",   "description": "Peak storage used" },
    "response.time.ms": { "op": "avg",   "description": "Average response time" }
  },
  "webhooks": []
}`

// LoadConfig reads and validates the configuration file at path.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return ParseConfig(path, b)
}

// ParseConfig validates the configuration b, read from name. Errors name the
// file, the key and what is allowed.
func ParseConfig(name string, b []byte) (*Config, error) {
	fail := func(key, format string, args ...any) (*Config, error) {
		return nil, fmt.Errorf("config %s: %s: %s", name, key, fmt.Sprintf(format, args...))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fail("(file)", "not a JSON object: %v", err)
	}
	known := map[string]bool{"periods": true, "events": true, "webhooks": true, "timezone": true,
		"maxEventAge": true, "gracePeriod": true, "retention": true, "meters": true}
	for k := range raw {
		if !known[k] && !strings.HasPrefix(k, "_") {
			return fail(k, "unknown key; allowed: periods, events, webhooks, timezone, maxEventAge, gracePeriod, retention, meters (or a key starting with _)")
		}
	}
	c := &Config{MaxEventAge: DefaultMaxEventAge, Timezone: "UTC"}
	strict := func(key string, v any) error {
		msg, ok := raw[key]
		if !ok {
			return nil
		}
		d := json.NewDecoder(bytes.NewReader(msg))
		d.DisallowUnknownFields()
		return d.Decode(v)
	}

	var periods []string
	if err := strict("periods", &periods); err != nil {
		return fail("periods", "must be a list of period names (hourly, daily, weekly, monthly, yearly, billing)")
	}
	if _, ok := raw["periods"]; !ok {
		periods = []string{"hourly", "daily", "weekly", "monthly", "yearly"}
	}
	seen := map[Period]bool{}
	for i, s := range periods {
		p, err := ParsePeriod(s)
		if err != nil {
			return fail(fmt.Sprintf("periods[%d]", i), "unknown period %q; allowed: hourly, daily, weekly, monthly, yearly, billing", s)
		}
		if !seen[p] {
			c.Periods = append(c.Periods, p)
			seen[p] = true
		}
	}

	var events map[string]json.RawMessage
	if err := strict("events", &events); err != nil || len(events) == 0 {
		return fail("events", "must be an object of at least one event type, such as {\"api.calls\": {\"op\": \"sum\"}}")
	}
	c.Events = make(map[string]EventType, len(events))
	c.EventOrder = objectKeys(raw["events"])
	if len(c.EventOrder) != len(events) {
		seen := map[string]bool{}
		for _, n := range c.EventOrder {
			if seen[n] {
				return fail("events."+n, "given more than once; each event type once")
			}
			seen[n] = true
		}
	}
	for name, msg := range events {
		key := "events." + name
		if err := ValidateEventTypeName(name); err != nil {
			return fail(key, "%s", ErrorMessage(err))
		}
		var f map[string]json.RawMessage
		if err := json.Unmarshal(msg, &f); err != nil {
			return fail(key, "must be an object such as {\"op\": \"sum\"}")
		}
		var et EventType
		for k, v := range f {
			switch {
			case k == "op":
				var op string
				if json.Unmarshal(v, &op) != nil || !validOp(Op(op)) {
					return fail(key+".op", "unknown op %s; allowed: %s", string(v), opList())
				}
				et.Op = Op(op)
			case k == "description":
				if json.Unmarshal(v, &et.Description) != nil {
					return fail(key+".description", "must be a string")
				}
			case strings.HasPrefix(k, "_"):
			default:
				return fail(key+"."+k, "unknown key; allowed: op, description")
			}
		}
		if et.Op == "" {
			return fail(key+".op", "missing; allowed: %s", opList())
		}
		c.Events[name] = et
	}

	var hooks []map[string]json.RawMessage
	if err := strict("webhooks", &hooks); err != nil {
		return fail("webhooks", "must be a list of {\"url\", \"secret\", \"enabled\"}")
	}
	for i, h := range hooks {
		key := fmt.Sprintf("webhooks[%d]", i)
		w := Webhook{Enabled: true}
		for k, v := range h {
			var err error
			switch {
			case k == "url":
				err = json.Unmarshal(v, &w.URL)
			case k == "secret":
				err = json.Unmarshal(v, &w.Secret)
			case k == "enabled":
				err = json.Unmarshal(v, &w.Enabled)
			case strings.HasPrefix(k, "_"):
			default:
				return fail(key+"."+k, "unknown key; allowed: url, secret, enabled")
			}
			if err != nil {
				return fail(key+"."+k, "has the wrong type")
			}
		}
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return fail(key+".url", "malformed URL %q; allowed: an absolute http:// or https:// URL without credentials", w.URL)
		}
		if w.Secret == "" {
			return fail(key+".secret", "missing; every webhook needs a signing secret (odometer webhooks secret prints a fresh one)")
		}
		c.Webhooks = append(c.Webhooks, w)
	}

	if msg, ok := raw["timezone"]; ok {
		if json.Unmarshal(msg, &c.Timezone) != nil {
			return fail("timezone", "must be a string naming an IANA time zone, such as \"Europe/Oslo\"")
		}
	}
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil || c.Timezone == "" || c.Timezone == "Local" {
		return fail("timezone", "unknown time zone %q; allowed: an IANA name such as \"UTC\" or \"America/New_York\"", c.Timezone)
	}
	c.Location = loc

	for _, k := range []string{"maxEventAge", "gracePeriod"} {
		dst := &c.MaxEventAge
		if k == "gracePeriod" {
			dst = &c.GracePeriod
		}
		if err := strict(k, dst); err != nil {
			return fail(k, "%v", err)
		}
	}
	if msg, ok := raw["retention"]; ok {
		var r map[string]json.RawMessage
		if json.Unmarshal(msg, &r) != nil {
			return fail("retention", "must be an object such as {\"events\": \"90d\"}")
		}
		for k, v := range r {
			switch {
			case k == "events":
				if err := json.Unmarshal(v, &c.Retention.Events); err != nil {
					return fail("retention.events", "%v", err)
				}
			case strings.HasPrefix(k, "_"):
			default:
				return fail("retention."+k, "unknown key; allowed: events")
			}
		}
	}
	if msg, ok := raw["meters"]; ok {
		if err := c.parseMeters(msg, func(key, format string, args ...any) error {
			_, err := fail(key, format, args...)
			return err
		}); err != nil {
			return nil, err
		}
	}
	c.indexMeters()
	return c, nil
}

// objectKeys returns the keys of a JSON object in their order.
func objectKeys(msg []byte) []string {
	d := json.NewDecoder(bytes.NewReader(msg))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var keys []string
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return keys
		}
		keys = append(keys, t.(string))
		var skip json.RawMessage
		if d.Decode(&skip) != nil {
			return keys
		}
	}
	return keys
}
