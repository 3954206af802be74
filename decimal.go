package odometer

import (
	"encoding/binary"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Decimal is an exact decimal number: a coefficient times a power of ten.
// Sums of Decimals are exact, and keep the smallest exponent of their terms,
// so a sum's representation depends only on the multiset of its terms, never
// on their order or on how they were split into runs.
//
// The coefficient lives in c while it fits an int64 (the common case, with
// no allocation) and in b once it does not.
type Decimal struct {
	c int64
	b *big.Int // non-nil: the coefficient, and c is unused
	e int32
}

// DecimalOf returns the shortest decimal that reads back as v: 0.1 is
// 1×10⁻¹. Integers below 2⁵³ in magnitude keep exponent 0. Infinities and
// NaN, refused at the door, read as 0.
func DecimalOf(v float64) Decimal {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return Decimal{}
	}
	if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		return Decimal{c: int64(v)}
	}
	// Below a million, with up to 6 decimals, the first scale at which v
	// reads back is its shortest decimal: the spacing of decimals there is
	// far wider than that of doubles, so no other decimal of that length
	// reads back as v. This spares formatting the common prices and
	// measurements.
	if math.Abs(v) < 1e6 {
		p := 1.0
		for k := int32(1); k <= 6; k++ {
			p *= 10
			if m := math.Round(v * p); m/p == v {
				return Decimal{c: int64(m), e: -k}
			}
		}
	}
	return decimalOfSlow(v)
}

// decimalOfSlow is DecimalOf through the shortest formatting of v.
func decimalOfSlow(v float64) Decimal {
	var buf [32]byte
	d, _ := parseDecimal(string(strconv.AppendFloat(buf[:0], v, 'e', -1, 64)))
	return d
}

// ParseDecimal reads a decimal number in JSON's syntax (optionally with a
// leading '+'), exactly: every digit is kept. ok is false for anything
// else, and for a number beyond ±MaxValue or of more than 1,000 digits.
func ParseDecimal(s string) (d Decimal, ok bool) {
	if len(s) == 0 || len(s) > 1000 {
		return Decimal{}, false
	}
	d, ok = parseDecimal(s)
	if !ok || !d.IsZero() && (d.magnitude() > 301 || d.magnitude() < -MaxDecimalScale) {
		return Decimal{}, false
	}
	if f := d.Float64(); math.IsInf(f, 0) || math.Abs(f) > MaxValue {
		return Decimal{}, false
	}
	return d, true
}

// MaxDecimalScale bounds how small a number read from metadata may be:
// 1e-400 is far below the smallest double (5e-324), and a bound keeps a
// crafted exponent from making a coefficient of millions of digits.
const MaxDecimalScale = 400

// magnitude is the exponent of d's leading digit: 2 for 123, -1 for 0.5.
func (d Decimal) magnitude() int64 {
	digits := len(d.bigCoef().String())
	if d.bigCoef().Sign() < 0 {
		digits--
	}
	return int64(d.e) + int64(digits) - 1
}

func parseDecimal(s string) (Decimal, bool) {
	neg := false
	switch {
	case strings.HasPrefix(s, "-"):
		neg, s = true, s[1:]
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	mant, exp := s, int64(0)
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		x, err := strconv.ParseInt(s[i+1:], 10, 32)
		if err != nil || s[i+1:] == "" {
			return Decimal{}, false
		}
		exp = x
	}
	intPart, frac, hasDot := strings.Cut(mant, ".")
	if intPart == "" || (hasDot && frac == "") || !allDigits(intPart) || !allDigits(frac) {
		return Decimal{}, false
	}
	digits := strings.TrimLeft(intPart+frac, "0")
	exp -= int64(len(frac))
	if digits == "" {
		return Decimal{}, true
	}
	if exp < math.MinInt32/2 || exp > math.MaxInt32/2 {
		return Decimal{}, false
	}
	var d Decimal
	if len(digits) <= 18 {
		c, _ := strconv.ParseInt(digits, 10, 64)
		if neg {
			c = -c
		}
		d = Decimal{c: c, e: int32(exp)}
	} else {
		b, _ := new(big.Int).SetString(digits, 10)
		if neg {
			b.Neg(b)
		}
		d = small(b, int32(exp))
	}
	return d, true
}

var bigTen = big.NewInt(10)

// pow10 returns 10^n as an int64 when it fits.
func pow10(n int32) (int64, bool) {
	if n < 0 || n > 18 {
		return 0, false
	}
	p := int64(1)
	for ; n > 0; n-- {
		p *= 10
	}
	return p, true
}

func (d Decimal) bigCoef() *big.Int {
	if d.b != nil {
		return d.b
	}
	return big.NewInt(d.c)
}

// IsZero reports whether d is 0.
func (d Decimal) IsZero() bool {
	if d.b != nil {
		return d.b.Sign() == 0
	}
	return d.c == 0
}

