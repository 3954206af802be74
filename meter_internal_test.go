package odometer

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestMeter_Samples(t *testing.T) {
	cfg, err := ParseConfig("test", []byte(`{"events": {"e": {"op": "sum"}}, "meters": {
		"n": {"eventType": "e", "op": "sum", "value": "$.a.b"},
		"u": {"eventType": "e", "op": "unique", "value": "$.u"},
		"f": {"eventType": "e", "op": "count", "filter": {"s": ["ok", 200, true]}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	run := func(md string) *Values {
		f := newFolder(cfg)
		e := &Event{EventType: "e", CustomerID: "c", Value: 4, Time: time.UnixMilli(1000), Seq: 1}
		if md != "" {
			e.Metadata = []byte(md)
		}
		states := map[string]State{}
		for _, ps := range f.samples(e) {
			st := ps.m.NewState()
			st.Add(&ps.s)
			states[ps.m.Name] = st
		}
		return StateValues(cfg, states, time.UnixMilli(0), time.UnixMilli(3_600_000))
	}
	for _, tt := range []struct {
		md         string
		n, u, f, e int64 // counts
	}{
		{`{"a": {"b": 1.5}, "u": "x", "s": "ok"}`, 1, 1, 1, 1},
		{`{"a": {"b": "2.5"}, "u": 1, "s": 200}`, 1, 1, 1, 1},
		{`{"a": {"b": "x"}, "u": null, "s": "200"}`, 0, 0, 0, 1},
		{`{"a": {"b": 1e400}, "u": [1], "s": true}`, 0, 0, 1, 1},
		{`{"a": 3, "u": {"k": 1}}`, 0, 0, 0, 1},
		{``, 0, 0, 0, 1},
	} {
		v := run(tt.md)
		for name, want := range map[string]int64{"n": tt.n, "u": tt.u, "f": tt.f, "e": tt.e} {
			if got := v.EventCounts[name]; got != want {
				t.Errorf("metadata %s: eventCounts[%s] = %d, want %d", tt.md, name, got, want)
			}
		}
	}
}

// TestJSONText_AsItIs: the values taken as they are give the same text as
// those decoded and encoded again.
func TestJSONText_AsItIs(t *testing.T) {
	slow := func(v json.RawMessage) string {
		if v[0] == '"' {
			var s string
			if json.Unmarshal(v, &s) == nil {
				var b bytes.Buffer
				enc := json.NewEncoder(&b)
				enc.SetEscapeHTML(false)
				enc.Encode(s)
				return strings.TrimSuffix(b.String(), "\n")
			}
		}
		var b bytes.Buffer
		if json.Compact(&b, v) != nil {
			return string(v)
		}
		return b.String()
	}
	for _, v := range []string{`"gpt-4o"`, `"a<b>&c"`, `"é"`, `"\u00e9"`, `"模型"`, `"😀"`, `"a\u2028b"`, "\"a\u2028b\"", "\"a\u2029\"",
		`""`, `"a\"b"`, `"a\\b"`, `"\/"`, `12.5`, `1.0`, `-0`, `1e21`, `true`, `null`, `{"a":1}`, `{ "a" : 1 }`, `[1, 2]`, `"tab\tin"`} {
		if got, want := jsonText(json.RawMessage(v)), slow(json.RawMessage(v)); got != want {
			t.Errorf("jsonText(%s) = %s, want %s", v, got, want)
		}
	}
}
