package odometer_test

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
)

func TestLoadConfig_Spec(t *testing.T) {
	path := filepath.Join("testdata", "config", "spec", "systemconfig.json")
	c, err := odometer.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Periods, []odometer.Period{odometer.Hourly, odometer.Daily, odometer.Weekly, odometer.Monthly, odometer.Yearly}; !reflect.DeepEqual(got, want) {
		t.Errorf("Periods = %v, want %v", got, want)
	}
	if got, want := c.Events, map[string]odometer.EventType{
		"api.calls":        {Op: odometer.OpSum, Description: "Total API calls"},
		"storage.bytes":    {Op: odometer.OpMax},
		"response.time.ms": {Op: odometer.OpAvg},
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("Events = %v, want %v", got, want)
	}
	// The order of the file, not sorted.
	if got, want := c.EventOrder, []string{"api.calls", "storage.bytes", "response.time.ms"}; !reflect.DeepEqual(got, want) {
		t.Errorf("EventOrder = %v, want %v", got, want)
	}
	if got, want := c.EventTypeNames(), []string{"api.calls", "response.time.ms", "storage.bytes"}; !reflect.DeepEqual(got, want) {
		t.Errorf("EventTypeNames = %v, want %v", got, want)
	}
	if got, want := c.Webhooks, []odometer.Webhook{{URL: "https://billing.example.com/hooks/metering", Secret: "whsec_...", Enabled: true}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Webhooks = %v, want %v", got, want)
	}
	// Defaults of the extensions.
	if got, want := c.Timezone, "UTC"; got != want {
		t.Errorf("Timezone = %q, want %q", got, want)
	}
	if got, want := c.Location, time.UTC; got != want {
		t.Errorf("Location = %v, want %v", got, want)
	}
	if got, want := c.MaxEventAge, odometer.Duration(35*24*time.Hour); got != want {
		t.Errorf("MaxEventAge = %v, want %v", got, want)
	}
	if got, want := c.GracePeriod, odometer.Duration(0); got != want {
		t.Errorf("GracePeriod = %v, want %v", got, want)
	}
	if got, want := c.Retention.Events, odometer.Duration(0); got != want {
		t.Errorf("Retention.Events = %v, want %v", got, want)
	}
	if got, want := c.InvalidEventType("api.call"), "Invalid event type: api.call. Must be one of: api.calls, storage.bytes, response.time.ms"; got != want {
		t.Errorf("InvalidEventType = %q, want %q", got, want)
	}
}

