package odometer_test

import (
	"strings"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
)

// idTests are the ids that both customer and event ids accept or refuse.
var idTests = []struct {
	name string
	id   string
	ok   bool
}{
	{"OK", "cust_123", true},
	{"OKSpaces", "Acme Corp, Inc.", true},
	{"OKUnicode", "kunde-øæå-顧客-🚀", true},
	{"OKNoBreakSpace", "a\u00a0b", true},
	{"OK255Bytes", strings.Repeat("a", 255), true},
	{"OK255BytesMultibyte", strings.Repeat("é", 127) + "a", true},
	{"ErrEmpty", "", false},
	{"Err256Bytes", strings.Repeat("a", 256), false},
	{"Err256BytesMultibyte", strings.Repeat("é", 128), false},
	{"ErrInvalidUTF8", "cust_\xff", false},
	{"ErrTruncatedUTF8", "cust_\xc3", false},
	{"ErrNUL", "cust\x00", false},
	{"ErrNewline", "cust\n123", false},
	{"ErrTab", "\tcust", false},
	{"ErrEscape", "cust\x1b[31m", false},
	{"ErrDEL", "cust\x7f", false},
	{"ErrNEL", "cust\u0085", false},
	{"ErrC1", "\u009fcust", false},
	{"ErrControlAfterUnicode", "é\x01", false},
	{"ErrDELAfterUnicode", "é\x7f", false},
	{"OKLineSeparator", "a\u2028b", true},
	{"OKParagraphSeparator", "a\u2029b", true},
	{"OKHTMLAndQuotes", `sub_a<b>&c'\"\\`, true},
}

func TestValidateCustomerID(t *testing.T) {
	for _, tt := range idTests {
		t.Run(tt.name, func(t *testing.T) {
			err := odometer.ValidateCustomerID(tt.id)
			if tt.ok {
				if err != nil {
					t.Fatalf("ValidateCustomerID(%q): %v", tt.id, err)
				}
				return
			}
			if got, want := odometer.ErrorCode(err), odometer.EINVALID; got != want {
				t.Fatalf("ValidateCustomerID(%q) code = %q, want %q", tt.id, got, want)
			}
			if !strings.Contains(odometer.ErrorMessage(err), "customerId") {
				t.Errorf("message %q does not name customerId", odometer.ErrorMessage(err))
			}
		})
	}
	if got, want := odometer.ErrorMessage(odometer.ValidateCustomerID("")), "customerId is required"; got != want {
		t.Errorf("message = %q, want %q (the template's)", got, want)
	}
}

func TestValidateEventID(t *testing.T) {
	for _, tt := range idTests {
		t.Run(tt.name, func(t *testing.T) {
			err := odometer.ValidateEventID(tt.id)
			if tt.ok {
				if err != nil {
					t.Fatalf("ValidateEventID(%q): %v", tt.id, err)
				}
				return
			}
			if got, want := odometer.ErrorCode(err), odometer.EINVALID; got != want {
				t.Fatalf("ValidateEventID(%q) code = %q, want %q", tt.id, got, want)
			}
			if !strings.HasPrefix(odometer.ErrorMessage(err), "id ") {
				t.Errorf("message %q does not name the id", odometer.ErrorMessage(err))
			}
		})
	}
}

