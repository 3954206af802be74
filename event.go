package odometer

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on one event.
const (
	MaxIDBytes       = 255
	MaxCustomerBytes = 255
	MaxTypeBytes     = 255
	MaxMetadataBytes = 16 << 10
	MaxBatch         = 1000
	// MaxValue bounds an event's value, so that sums stay finite.
	MaxValue = 1e300
	// MaxClockSkew is how far in the future an event's own timestamp may be.
	MaxClockSkew = 5 * time.Minute
)

// Event is one usage event.
type Event struct {
	// Seq is the arrival order, assigned by the store; aggregation
	// watermarks and first/last ties use it.
	Seq int64
	// ID is the client's id, or one generated at receipt.
	ID string
	// ClientID reports that ID came from the client. Only such ids are
	// deduplicated; a generated id is unique by construction.
	ClientID   bool
	EventType  string
	CustomerID string
	Value      float64
	// Metadata is a compact JSON object, or nil.
	Metadata []byte
	// Time is the event's own time, which decides its periods.
	Time time.Time
	// TimeGiven reports that Time came from the client rather than the
	// time of receipt; only then is it part of the fingerprint.
	TimeGiven  bool
	ReceivedAt time.Time
}

// Fingerprint is a hash of what the client said about the event. A repeat
// of a stored id with the same fingerprint is a duplicate; with another, a
// conflict.
func (e *Event) Fingerprint() int64 {
	h := fnv.New64a()
	var b [8]byte
	write := func(s string) {
		binary.LittleEndian.PutUint64(b[:], uint64(len(s)))
		h.Write(b[:])
		h.Write([]byte(s))
	}
	write(e.EventType)
	write(e.CustomerID)
	binary.LittleEndian.PutUint64(b[:], math.Float64bits(e.Value))
	h.Write(b[:])
	write(string(e.Metadata))
	if e.TimeGiven {
		binary.LittleEndian.PutUint64(b[:], uint64(e.Time.UnixNano()))
		h.Write(b[:])
	}
	return int64(h.Sum64())
}

// IDHash is the 64-bit hash under which a client id is indexed for
// deduplication. Equal hashes are confirmed on the id itself.
func IDHash(id string) int64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return int64(h.Sum64())
}

// ValidateCustomerID checks a customer id: present, at most 255 bytes of
// valid UTF-8, no control characters.
func ValidateCustomerID(s string) error {
	if s == "" {
		return Errorf(EINVALID, "customerId is required")
	}
	if len(s) > MaxCustomerBytes {
		return Errorf(EINVALID, "customerId must be at most %d bytes", MaxCustomerBytes)
	}
	if !printable(s) {
		return Errorf(EINVALID, "customerId must be valid UTF-8 without control characters")
	}
	return nil
}

// ValidateEventID checks a client event id.
func ValidateEventID(s string) error {
	if s == "" {
		return Errorf(EINVALID, "id must be a non-empty string")
	}
	if len(s) > MaxIDBytes {
		return Errorf(EINVALID, "id must be at most %d bytes", MaxIDBytes)
	}
	if !printable(s) {
		return Errorf(EINVALID, "id must be valid UTF-8 without control characters")
	}
	return nil
}

// ValidateEventTypeName checks the name of an event type in the config.
func ValidateEventTypeName(s string) error {
	if s == "" || len(s) > MaxTypeBytes || !printable(s) || strings.ContainsAny(s, "/?#% ") {
		return Errorf(EINVALID, "event type names must be 1 to %d bytes of printable UTF-8 without spaces, '/', '?', '#' or '%%'", MaxTypeBytes)
	}
	return nil
}

// printable reports whether s is UTF-8 without control characters (C0,
// DEL, C1). The line and paragraph separators U+2028 and U+2029 are text:
// they are allowed, and every body writes them as the characters
// themselves, as JSON.stringify does.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return false
		}
		if c >= 0x80 {
			if !utf8.ValidString(s[i:]) {
				return false
			}
			for _, r := range s[i:] {
				if r < 0x20 || (r >= 0x7f && r < 0xa0) {
					return false
				}
			}
			return true
		}
	}
	return true
}

// CheckTime checks an event's own time against the clock: at most 5
// minutes ahead, and no older than maxEventAge. It returns a client-safe
// message, or "".
func (c *Config) CheckTime(e *Event, now time.Time) string {
	if !e.TimeGiven {
		return ""
	}
	if e.Time.After(now.Add(MaxClockSkew)) {
		return "timestamp must not be more than 5 minutes in the future"
	}
	if c.MaxEventAge > 0 && e.Time.Before(now.Add(-time.Duration(c.MaxEventAge))) {
		return "timestamp must not be older than maxEventAge (" + c.MaxEventAge.String() + ")"
	}
	return ""
}

// InvalidEventType is the template's message for an unknown event type.
func (c *Config) InvalidEventType(t string) string {
	if len(t) > 64 {
		t = t[:64] + "..."
	}
	t = strings.ToValidUTF8(t, "\uFFFD")
	return "Invalid event type: " + t + ". Must be one of: " + strings.Join(c.EventOrder, ", ")
}

// InvalidMeter is the message for an unknown meter. With no meters
// section, meters are the event types, and the message is the template's.
func (c *Config) InvalidMeter(name string) string {
	if len(c.MeterOrder) == 0 {
		return c.InvalidEventType(name)
	}
	if len(name) > 64 {
		name = name[:64] + "..."
	}
	name = strings.ToValidUTF8(name, "\uFFFD")
	return "Invalid meter: " + name + ". Must be one of: " + strings.Join(append(append([]string(nil), c.EventOrder...), c.MeterOrder...), ", ")
}

// ConflictError is the answer to an event whose client id is stored, or
// given earlier in the same request, with a different body.
func ConflictError(id string) error {
	return &Error{Code: ECONFLICT,
		Message: "An event with id " + strconv.Quote(id) + " is already stored, or given earlier in this request, with a different body; nothing of this request was stored"}
}
