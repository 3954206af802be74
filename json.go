package odometer

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
)

// JSON as JavaScript writes it. Webhook receivers written for the template
// verify the signature over JSON.stringify(JSON.parse(body)), the body read
// and written again by JavaScript, so every body Odometer sends must be
// written exactly as JSON.stringify would write it. encoding/json differs
// in five ways, each undone here:
//
//   - it escapes <, > and & as \u003c, \u003e, \u0026 (SetEscapeHTML(false)
//     turns that off), and U+2028 and U+2029 always;
//   - it writes negative zero as -0, which JavaScript writes as 0;
//   - it sorts a map's keys as strings, but a JavaScript object lists the
//     keys that are array indices ("0", "7", "42") first, in numeric
//     order, and the others in the order they were written;
//   - it passes a json.RawMessage through as given: a number such as 1.50
//     or 1E3, a string with needless escapes ("\u0041"), a key given twice;
//   - it writes int64 exactly, where JavaScript reads a double.
//
// Marshal is the one place that applies this rule: the HTTP API and the
// webhooks write every body through it.

// Marshal returns v as JSON text that JSON.stringify(JSON.parse(text))
// gives back byte for byte: no whitespace, no HTML escaping, keys in the
// order JavaScript keeps them, numbers as ES2015 prints them.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return Restringify(buf.Bytes())
}

// Restringify returns the JSON text b as JSON.stringify(JSON.parse(b))
// writes it. It returns an error, and nothing, if b is not JSON.
func Restringify(b []byte) ([]byte, error) {
	c := restringifier{src: b, dst: make([]byte, 0, len(b))}
	if err := c.value(0); err != nil {
		return nil, err
	}
	if c.skipSpace(); c.pos != len(c.src) {
		return nil, errJSONTrailing
	}
	return c.dst, nil
}

var (
	errJSONSyntax   = errors.New("restringify: invalid JSON")
	errJSONTrailing = errors.New("restringify: text after the JSON value")
	errJSONDepth    = errors.New("restringify: JSON nested too deeply")
)

// maxJSONDepth is encoding/json's own limit on nesting.
const maxJSONDepth = 10000

type restringifier struct {
	src []byte
	pos int
	dst []byte
	// members is a stack of the members of the objects being written,
	// shared by every level so that an object costs no allocation.
	members []member
}

// member is one member of an object, as offsets into dst from the
// object's first member.
type member struct {
	key, end int // the key is dst[key:colon], its value runs to end
	colon    int
	index    uint32 // the key's value when it is an array index
	isIndex  bool
}

