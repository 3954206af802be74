package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/odometer-dev/odometer"
)

// readBody reads the whole body up to limit, decompressed if it comes
// with Content-Encoding gzip or deflate: the limit is on the decompressed
// size. The body is JSON whatever the Content-Type says: the template's
// own examples send none.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	coding, err := contentCoding(r.Header)
	if err != nil {
		return nil, err
	}
	var body []byte
	if coding != "" {
		body, err = inflate(http.MaxBytesReader(w, r.Body, limit+wireSlack), coding, limit)
		if err != nil {
			return nil, err
		}
	} else {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, odometer.Errorf(odometer.ETOOLARGE, "Request body too large: the limit is %d bytes", limit)
			}
			return nil, odometer.Errorf(odometer.EINVALID, "Could not read the request body")
		}
	}
	if !utf8.Valid(body) {
		return nil, odometer.Errorf(odometer.EINVALID, "Request body must be valid UTF-8")
	}
	return body, nil
}

// jsonError turns a decoding error into a message safe to show.
func jsonError(body []byte, err error, want string) error {
	var se *json.SyntaxError
	switch {
	case len(bytes.TrimSpace(body)) == 0:
		return odometer.Errorf(odometer.EINVALID, "Request body is empty; it must be %s", want)
	case errors.As(err, &se):
		return odometer.Errorf(odometer.EINVALID, "Invalid JSON at byte %d: %s", se.Offset, se.Error())
	case errors.Is(err, io.ErrUnexpectedEOF):
		return odometer.Errorf(odometer.EINVALID, "Invalid JSON: the body ends too soon")
	}
	var dup errDuplicateKey
	if errors.As(err, &dup) {
		return odometer.Errorf(odometer.EINVALID, "Request body has the key %q more than once", string(dup))
	}
	var unknown errUnknownKey
	if errors.As(err, &unknown) {
		return odometer.Errorf(odometer.EINVALID, "Request body has the unknown key %q; it must be %s", string(unknown), want)
	}
	return odometer.Errorf(odometer.EINVALID, "Request body must be %s", want)
}

// wireEvent is an event as a client sends it. Every field is kept raw so
// that a wrong type gets its own message rather than failing the body.
type wireEvent struct {
	EventType  json.RawMessage `json:"eventType"`
	CustomerID json.RawMessage `json:"customerId"`
	Value      json.RawMessage `json:"value"`
	Metadata   json.RawMessage `json:"metadata"`
	ID         json.RawMessage `json:"id"`
	Timestamp  json.RawMessage `json:"timestamp"`
}

// str decodes a raw JSON string. ok is false when raw is absent or null;
// err when it is something other than a string.
func str(raw json.RawMessage) (s string, ok bool, err error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", false, nil
	}
	if raw[0] != '"' {
		return "", true, errors.New("not a string")
	}
	// Fast path: no escapes. The body is already valid UTF-8 and valid JSON.
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true, nil
	}
	if loneSurrogate(raw) {
		return "", true, errLoneSurrogate
	}
	err = json.Unmarshal(raw, &s)
	return s, true, err
}

// errLoneSurrogate is a string escaping half a UTF-16 surrogate pair,
// which is not text: encoding/json would turn it into U+FFFD.
var errLoneSurrogate = errors.New("lone surrogate")

// strMessage is the message for a string field that str refused.
func strMessage(name string, err error) string {
	if err == errLoneSurrogate {
		return name + " must be valid UTF-8 without control characters"
	}
	return name + " must be a string"
}

// toEvent validates a wire event. eventType is the path's type for a
// single event, or "" to take it from the body (a batch member).
func (s *Server) toEvent(cfg *odometer.Config, we *wireEvent, eventType string, idHeader string, now time.Time) (odometer.Event, []string) {
	var errs []string
	e := odometer.Event{ReceivedAt: now, Time: now}
	if eventType == "" {
		t, ok, err := str(we.EventType)
		switch {
		case err != nil:
			errs = append(errs, strMessage("eventType", err))
		case !ok || t == "":
			errs = append(errs, "eventType is required")
		}
		eventType = t
	}
	e.EventType = eventType
	if _, known := cfg.Events[eventType]; !known && eventType != "" {
		errs = append(errs, cfg.InvalidEventType(eventType))
	}

	c, ok, err := str(we.CustomerID)
	switch {
	case err != nil:
		errs = append(errs, strMessage("customerId", err))
	case !ok || c == "":
		errs = append(errs, "customerId is required")
	default:
		if err := odometer.ValidateCustomerID(c); err != nil {
			errs = append(errs, odometer.ErrorMessage(err))
		}
	}
	e.CustomerID = c

	if v, ok := number(we.Value); ok {
		e.Value = v
	} else {
		errs = append(errs, "value must be a number")
	}

	if len(we.Metadata) > 0 && string(we.Metadata) != "null" {
		switch {
		case we.Metadata[0] != '{':
			errs = append(errs, "metadata must be an object")
		case len(we.Metadata) > odometer.MaxMetadataBytes:
			errs = append(errs, "metadata must be at most "+strconv.Itoa(odometer.MaxMetadataBytes)+" bytes")
		default:
			var buf bytes.Buffer
			buf.Grow(len(we.Metadata))
			if json.Compact(&buf, we.Metadata) == nil {
				e.Metadata = buf.Bytes()
			}
		}
	}

	id, ok, err := str(we.ID)
	switch {
	case err != nil:
		errs = append(errs, strMessage("id", err))
	case ok:
		if idHeader != "" && idHeader != id {
			errs = append(errs, "id and the Idempotency-Key header differ")
		} else if err := odometer.ValidateEventID(id); err != nil {
			errs = append(errs, odometer.ErrorMessage(err))
		}
	case idHeader != "":
		id = idHeader
		if err := odometer.ValidateEventID(id); err != nil {
			errs = append(errs, "Idempotency-Key: "+odometer.ErrorMessage(err))
		}
	}
	if id != "" {
		e.ID, e.ClientID = id, true
	} else {
		e.ID = odometer.NewID("evt_")
	}

	ts, ok, err := str(we.Timestamp)
	if err == nil && ok {
		t, perr := time.Parse(time.RFC3339Nano, ts)
		if perr != nil {
			err = perr
		} else {
			e.Time, e.TimeGiven = t.UTC().Truncate(time.Millisecond), true
		}
	}
	if err != nil {
		errs = append(errs, "timestamp must be an RFC 3339 date-time, such as 2026-01-13T10:00:00Z")
	}
	if msg := cfg.CheckTime(&e, now); msg != "" {
		errs = append(errs, msg)
	}
	return e, errs
}

// number parses a raw JSON number into a finite float64. Strings, null,
// booleans, and numbers out of range (1e400) are refused.
func number(raw json.RawMessage) (float64, bool) {
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) || math.Abs(v) > odometer.MaxValue {
		return 0, false
	}
	return v, true
}
