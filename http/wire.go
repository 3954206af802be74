package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"unicode/utf16"
)

// The ingest decoder. encoding/json would accept what the template's
// clients never meant: keys in any case ("CUSTOMERID"), a key given twice
// (the last wins), and lone UTF-16 surrogates turned silently into U+FFFD.
// These functions walk JSON that json.Valid has accepted and refuse those,
// without reflection on the hot path.

// errDuplicateKey is a member given twice.
type errDuplicateKey string

func (e errDuplicateKey) Error() string { return "duplicate key " + strconv.Quote(string(e)) }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	default: // number, true, false, null
		for i < len(b) && !isSpace(b[i]) && b[i] != ',' && b[i] != '}' && b[i] != ']' {
			i++
		}
		return i
	}
}

// eachMember calls fn with the raw key (with its quotes) and raw value of
// each member of the object b, which must be valid JSON.
func eachMember(b []byte, fn func(key, val []byte) error) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errNotObject
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for i < len(b) {
		k := skipString(b, i)
		key := b[i:k]
		i = skipSpace(b, k)
		i = skipSpace(b, i+1) // ':'
		v := skipValue(b, i)
		if err := fn(key, b[i:v]); err != nil {
			return err
		}
		i = skipSpace(b, v)
		if i >= len(b) || b[i] == '}' {
			return nil
		}
		i = skipSpace(b, i+1) // ','
	}
	return nil
}

// eachElement calls fn with each raw element of the array b, which must be
// valid JSON.
func eachElement(b []byte, fn func(elem []byte) error) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return errNotArray
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return nil
	}
	for i < len(b) {
		v := skipValue(b, i)
		if err := fn(b[i:v]); err != nil {
			return err
		}
		i = skipSpace(b, v)
		if i >= len(b) || b[i] == ']' {
			return nil
		}
		i = skipSpace(b, i+1)
	}
	return nil
}

var (
	errNotObject = errors.New("not a JSON object")
	errNotArray  = errors.New("not a JSON array")
)

// decodeWire reads an event object. Keys match exactly; a known key given
// twice is refused; unknown keys are ignored, as the template did.
func decodeWire(b []byte, we *wireEvent) error {
	return eachMember(b, func(key, val []byte) error {
		name := key[1 : len(key)-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			// An escaped key ("\u0069d") is still that key.
			var k string
			if json.Unmarshal(key, &k) != nil {
				return nil
			}
			name = []byte(k)
		}
		var dst *json.RawMessage
		switch string(name) {
		case "eventType":
			dst = &we.EventType
		case "customerId":
			dst = &we.CustomerID
		case "value":
			dst = &we.Value
		case "metadata":
			dst = &we.Metadata
		case "id":
			dst = &we.ID
		case "timestamp":
			dst = &we.Timestamp
		default:
			return nil
		}
		if *dst != nil {
			return errDuplicateKey(name)
		}
		*dst = val
		return nil
	})
}

// loneSurrogate reports whether the JSON string raw escapes half of a
// UTF-16 surrogate pair without the other half.
func loneSurrogate(raw []byte) bool {
	for i := 0; i+5 < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if raw[i+1] != 'u' {
			i++ // skip the escaped character
			continue
		}
		r, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
		if err != nil {
			return true
		}
		if utf16.IsSurrogate(rune(r)) {
			if r >= 0xDC00 { // a low half first
				return true
			}
			if i+11 >= len(raw) || raw[i+6] != '\\' || raw[i+7] != 'u' {
				return true
			}
			r2, err := strconv.ParseUint(string(raw[i+8:i+12]), 16, 16)
			if err != nil || r2 < 0xDC00 || r2 > 0xDFFF {
				return true
			}
			i += 6
		}
		i += 5
	}
	return false
}

// decodeBody reads a whole body holding one event.
func decodeBody(body []byte, we *wireEvent) error {
	if !json.Valid(body) {
		return syntaxError(body)
	}
	if string(bytes.TrimSpace(body)) == "null" {
		return nil // as the template: no fields, so customerId is required
	}
	return decodeWire(body, we)
}

// syntaxError returns encoding/json's account of what is wrong with b,
// which json.Valid refused: it names the byte.
func syntaxError(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	return errors.New("invalid JSON")
}

// wireMessage is the client's message for an event decodeWire refused.
func wireMessage(err error) string {
	var dup errDuplicateKey
	if errors.As(err, &dup) {
		return "event has the key " + strconv.Quote(string(dup)) + " more than once"
	}
	return "event must be a JSON object"
}

// strictObject decodes the JSON object body into v (a struct with json
// tags) for admin bodies: only the keys named in fields, each at most once
// and exactly as written (encoding/json alone would take "Scope" for
// "scope", and the second of two "scope"s).
func strictObject(body []byte, v any, fields ...string) error {
	if !json.Valid(body) {
		return syntaxError(body)
	}
	seen := map[string]bool{}
	err := eachMember(body, func(key, _ []byte) error {
		var k string
		if json.Unmarshal(key, &k) != nil {
			return errNotObject
		}
		if !slices.Contains(fields, k) {
			return errUnknownKey(k)
		}
		if seen[k] {
			return errDuplicateKey(k)
		}
		seen[k] = true
		return nil
	})
	if err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

// errUnknownKey is a key an admin body does not take.
type errUnknownKey string

func (e errUnknownKey) Error() string { return "unknown key " + strconv.Quote(string(e)) }