func (c *restringifier) skipSpace() {
	for c.pos < len(c.src) {
		switch c.src[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

func (c *restringifier) value(depth int) error {
	if depth > maxJSONDepth {
		return errJSONDepth
	}
	c.skipSpace()
	if c.pos >= len(c.src) {
		return errJSONSyntax
	}
	switch ch := c.src[c.pos]; {
	case ch == '{':
		return c.object(depth)
	case ch == '[':
		return c.array(depth)
	case ch == '"':
		return c.string()
	case ch == 't':
		return c.literal("true")
	case ch == 'f':
		return c.literal("false")
	case ch == 'n':
		return c.literal("null")
	case ch == '-' || ch >= '0' && ch <= '9':
		return c.number()
	}
	return errJSONSyntax
}

func (c *restringifier) literal(s string) error {
	if !bytes.HasPrefix(c.src[c.pos:], []byte(s)) {
		return errJSONSyntax
	}
	c.pos += len(s)
	c.dst = append(c.dst, s...)
	return nil
}

func (c *restringifier) array(depth int) error {
	c.pos++ // [
	c.dst = append(c.dst, '[')
	c.skipSpace()
	if c.pos < len(c.src) && c.src[c.pos] == ']' {
		c.pos++
		c.dst = append(c.dst, ']')
		return nil
	}
	for {
		if err := c.value(depth + 1); err != nil {
			return err
		}
		c.skipSpace()
		if c.pos >= len(c.src) {
			return errJSONSyntax
		}
		switch c.src[c.pos] {
		case ',':
			c.pos++
			c.dst = append(c.dst, ',')
		case ']':
			c.pos++
			c.dst = append(c.dst, ']')
			return nil
		default:
			return errJSONSyntax
		}
	}
}

func (c *restringifier) object(depth int) error {
	c.pos++ // {
	c.dst = append(c.dst, '{')
	start := len(c.dst)
	base := len(c.members)
	defer func() { c.members = c.members[:base] }()
	c.skipSpace()
	if c.pos < len(c.src) && c.src[c.pos] == '}' {
		c.pos++
		c.dst = append(c.dst, '}')
		return nil
	}
	// inOrder stays true while the keys are as JavaScript would list them:
	// array indices first and ascending, no key twice.
	inOrder := true
	sawName := false
	var last uint32
	for {
		c.skipSpace()
		if c.pos >= len(c.src) || c.src[c.pos] != '"' {
			return errJSONSyntax
		}
		m := member{key: len(c.dst) - start}
		if err := c.string(); err != nil {
			return err
		}
		m.colon = len(c.dst) - start
		m.index, m.isIndex = arrayIndex(c.dst[start+m.key+1 : start+m.colon-1])
		c.skipSpace()
		if c.pos >= len(c.src) || c.src[c.pos] != ':' {
			return errJSONSyntax
		}
		c.pos++
		c.dst = append(c.dst, ':')
		if err := c.value(depth + 1); err != nil {
			return err
		}
		m.end = len(c.dst) - start
		switch {
		case !inOrder:
		case m.isIndex:
			if sawName || (len(c.members) > base && m.index <= last) {
				inOrder = false
			}
			last = m.index
		default:
			sawName = true
			if c.repeated(start, base, m) {
				inOrder = false
			}
		}
		c.members = append(c.members, m)
		c.skipSpace()
		if c.pos >= len(c.src) {
			return errJSONSyntax
		}
		switch c.src[c.pos] {
		case ',':
			c.pos++
			c.dst = append(c.dst, ',')
			continue
		case '}':
			c.pos++
		default:
			return errJSONSyntax
		}
		break
	}
	if !inOrder {
		c.reorder(start, c.members[base:])
	}
	c.dst = append(c.dst, '}')
	return nil
}

// repeated reports whether m's key, not an array index, is also the key of
// an earlier member of the object.
func (c *restringifier) repeated(start, base int, m member) bool {
	key := c.dst[start+m.key : start+m.colon]
	for _, o := range c.members[base:] {
		if !o.isIndex && bytes.Equal(c.dst[start+o.key:start+o.colon], key) {
			return true
		}
	}
	return false
}

// reorder rewrites the members written from dst[start:] as JavaScript
// lists an object's keys: a key given twice keeps its first place and its
// last value; array indices come first, in numeric order; the other keys
// follow in the order they were first written.
func (c *restringifier) reorder(start int, ms []member) {
	text := bytes.Clone(c.dst[start:])
	key := func(m member) []byte { return text[m.key:m.colon] }
	var order []member
	for _, m := range ms {
		dup := false
		for i, o := range order {
			if bytes.Equal(key(o), key(m)) {
				order[i].colon, order[i].end = m.colon, m.end
				order[i].key = m.key
				dup = true
				break
			}
		}
		if !dup {
			order = append(order, m)
		}
	}
	// A stable insertion sort: indices first, by value; names keep their order.
	less := func(a, b member) bool { return a.isIndex && (!b.isIndex || a.index < b.index) }
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && less(order[j], order[j-1]); j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	c.dst = c.dst[:start]
	for i, m := range order {
		if i > 0 {
			c.dst = append(c.dst, ',')
		}
		c.dst = append(c.dst, text[m.key:m.end]...)
	}
}

// arrayIndex reports whether the key (the text of a JSON string as
// written, without its quotes) is an array index, the keys JavaScript
// lists first: the canonical decimal form of an integer from 0 to 2^32-2.
func arrayIndex(key []byte) (uint32, bool) {
	if len(key) == 0 || len(key) > 10 || (key[0] == '0' && len(key) > 1) {
		return 0, false
	}
	var n uint64
	for _, d := range key {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + uint64(d-'0')
	}
	if n > math.MaxUint32-1 {
		return 0, false
	}
	return uint32(n), true
}

// string copies the JSON string at src[pos] as JSON.stringify writes a
// string: every character as itself, but for ", \ and the control
// characters below U+0020 (as \b \t \n \f \r, or \u00XX), and a lone
// surrogate as \uXXXX, all in lowercase hex.
func (c *restringifier) string() error {
	c.pos++ // "
	c.dst = append(c.dst, '"')
	for {
		// Copy the run of bytes that need nothing.
		i := c.pos
		for i < len(c.src) {
			b := c.src[i]
			if b == '"' || b == '\\' || b < 0x20 || b >= utf8.RuneSelf {
				break
			}
			i++
		}
		c.dst = append(c.dst, c.src[c.pos:i]...)
		c.pos = i
		if c.pos >= len(c.src) {
			return errJSONSyntax
		}
		switch b := c.src[c.pos]; {
		case b == '"':
			c.pos++
			c.dst = append(c.dst, '"')
			return nil
		case b < 0x20:
			return errJSONSyntax
		case b >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(c.src[c.pos:])
			if r == utf8.RuneError && n == 1 {
				// Not UTF-8: a decoder makes it U+FFFD.
				c.dst = utf8.AppendRune(c.dst, utf8.RuneError)
			} else {
				c.dst = append(c.dst, c.src[c.pos:c.pos+n]...)
			}
			c.pos += n
		default: // a backslash
			if err := c.escape(); err != nil {
				return err
			}
		}
	}
}

// escape reads the escape sequence at src[pos] and writes its character.
func (c *restringifier) escape() error {
	if c.pos+1 >= len(c.src) {
		return errJSONSyntax
	}
	e := c.src[c.pos+1]
	c.pos += 2
	switch e {
	case '"', '\\', 'b', 'f', 'n', 'r', 't':
		c.dst = append(c.dst, '\\', e)
	case '/':
		c.dst = append(c.dst, '/')
	case 'u':
		r, ok := hex4(c.src[c.pos:])
		if !ok {
			return errJSONSyntax
		}
		c.pos += 4
		if r >= 0xD800 && r < 0xDC00 && c.pos+1 < len(c.src) && c.src[c.pos] == '\\' && c.src[c.pos+1] == 'u' {
			if lo, ok := hex4(c.src[c.pos+2:]); ok && lo >= 0xDC00 && lo < 0xE000 {
				c.pos += 6
				c.dst = utf8.AppendRune(c.dst, 0x10000+(r-0xD800)<<10+(lo-0xDC00))
				return nil
			}
		}
		c.writeRune(r)
	default:
		return errJSONSyntax
	}
	return nil
}

// writeRune writes one UTF-16 code unit (or a whole character) as
// JSON.stringify does.
func (c *restringifier) writeRune(r rune) {
	const hex = "0123456789abcdef"
	switch {
	case r == '"' || r == '\\':
		c.dst = append(c.dst, '\\', byte(r))
	case r == '\b':
		c.dst = append(c.dst, '\\', 'b')
	case r == '\f':
		c.dst = append(c.dst, '\\', 'f')
	case r == '\n':
		c.dst = append(c.dst, '\\', 'n')
	case r == '\r':
		c.dst = append(c.dst, '\\', 'r')
	case r == '\t':
		c.dst = append(c.dst, '\\', 't')
	case r < 0x20 || (r >= 0xD800 && r < 0xE000):
		c.dst = append(c.dst, '\\', 'u', hex[r>>12&0xF], hex[r>>8&0xF], hex[r>>4&0xF], hex[r&0xF])
	default:
		c.dst = utf8.AppendRune(c.dst, r)
	}
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, h := range b[:4] {
		switch {
		case h >= '0' && h <= '9':
			h -= '0'
		case h >= 'a' && h <= 'f':
			h -= 'a' - 10
		case h >= 'A' && h <= 'F':
			h -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(h)
	}
	return r, true
}

// number copies the JSON number at src[pos] as JavaScript prints the
// double it reads: see AppendNumber.
func (c *restringifier) number() error {
	i := c.pos
	for i < len(c.src) {
		b := c.src[i]
		if (b < '0' || b > '9') && b != '-' && b != '+' && b != '.' && b != 'e' && b != 'E' {
			break
		}
		i++
	}
	tok := c.src[c.pos:i]
	c.pos = i
	// Most numbers are small integers, already as JavaScript prints them.
	if digits := bytes.TrimPrefix(tok, []byte("-")); len(digits) > 0 && len(digits) <= 15 &&
		(digits[0] != '0' || len(tok) == 1) && allDigits(digits) {
		c.dst = append(c.dst, tok...)
		return nil
	}
	if !validNumber(tok) {
		return errJSONSyntax
	}
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return errJSONSyntax
	}
	c.dst = AppendNumber(c.dst, f)
	return nil
}

// allDigits reports whether b is made of ASCII digits only.
func allDigits[T string | []byte](b T) bool {
	for i := 0; i < len(b); i++ {
		if b[i] < '0' || b[i] > '9' {
			return false
		}
	}
	return true
}

// validNumber reports whether tok is a number as JSON writes one.
func validNumber(tok []byte) bool {
	i := 0
	if i < len(tok) && tok[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(tok) && tok[i] >= '0' && tok[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(tok) && tok[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(tok) && tok[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(tok) && (tok[i] == 'e' || tok[i] == 'E') {
		i++
		if i < len(tok) && (tok[i] == '+' || tok[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(tok)
}

// AppendNumber appends f as JavaScript's Number.prototype.toString (and
// so JSON.stringify) writes it: the shortest decimal that reads back as f,
// in plain notation from 1e-7 up to 1e21 and in exponent notation
// (1e-7, 1.5e+21) outside; negative zero as 0; NaN and the infinities,
// which JSON cannot hold, as null.
func AppendNumber(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	if f == 0 {
		return append(dst, '0')
	}
	format := byte('f')
	if abs := math.Abs(f); abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// strconv writes at least two exponent digits (1e-07); JavaScript one.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}
