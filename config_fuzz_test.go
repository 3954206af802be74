package odometer_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/odometer-dev/odometer"
)

// FuzzParseConfig: ParseConfig never panics; a configuration it accepts is
// valid throughout, its redacted form shows no webhook secret, and written
// back as JSON it parses to the same configuration.
func FuzzParseConfig(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "config", "*", "systemconfig.json"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		`{}`,
		`{"periods": ["daily"], "events": {"a": {"op": "sum"}}, "webhooks": []}`,
		`{"periods": ["hourly", "hourly"], "events": {"a": {"op": "avg"}}}`,
		`{"periods": ["daily"], "events": {"a b": {"op": "sum"}}}`,
		`{"periods": ["daily"], "events": {"a": {"op": "median"}}}`,
		`{"periods": ["daily"], "events": {"a": {"op": "sum"}}, "timezone": "../../etc/passwd"}`,
		`{"periods": ["daily"], "events": {"a": {"op": "sum"}}, "maxEventAge": "-5d", "gracePeriod": "1e9h"}`,
		`{"periods": ["daily"], "events": {"a": {"op": "sum"}}, "webhooks": [{"url": "ftp://x", "secret": "s"}]}`,
		`{"periods": ["daily"], "events": {"a": {"op": "sum"}}, "webhooks": [{"url": "https://h/p", "secret": "whsec_c2VjcmV0", "enabled": true}]}`,
		`{"periods": ["daily"], "events": {"a": {"op": "sum"}, "a": {"op": "max"}}}`,
		`{"_x": 1, "periods": ["daily"], "events": {"a": {"op": "sum", "_y": 2}}, "retention": {"events": "90d"}}`,
		`[]`, `null`, `"x"`, `{"periods": null, "events": null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := odometer.ParseConfig("fuzz", b)
		if err != nil {
			if cfg != nil {
				t.Fatalf("an error and a configuration: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "config fuzz: ") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if cfg.Location == nil {
			t.Fatal("no Location")
		}
		// EventOrder and Events hold the same names, each once: a name
		// given twice is refused.
		listed := map[string]bool{}
		for _, name := range cfg.EventOrder {
			listed[name] = true
		}
		if len(listed) != len(cfg.Events) || len(cfg.EventOrder) != len(cfg.Events) {
			t.Fatalf("EventOrder %q for %d event types", cfg.EventOrder, len(cfg.Events))
		}
		for _, name := range cfg.EventOrder {
			et, ok := cfg.Events[name]
			if !ok {
				t.Fatalf("EventOrder names %q, which Events does not have", name)
			}
			if err := odometer.ValidateEventTypeName(name); err != nil {
				t.Fatalf("event type %q accepted: %v", name, err)
			}
			valid := false
			for _, op := range odometer.Ops {
				valid = valid || et.Op == op
			}
			if !valid {
				t.Fatalf("event type %q has the op %q", name, et.Op)
			}
		}
		for _, p := range cfg.Periods {
			if !cfg.HasPeriod(p) {
				t.Fatalf("period %q listed but not had", p)
			}
		}
		red, err := json.Marshal(cfg.Redacted())
		if err != nil {
			t.Fatalf("the redacted configuration does not marshal: %v", err)
		}
		for _, w := range cfg.Webhooks {
			if len(w.Secret) >= 8 && strings.Contains(string(red), w.Secret) {
				t.Fatalf("the redacted configuration shows the secret %q: %s", w.Secret, red)
			}
		}
		// Written back as JSON, it is the same configuration.
		out, err := json.Marshal(cfg)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, err := odometer.ParseConfig("again", out)
		if err != nil {
			t.Fatalf("the accepted configuration, written back, is refused: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(again.Events, cfg.Events) || !reflect.DeepEqual(again.Periods, cfg.Periods) ||
			!reflect.DeepEqual(again.Webhooks, cfg.Webhooks) || again.Timezone != cfg.Timezone ||
			again.MaxEventAge != cfg.MaxEventAge || again.GracePeriod != cfg.GracePeriod || again.Retention != cfg.Retention {
			t.Fatalf("written back and parsed again, the configuration changes:\n%s\n%s", out, mustJSON(again))
		}
	})
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
