package odometer_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/odometer-dev/odometer"
)

// alertTestConfig has a meter of every op, and the daily and monthly
// periods.
const alertTestConfig = `{"periods": ["daily", "monthly"],
	"events": {"api.calls": {"op": "sum"}, "api.hits": {"op": "count"}, "storage.bytes": {"op": "max"},
		"latency.ms": {"op": "avg"}, "low": {"op": "min"}, "first": {"op": "first"}, "last": {"op": "last"},
		"llm.request": {"op": "count"}, "storage.gb": {"op": "max"}},
	"meters": {"llm.users": {"eventType": "llm.request", "op": "unique", "value": "$.userId"},
		"llm.p95": {"eventType": "llm.request", "op": "p95", "value": "$.latencyMs"},
		"storage.gbh": {"eventType": "storage.gb", "op": "integral"},
		"seats": {"eventType": "storage.gb", "op": "twa"}}}`

var alertValidations = []struct {
	name  string
	alert odometer.Alert
	err   string // "" when valid; else text the message contains
}{
	{"OK", odometer.Alert{Meter: "api.calls", Period: "daily", Threshold: 10000}, ""},
	{"OKCount", odometer.Alert{Meter: "api.hits", Period: "monthly", Threshold: 1, CustomerID: "cust_1"}, ""},
	{"OKMax", odometer.Alert{Meter: "storage.bytes", Period: "daily", Threshold: 0.5}, ""},
	{"OKUnique", odometer.Alert{Meter: "llm.users", Period: "monthly", Threshold: 100}, ""},
	{"ErrMeterRequired", odometer.Alert{Period: "daily", Threshold: 1}, "meter is required"},
	{"ErrMeterUnknown", odometer.Alert{Meter: "api.nope", Period: "daily", Threshold: 1}, "Invalid meter: api.nope"},
	{"ErrAvg", odometer.Alert{Meter: "latency.ms", Period: "daily", Threshold: 1}, "latency.ms (avg) goes up and down"},
	{"ErrMin", odometer.Alert{Meter: "low", Period: "daily", Threshold: 1}, "alerts watch sum, count, max and unique"},
	{"ErrFirst", odometer.Alert{Meter: "first", Period: "daily", Threshold: 1}, "alerts watch sum, count, max and unique"},
	{"ErrLast", odometer.Alert{Meter: "last", Period: "daily", Threshold: 1}, "alerts watch sum, count, max and unique"},
	{"ErrQuantile", odometer.Alert{Meter: "llm.p95", Period: "daily", Threshold: 1}, "llm.p95 (p95) goes up and down"},
	{"ErrIntegral", odometer.Alert{Meter: "storage.gbh", Period: "daily", Threshold: 1}, "is a gauge (integral)"},
	{"ErrTWA", odometer.Alert{Meter: "seats", Period: "daily", Threshold: 1}, "is a gauge (twa)"},
	{"ErrPeriodRequired", odometer.Alert{Meter: "api.calls", Threshold: 1}, "period is required; allowed: daily, monthly"},
	{"ErrPeriodNotConfigured", odometer.Alert{Meter: "api.calls", Period: "hourly", Threshold: 1}, `period "hourly" is not configured; allowed: daily, monthly`},
	{"ErrPeriodUnknown", odometer.Alert{Meter: "api.calls", Period: "billing", Threshold: 1}, `period "billing" is not configured`},
	{"ErrThresholdZero", odometer.Alert{Meter: "api.calls", Period: "daily"}, "threshold must be a number greater than 0"},
	{"ErrThresholdNegative", odometer.Alert{Meter: "api.calls", Period: "daily", Threshold: -1}, "threshold must be a number greater than 0"},
	{"ErrThresholdNaN", odometer.Alert{Meter: "api.calls", Period: "daily", Threshold: math.NaN()}, "threshold must be a number greater than 0"},
	{"ErrThresholdInf", odometer.Alert{Meter: "api.calls", Period: "daily", Threshold: math.Inf(1)}, "threshold must be a number greater than 0"},
	{"ErrThresholdHuge", odometer.Alert{Meter: "api.calls", Period: "daily", Threshold: 1e301}, "threshold must be a number greater than 0"},
	{"ErrCustomerNUL", odometer.Alert{Meter: "api.calls", Period: "daily", Threshold: 1, CustomerID: "c\x00"}, "customerId"},
	{"ErrCustomerLong", odometer.Alert{Meter: "api.calls", Period: "daily", Threshold: 1, CustomerID: strings.Repeat("c", 256)}, "customerId"},
}

func TestAlert_Validate(t *testing.T) {
	cfg := mustConfig(alertTestConfig)
	for _, tt := range alertValidations {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.alert.Validate(cfg)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var oe *odometer.Error
			if !errors.As(err, &oe) || oe.Code != odometer.EINVALID {
				t.Fatalf("Validate = %v, want EINVALID", err)
			}
			if !strings.Contains(oe.Message, tt.err) {
				t.Fatalf("message %q, want it to contain %q", oe.Message, tt.err)
			}
		})
	}
}