func TestValidateEventTypeName(t *testing.T) {
	for _, s := range []string{"api.calls", "response.time.ms", "tokens_out", "GPU-Minutes", "é"} {
		if err := odometer.ValidateEventTypeName(s); err != nil {
			t.Errorf("ValidateEventTypeName(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "api calls", "a/b", "a?b", "a#b", "a%b", "a\x00", strings.Repeat("a", 256), "\xff"} {
		if got, want := odometer.ErrorCode(odometer.ValidateEventTypeName(s)), odometer.EINVALID; got != want {
			t.Errorf("ValidateEventTypeName(%q) code = %q, want %q", s, got, want)
		}
	}
}

func TestConfig_CheckTime(t *testing.T) {
	now := instant(t, "2026-03-15T12:00:00Z")
	const future = "timestamp must not be more than 5 minutes in the future"
	const old = "timestamp must not be older than maxEventAge (35d)"
	defaults := &odometer.Config{MaxEventAge: odometer.DefaultMaxEventAge}
	noLimit := &odometer.Config{MaxEventAge: 0}
	for _, tt := range []struct {
		name  string
		cfg   *odometer.Config
		at    time.Time
		given bool
		want  string
	}{
		{"OKNow", defaults, now, true, ""},
		{"OKFiveMinutesAhead", defaults, now.Add(5 * time.Minute), true, ""},
		{"ErrFiveMinutesAndOneMilliAhead", defaults, now.Add(5*time.Minute + time.Millisecond), true, future},
		{"ErrTomorrow", defaults, now.Add(24 * time.Hour), true, future},
		{"OKMaxEventAge", defaults, now.Add(-35 * 24 * time.Hour), true, ""},
		{"ErrMaxEventAgeAndOneMilli", defaults, now.Add(-35*24*time.Hour - time.Millisecond), true, old},
		{"ErrLastYear", defaults, now.AddDate(-1, 0, 0), true, old},
		{"OKNoLimit", noLimit, now.AddDate(-100, 0, 0), true, ""},
		{"ErrNoLimitStillNotAhead", noLimit, now.Add(6 * time.Minute), true, future},
		// The time of receipt is never checked.
		{"OKNotGiven", defaults, now.AddDate(-1, 0, 0), false, ""},
		{"OKNotGivenAhead", defaults, now.Add(time.Hour), false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := &odometer.Event{Time: tt.at, TimeGiven: tt.given}
			if got := tt.cfg.CheckTime(e, now); got != tt.want {
				t.Fatalf("CheckTime(%s) = %q, want %q", tt.at, got, tt.want)
			}
		})
	}
	oneHour := &odometer.Config{MaxEventAge: odometer.Duration(2 * time.Hour)}
	if got, want := oneHour.CheckTime(&odometer.Event{Time: now.Add(-3 * time.Hour), TimeGiven: true}, now), "timestamp must not be older than maxEventAge (2h0m0s)"; got != want {
		t.Errorf("CheckTime = %q, want %q", got, want)
	}
}

func TestEvent_Fingerprint(t *testing.T) {
	at := instant(t, "2026-03-15T12:00:00.123Z")
	base := func() odometer.Event {
		return odometer.Event{
			Seq: 1, ID: "evt_1", ClientID: true, EventType: "api.calls", CustomerID: "cust_1",
			Value: 1.5, Metadata: []byte(`{"region":"eu"}`), Time: at, TimeGiven: true, ReceivedAt: at,
		}
	}
	b := base()
	want := b.Fingerprint()

	t.Run("EqualContent", func(t *testing.T) {
		// What the store assigns is not part of what the client said.
		e := base()
		e.Seq, e.ReceivedAt = 99, at.Add(time.Hour)
		if got := e.Fingerprint(); got != want {
			t.Fatalf("fingerprint = %x, want %x", got, want)
		}
		e = base()
		e.ID, e.ClientID = "evt_2", false
		if got := e.Fingerprint(); got != want {
			t.Fatalf("fingerprint with another id = %x, want %x", got, want)
		}
	})
	for _, tt := range []struct {
		name   string
		change func(e *odometer.Event)
	}{
		{"EventType", func(e *odometer.Event) { e.EventType = "api.call" }},
		{"CustomerID", func(e *odometer.Event) { e.CustomerID = "cust_2" }},
		{"Value", func(e *odometer.Event) { e.Value = 1.5000000000000002 }},
		{"ValueZero", func(e *odometer.Event) { e.Value = 0 }},
		{"Metadata", func(e *odometer.Event) { e.Metadata = []byte(`{"region":"us"}`) }},
		{"MetadataNone", func(e *odometer.Event) { e.Metadata = nil }},
		{"Time", func(e *odometer.Event) { e.Time = at.Add(time.Millisecond) }},
		{"TimeNotGiven", func(e *odometer.Event) { e.TimeGiven = false }},
		// Length prefixes keep field boundaries apart.
		{"FieldBoundary", func(e *odometer.Event) { e.EventType, e.CustomerID = "api.callsc", "ust_1" }},
	} {
		t.Run("Differs"+tt.name, func(t *testing.T) {
			e := base()
			tt.change(&e)
			if got := e.Fingerprint(); got == want {
				t.Fatalf("fingerprint = %x, the same as the original", got)
			}
		})
	}
	t.Run("TimeIgnoredWhenNotGiven", func(t *testing.T) {
		e, f := base(), base()
		e.TimeGiven, f.TimeGiven = false, false
		f.Time = at.Add(time.Hour)
		if e.Fingerprint() != f.Fingerprint() {
			t.Fatal("the time of receipt changed the fingerprint")
		}
	})
}

func TestIDHash(t *testing.T) {
	id := "evt_1"
	if a, b := odometer.IDHash(id), odometer.IDHash(strings.Clone(id)); a != b {
		t.Fatalf("IDHash(%q) = %d, then %d: not deterministic", id, a, b)
	}
	if odometer.IDHash("evt_1") == odometer.IDHash("evt_2") {
		t.Fatal("IDHash(evt_1) == IDHash(evt_2)")
	}
}