func TestLoadConfig_Extensions(t *testing.T) {
	c, err := odometer.LoadConfig(filepath.Join("testdata", "config", "extensions", "systemconfig.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Periods, []odometer.Period{odometer.Daily, odometer.Monthly}; !reflect.DeepEqual(got, want) {
		t.Errorf("Periods = %v, want %v", got, want)
	}
	if !c.HasPeriod(odometer.Daily) || c.HasPeriod(odometer.Hourly) {
		t.Errorf("HasPeriod(daily), HasPeriod(hourly) = %v, %v; want true, false", c.HasPeriod(odometer.Daily), c.HasPeriod(odometer.Hourly))
	}
	if got, want := c.EventOrder, []string{"tokens.out", "seats", "gpu.minutes", "queue.depth", "plan.tier"}; !reflect.DeepEqual(got, want) {
		t.Errorf("EventOrder = %v, want %v", got, want)
	}
	for name, op := range map[string]odometer.Op{"tokens.out": odometer.OpSum, "seats": odometer.OpLast, "gpu.minutes": odometer.OpCount, "queue.depth": odometer.OpMin, "plan.tier": odometer.OpFirst} {
		if got := c.Events[name].Op; got != op {
			t.Errorf("op of %s = %q, want %q", name, got, op)
		}
	}
	if got, want := c.Webhooks, []odometer.Webhook{
		{URL: "http://localhost:9000/hook", Secret: "whsec_c2VjcmV0", Enabled: true}, // enabled unless it says otherwise
		{URL: "https://billing.example.com/hooks/metering", Secret: "s3cret", Enabled: false},
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("Webhooks = %v, want %v", got, want)
	}
	if got, want := c.Location.String(), "America/New_York"; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if got, want := c.MaxEventAge, odometer.Duration(0); got != want {
		t.Errorf("MaxEventAge = %v, want %v (no limit)", got, want)
	}
	if got, want := c.GracePeriod, odometer.Duration(5*time.Minute); got != want {
		t.Errorf("GracePeriod = %v, want %v", got, want)
	}
	if got, want := c.Retention.Events, odometer.Duration(90*24*time.Hour); got != want {
		t.Errorf("Retention.Events = %v, want %v", got, want)
	}
}

func TestLoadConfig_ErrUnknownKey(t *testing.T) {
	path := filepath.Join("testdata", "config", "unknown-key", "systemconfig.json")
	_, err := odometer.LoadConfig(path)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{path, "webhook", "unknown key", "allowed: periods, events, webhooks, timezone, maxEventAge, gracePeriod, retention"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestLoadConfig_ErrMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "systemconfig.json")
	_, err := odometer.LoadConfig(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want one naming %s", err, path)
	}
}

func TestParseConfig_IgnoresUnderscoreKeys(t *testing.T) {
	c, err := odometer.ParseConfig("systemconfig.json", []byte(`{
		"_comment": "ignored",
		"_": 1,
		"_nested": {"anything": [1, 2, 3]},
		"events": {"api.calls": {"op": "sum", "_note": "ignored"}},
		"webhooks": [{"url": "https://example.com/h", "secret": "x", "_owner": "billing"}],
		"retention": {"events": "30d", "_why": "ignored"}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(c.Events), 1; got != want {
		t.Errorf("%d event types, want %d", got, want)
	}
	if got, want := c.Retention.Events, odometer.Duration(30*24*time.Hour); got != want {
		t.Errorf("Retention.Events = %v, want %v", got, want)
	}
}

func TestParseConfig_Defaults(t *testing.T) {
	c, err := odometer.ParseConfig("systemconfig.json", []byte(`{"events": {"api.calls": {"op": "sum"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Periods, odometer.Periods; !reflect.DeepEqual(got, want) {
		t.Errorf("Periods = %v, want %v", got, want)
	}
	if got, want := c.Timezone, "UTC"; got != want {
		t.Errorf("Timezone = %q, want %q", got, want)
	}
	if got, want := c.Location, time.UTC; got != want {
		t.Errorf("Location = %v, want UTC", got)
	}
	if got, want := c.MaxEventAge, odometer.Duration(35*24*time.Hour); got != want {
		t.Errorf("MaxEventAge = %v, want %v", got, want)
	}
	if got, want := c.GracePeriod, odometer.Duration(0); got != want {
		t.Errorf("GracePeriod = %v, want %v", got, want)
	}
	if got := len(c.Webhooks); got != 0 {
		t.Errorf("%d webhooks, want none", got)
	}
}

func TestParseConfig_DuplicatePeriods(t *testing.T) {
	c, err := odometer.ParseConfig("systemconfig.json", []byte(`{"periods": ["daily", "hourly", "daily"], "events": {"a": {"op": "sum"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Periods, []odometer.Period{odometer.Daily, odometer.Hourly}; !reflect.DeepEqual(got, want) {
		t.Errorf("Periods = %v, want %v", got, want)
	}
}

func TestParseConfig_EventOrder(t *testing.T) {
	c, err := odometer.ParseConfig("systemconfig.json", []byte(`{"events": {
		"zeta": {"op": "sum"}, "alpha": {"op": "max"}, "mid.dle": {"op": "avg", "description": "{\"not\": \"a key\"}"}, "beta": {"op": "count"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.EventOrder, []string{"zeta", "alpha", "mid.dle", "beta"}; !reflect.DeepEqual(got, want) {
		t.Errorf("EventOrder = %v, want %v", got, want)
	}
}

// configErrorTests give bad configurations and what their error must say:
// the file, the key, and what is allowed.
var configErrorTests = []struct {
	name string
	json string
	want []string
}{
	{"ErrNotJSON", `{"events": `, []string{"systemconfig.json", "not a JSON object"}},
	{"ErrNotObject", `[]`, []string{"systemconfig.json", "not a JSON object"}},
	{"ErrUnknownKey", `{"events": {"a": {"op": "sum"}}, "hooks": []}`,
		[]string{"systemconfig.json", "hooks", "allowed: periods, events, webhooks, timezone, maxEventAge, gracePeriod, retention"}},
	{"ErrUnknownOp", `{"events": {"api.calls": {"op": "total"}}}`,
		[]string{"systemconfig.json", "events.api.calls.op", "total", "allowed: sum, avg, min, max, count, first, last"}},
	{"ErrOpCase", `{"events": {"api.calls": {"op": "SUM"}}}`,
		[]string{"systemconfig.json", "events.api.calls.op", "SUM", "allowed: sum, avg, min, max, count, first, last"}},
	{"ErrOpNotString", `{"events": {"api.calls": {"op": 1}}}`,
		[]string{"systemconfig.json", "events.api.calls.op", "allowed: sum, avg, min, max, count, first, last"}},
	{"ErrOpMissing", `{"events": {"api.calls": {"description": "x"}}}`,
		[]string{"systemconfig.json", "events.api.calls.op", "missing", "allowed: sum, avg, min, max, count, first, last"}},
	{"ErrEventTypeUnknownKey", `{"events": {"api.calls": {"op": "sum", "unit": "calls"}}}`,
		[]string{"systemconfig.json", "events.api.calls.unit", "allowed: op, description"}},
	{"ErrEventTypeName", `{"events": {"api calls": {"op": "sum"}}}`,
		[]string{"systemconfig.json", "events.api calls", "without spaces"}},
	{"ErrNoEvents", `{"events": {}}`, []string{"systemconfig.json", "events", "at least one event type"}},
	{"ErrEventsMissing", `{"periods": ["daily"]}`, []string{"systemconfig.json", "events", "at least one event type"}},
	{"ErrUnknownPeriod", `{"periods": ["daily", "quarterly"], "events": {"a": {"op": "sum"}}}`,
		[]string{"systemconfig.json", "periods[1]", "quarterly", "allowed: hourly, daily, weekly, monthly, yearly"}},
	{"ErrPeriodsNotList", `{"periods": "daily", "events": {"a": {"op": "sum"}}}`,
		[]string{"systemconfig.json", "periods", "hourly, daily, weekly, monthly, yearly"}},
	{"ErrWebhookURLNotURL", `{"events": {"a": {"op": "sum"}}, "webhooks": [{"url": "not a url", "secret": "s"}]}`,
		[]string{"systemconfig.json", "webhooks[0].url", "not a url", "http://", "https://"}},
	{"ErrWebhookURLScheme", `{"events": {"a": {"op": "sum"}}, "webhooks": [{"url": "https://ok.example.com/h", "secret": "s"}, {"url": "ftp://example.com/h", "secret": "s"}]}`,
		[]string{"systemconfig.json", "webhooks[1].url", "ftp://example.com/h", "http://", "https://"}},
	{"ErrWebhookURLRelative", `{"events": {"a": {"op": "sum"}}, "webhooks": [{"url": "/hooks/metering", "secret": "s"}]}`,
		[]string{"systemconfig.json", "webhooks[0].url", "/hooks/metering", "absolute"}},
	{"ErrWebhookURLCredentials", `{"events": {"a": {"op": "sum"}}, "webhooks": [{"url": "https://user:pw@example.com/h", "secret": "s"}]}`,
		[]string{"systemconfig.json", "webhooks[0].url", "without credentials"}},
	{"ErrWebhookURLNoHost", `{"events": {"a": {"op": "sum"}}, "webhooks": [{"url": "https://", "secret": "s"}]}`,
		[]string{"systemconfig.json", "webhooks[0].url", "http://"}},
	{"ErrWebhookURLMissing", `{"events": {"a": {"op": "sum"}}, "webhooks": [{"secret": "s"}]}`,
		[]string{"systemconfig.json", "webhooks[0].url", "http://"}},
	{"ErrWebhookSecretMissing", `{"events": {"a": {"op": "sum"}}, "webhooks": [{"url": "https://example.com/h"}]}`,
		[]string{"systemconfig.json", "webhooks[0].secret", "missing"}},
	{"ErrWebhookUnknownKey", `{"events": {"a": {"op": "sum"}}, "webhooks": [{"url": "https://example.com/h", "secret": "s", "headers": {}}]}`,
		[]string{"systemconfig.json", "webhooks[0].headers", "allowed: url, secret, enabled"}},
	{"ErrWebhookEnabledType", `{"events": {"a": {"op": "sum"}}, "webhooks": [{"url": "https://example.com/h", "secret": "s", "enabled": "yes"}]}`,
		[]string{"systemconfig.json", "webhooks[0].enabled", "wrong type"}},
	{"ErrTimezone", `{"events": {"a": {"op": "sum"}}, "timezone": "Mars/Olympus_Mons"}`,
		[]string{"systemconfig.json", "timezone", "Mars/Olympus_Mons", "IANA"}},
	{"ErrTimezoneLocal", `{"events": {"a": {"op": "sum"}}, "timezone": "Local"}`,
		[]string{"systemconfig.json", "timezone", "Local", "IANA"}},
	{"ErrTimezoneEmpty", `{"events": {"a": {"op": "sum"}}, "timezone": ""}`,
		[]string{"systemconfig.json", "timezone", "IANA"}},
	{"ErrTimezoneNotString", `{"events": {"a": {"op": "sum"}}, "timezone": 5}`,
		[]string{"systemconfig.json", "timezone", "IANA"}},
	{"ErrMaxEventAge", `{"events": {"a": {"op": "sum"}}, "maxEventAge": "35 days"}`,
		[]string{"systemconfig.json", "maxEventAge", "35 days", `"90s", "5m", "2h", "35d" or "0"`}},
	{"ErrMaxEventAgeNumber", `{"events": {"a": {"op": "sum"}}, "maxEventAge": 35}`,
		[]string{"systemconfig.json", "maxEventAge", `"90s", "5m", "2h", "35d" or "0"`}},
	{"ErrGracePeriodNegative", `{"events": {"a": {"op": "sum"}}, "gracePeriod": "-5m"}`,
		[]string{"systemconfig.json", "gracePeriod", "-5m", `"90s", "5m", "2h", "35d" or "0"`}},
	{"ErrGracePeriodFractionalDays", `{"events": {"a": {"op": "sum"}}, "gracePeriod": "1.5d"}`,
		[]string{"systemconfig.json", "gracePeriod", "1.5d", `"35d"`}},
	{"ErrRetention", `{"events": {"a": {"op": "sum"}}, "retention": {"events": "forever"}}`,
		[]string{"systemconfig.json", "retention.events", "forever", `"90s", "5m", "2h", "35d" or "0"`}},
	{"ErrRetentionUnknownKey", `{"events": {"a": {"op": "sum"}}, "retention": {"aggregations": "1y"}}`,
		[]string{"systemconfig.json", "retention.aggregations", "allowed: events"}},
	{"ErrRetentionNotObject", `{"events": {"a": {"op": "sum"}}, "retention": "90d"}`,
		[]string{"systemconfig.json", "retention", "object"}},
}

func TestParseConfig_Err(t *testing.T) {
	for _, tt := range configErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := odometer.ParseConfig("systemconfig.json", []byte(tt.json))
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	for _, tt := range []struct {
		s    string
		want time.Duration
	}{
		{"90s", 90 * time.Second},
		{"5m", 5 * time.Minute},
		{"2h", 2 * time.Hour},
		{"35d", 35 * 24 * time.Hour},
		{"1d", 24 * time.Hour},
		{"0", 0},
		{"0s", 0},
		{"1h30m", 90 * time.Minute},
		{"365d", 365 * 24 * time.Hour},
	} {
		got, err := odometer.ParseDuration(tt.s)
		if err != nil {
			t.Errorf("ParseDuration(%q): %v", tt.s, err)
			continue
		}
		if got != odometer.Duration(tt.want) {
			t.Errorf("ParseDuration(%q) = %v, want %v", tt.s, time.Duration(got), tt.want)
		}
		// What String prints parses back to the same duration.
		if back, err := odometer.ParseDuration(got.String()); err != nil || back != got {
			t.Errorf("ParseDuration(%q.String() = %q) = %v, %v", tt.s, got.String(), back, err)
		}
	}
	for _, s := range []string{"", "d", "-1d", "1.5d", "35 d", " 35d", "1w", "abc", "-5m", "5", "+1d", "0x10d"} {
		if got, err := odometer.ParseDuration(s); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", s, time.Duration(got))
		}
	}
	if got, want := odometer.Duration(35*24*time.Hour).String(), "35d"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if got, want := odometer.Duration(0).String(), "0"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	b, err := json.Marshal(odometer.Duration(90 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var d odometer.Duration
	if err := json.Unmarshal(b, &d); err != nil || d != odometer.Duration(90*time.Second) {
		t.Errorf("JSON round trip of 90s via %s = %v, %v", b, time.Duration(d), err)
	}
}

func TestConfig_Redacted(t *testing.T) {
	c, err := odometer.ParseConfig("systemconfig.json", []byte(`{"events": {"a": {"op": "sum"}}, "webhooks": [
		{"url": "https://a.example.com/h", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		{"url": "https://b.example.com/h", "secret": "hunter2hunter2"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Redacted()
	if got, want := r.Webhooks[0].Secret, "whsec_********"; got != want {
		t.Errorf("secret 0 = %q, want %q", got, want)
	}
	if got, want := r.Webhooks[1].Secret, "********"; got != want {
		t.Errorf("secret 1 = %q, want %q", got, want)
	}
	if got, want := r.Webhooks[0].URL, "https://a.example.com/h"; got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "hunter2"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("redacted JSON %s shows a secret", b)
		}
	}
	// The original keeps its secrets.
	if got, want := c.Webhooks[0].Secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"; got != want {
		t.Errorf("original secret = %q, want %q", got, want)
	}
	if got, want := odometer.RedactSecret(""), ""; got != want {
		t.Errorf("RedactSecret(\"\") = %q, want %q", got, want)
	}
}

func TestExampleConfig(t *testing.T) {
	c := odometer.ExampleConfig()
	for name, op := range map[string]odometer.Op{"api.calls": odometer.OpSum, "storage.bytes": odometer.OpMax, "response.time.ms": odometer.OpAvg} {
		if got := c.Events[name].Op; got != op {
			t.Errorf("op of %s = %q, want %q", name, got, op)
		}
	}
}

func TestParseConfig_EventTypeTwice(t *testing.T) {
	_, err := odometer.ParseConfig("systemconfig.json", []byte(`{"events": {"a": {"op": "sum"}, "b": {"op": "max"}, "a": {"op": "min"}}}`))
	if err == nil {
		t.Fatal("an event type given twice: no error")
	}
	if got, want := err.Error(), "config systemconfig.json: events.a: given more than once; each event type once"; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
}