// Add returns d + o, exactly.
func (d Decimal) Add(o Decimal) Decimal {
	if o.IsZero() && d.IsZero() {
		return Decimal{e: min(d.e, o.e)}
	}
	// Align both on the smaller exponent.
	if d.e < o.e {
		d, o = o, d
	}
	shift := d.e - o.e // d's coefficient is multiplied by 10^shift
	if d.b == nil && o.b == nil {
		if p, ok := pow10(shift); ok {
			if m, ok := mulInt64(d.c, p); ok {
				if s, ok := addInt64(m, o.c); ok {
					return Decimal{c: s, e: o.e}
				}
			}
		}
	}
	x := new(big.Int).Mul(d.bigCoef(), new(big.Int).Exp(bigTen, big.NewInt(int64(shift)), nil))
	x.Add(x, o.bigCoef())
	return small(x, o.e)
}

func mulInt64(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	p := a * b
	if p/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
		return 0, false
	}
	return p, true
}

func addInt64(a, b int64) (int64, bool) {
	s := a + b
	if (a > 0 && b > 0 && s < 0) || (a < 0 && b < 0 && s >= 0) {
		return 0, false
	}
	return s, true
}

// small returns x×10^e, moving the coefficient back to an int64 when it fits.
func small(x *big.Int, e int32) Decimal {
	if x.IsInt64() {
		return Decimal{c: x.Int64(), e: e}
	}
	return Decimal{b: x, e: e}
}

// MulInt returns d × n, exactly.
func (d Decimal) MulInt(n int64) Decimal {
	if d.b == nil {
		if p, ok := mulInt64(d.c, n); ok {
			return Decimal{c: p, e: d.e}
		}
	}
	return small(new(big.Int).Mul(d.bigCoef(), big.NewInt(n)), d.e)
}

// Rat returns d as an exact rational.
func (d Decimal) Rat() *big.Rat {
	r := new(big.Rat).SetInt(d.bigCoef())
	if d.e > 0 {
		r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(bigTen, big.NewInt(int64(d.e)), nil)))
	} else if d.e < 0 {
		r.Quo(r, new(big.Rat).SetInt(new(big.Int).Exp(bigTen, big.NewInt(int64(-d.e)), nil)))
	}
	return r
}

// Float64 returns the double nearest to d (ties to even); beyond the range
// of float64 it is ±math.MaxFloat64.
func (d Decimal) Float64() float64 {
	// A coefficient below 2^53 and a power of ten up to 10^22 are both
	// exact doubles, and IEEE division and multiplication round their
	// exact result once: the nearest double, with no big numbers.
	if d.b == nil && d.c > -1<<53 && d.c < 1<<53 && d.e >= -22 && d.e <= 22 {
		switch {
		case d.e == 0:
			return float64(d.c)
		case d.e < 0:
			return float64(d.c) / float64pow10[-d.e]
		default:
			return float64(d.c) * float64pow10[d.e]
		}
	}
	f, _ := d.Rat().Float64()
	return clampFinite(f)
}

// float64pow10 holds the powers of ten that are exact doubles.
var float64pow10 = [23]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// Quo returns the double nearest to d/n, computed exactly.
func (d Decimal) Quo(n int64) float64 {
	if n == 0 {
		return 0
	}
	// c / (n × 10^-e), both exact doubles: one correctly rounded division.
	if d.b == nil && d.c > -1<<53 && d.c < 1<<53 && d.e <= 0 && d.e >= -22 && n > 0 && n < 1<<53 {
		if den := float64(n) * float64pow10[-d.e]; den < 1<<53 {
			return float64(d.c) / den
		}
	}
	r := d.Rat()
	r.Quo(r, new(big.Rat).SetInt64(n))
	f, _ := r.Float64()
	return clampFinite(f)
}

func clampFinite(f float64) float64 {
	if math.IsInf(f, 0) {
		return math.Copysign(math.MaxFloat64, f)
	}
	return f
}

// String writes d exactly, in scientific notation: "15e-2".
func (d Decimal) String() string {
	return d.bigCoef().String() + "e" + strconv.Itoa(int(d.e))
}

// maxStoredScale bounds the exponent of a stored decimal: what ParseDecimal
// and DecimalOf make, and their sums, stay well inside it, and a corrupt
// state must not make a number of millions of digits.
const maxStoredScale = 4 * MaxDecimalScale

// appendDecimal encodes d: its exponent, then its coefficient's sign and
// magnitude (little-endian bytes) or, for an int64, a zigzag varint.
func appendDecimal(b []byte, d Decimal) []byte {
	b = binary.AppendVarint(b, int64(d.e))
	if d.b == nil {
		b = append(b, 0)
		return binary.AppendVarint(b, d.c)
	}
	mag := d.b.Bytes()
	if d.b.Sign() < 0 {
		b = append(b, 2)
	} else {
		b = append(b, 1)
	}
	b = binary.AppendUvarint(b, uint64(len(mag)))
	return append(b, mag...)
}

// decodeDecimal reads what appendDecimal wrote.
func decodeDecimal(r *reader) Decimal {
	e := r.varint()
	if e < -maxStoredScale || e > maxStoredScale {
		r.fail()
		return Decimal{}
	}
	switch r.byte() {
	case 0:
		return Decimal{c: r.varint(), e: int32(e)}
	case 1, 2:
		neg := r.last == 2
		n := r.uvarint()
		mag := r.bytes(n)
		x := new(big.Int).SetBytes(mag)
		if neg {
			x.Neg(x)
		}
		return small(x, int32(e))
	}
	r.fail()
	return Decimal{}
}
