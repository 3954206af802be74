package odometer_test

import (
	"strings"
	"testing"
)

func TestConfig_CheckReload(t *testing.T) {
	base := `{"events": {"api.calls": {"op": "sum"}, "llm.request": {"op": "count"}}, "meters": {` +
		`"llm.tokens": {"eventType": "llm.request", "op": "sum", "value": "$.tokens", "groupBy": ["model"]}}}`
	old := mustConfig(base)
	for _, tt := range []struct {
		name, cfg string
		ok        bool
	}{
		{"Same", base, true},
		{"OpWithinTheTemplatesSeven", strings.Replace(base, `"op": "sum", "value"`, `"op": "max", "value"`, 1), true},
		{"EventTypeOpWithinSeven", strings.Replace(base, `{"op": "sum"}`, `{"op": "avg"}`, 1), true},
		{"MeterAdded", strings.Replace(base, `}}}`, `}, "llm.users": {"eventType": "llm.request", "op": "unique", "value": "$.u"}}}`, 1), true},
		{"MeterRemoved", `{"events": {"api.calls": {"op": "sum"}, "llm.request": {"op": "count"}}}`, true},
		{"OpOfAnotherKind", strings.Replace(base, `"op": "sum", "value"`, `"op": "p95", "value"`, 1), false},
		{"EventTypeToUnique", strings.Replace(base, `{"op": "sum"}`, `{"op": "unique"}`, 1), false},
		{"ValueChanged", strings.Replace(base, `$.tokens`, `$.output_tokens`, 1), false},
		{"GroupByChanged", strings.Replace(base, `["model"]`, `["model", "region"]`, 1), false},
		{"FilterAdded", strings.Replace(base, `["model"]}`, `["model"], "filter": {"ok": [true]}}`, 1), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := mustConfig(tt.cfg).CheckReload(old)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckReload = %v, want ok %v", err, tt.ok)
			}
		})
	}
}
