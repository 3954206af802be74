package odometer_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/odometer-dev/odometer"
)

// restringifyTests are JSON texts and what JSON.stringify(JSON.parse(text))
// writes for them, as Node prints it.
var restringifyTests = []struct {
	name, in, want string
}{
	{"HTML", `"<a href=\"x\">&amp;</a>"`, `"<a href=\"x\">&amp;</a>"`},
	{"HTMLEscaped", `"\u003cb\u003e\u0026"`, `"<b>&"`},
	{"LineSeparators", `"a\u2028b\u2029c"`, "\"a\u2028b\u2029c\""},
	{"EscapedBackslashThenU2028", `"\\u2028"`, `"\\u2028"`},
	{"Controls", `"\u0000\u0001\b\f\n\r\t\u001f\u007f"`, "\"\\u0000\\u0001\\b\\f\\n\\r\\t\\u001f\x7f\""},
	{"UpperHexControl", `"\u001F"`, `"\u001f"`},
	{"Solidus", `"a\/b"`, `"a/b"`},
	{"NeedlessEscape", `"\u0041\u00e9"`, `"Aé"`},
	{"SurrogatePair", `"\ud83d\ude00"`, `"😀"`},
	{"LoneHighSurrogate", `"\uD800x"`, `"\ud800x"`},
	{"LoneLowSurrogate", `"\udc00"`, `"\udc00"`},
	{"HighThenHigh", `"\ud800\ud800"`, `"\ud800\ud800"`},
	{"NegativeZero", `-0`, `0`},
	{"NegativeZeroFraction", `[-0.0,0e5,-0E-3]`, `[0,0,0]`},
	{"Fraction", `1.50`, `1.5`},
	{"Exponent", `1E3`, `1000`},
	{"Large", `1e21`, `1e+21`},
	{"BelowLarge", `123456789012345680000`, `123456789012345680000`},
	{"Small", `0.0000001`, `1e-7`},
	{"AboveSmall", `0.000001`, `0.000001`},
	{"BeyondDouble", `9007199254740993`, `9007199254740992`},
	{"Overflow", `[1e400,-1e400]`, `[null,null]`},
	{"Underflow", `1e-400`, `0`},
	{"Whitespace", " { \"a\" : [ 1 , 2 ] ,\n\t\"b\" : { } , \"c\" : [ ] } ", `{"a":[1,2],"b":{},"c":[]}`},
	{"IndexKeysFirst", `{"b":1,"10":2,"a":3,"9":4,"0":5}`, `{"0":5,"9":4,"10":2,"b":1,"a":3}`},
	{"NotIndexKeys", `{"b":1,"01":2,"-1":3,"1.5":4,"4294967295":5,"4294967294":6}`, `{"4294967294":6,"b":1,"01":2,"-1":3,"1.5":4,"4294967295":5}`},
	{"EscapedIndexKey", `{"a":1,"\u0031":2}`, `{"1":2,"a":1}`},
	{"RepeatedKey", `{"a":1,"b":2,"a":3}`, `{"a":3,"b":2}`},
	{"RepeatedIndexKey", `{"1":1,"0":2,"1":3}`, `{"0":2,"1":3}`},
	{"Nested", `{"x":{"2":[{"1":true,"z":null}],"1":false}}`, `{"x":{"1":false,"2":[{"1":true,"z":null}]}}`},
	{"Proto", `{"__proto__":1}`, `{"__proto__":1}`},
}

func TestRestringify(t *testing.T) {
	for _, tt := range restringifyTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := odometer.Restringify([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("Restringify(%s) = %s, want %s", tt.in, got, tt.want)
			}
			again, err := odometer.Restringify(got)
			if err != nil || !bytes.Equal(again, got) {
				t.Fatalf("Restringify is not a fixed point: %s, then %s (%v)", got, again, err)
			}
		})
	}

	t.Run("ErrInvalid", func(t *testing.T) {
		for _, in := range []string{``, `{`, `[1,]`, `{"a" 1}`, `"abc`, `01`, `1.`, `-`, `1e`, `tru`, `{"a":1}x`, "\"a\x01\"", `"\x"`, `"\u12"`, `{1:2}`} {
			if got, err := odometer.Restringify([]byte(in)); err == nil {
				t.Errorf("Restringify(%q) = %s, want an error", in, got)
			}
		}
	})
}

// webhookLike is shaped like the values Odometer writes.
type webhookLike struct {
	CustomerID string             `json:"customerId"`
	Events     map[string]float64 `json:"events"`
	Counts     map[string]int64   `json:"eventCounts"`
	Raw        json.RawMessage    `json:"metadata,omitempty"`
}

func TestMarshal(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		v := webhookLike{
			CustomerID: "sub_a<b>&c\u2028'\"\\é😀",
			Events:     map[string]float64{"b": 0.1, "10": math.Copysign(0, -1), "9": 1e21, "a": 1e-7},
			Counts:     map[string]int64{"b": 1, "10": 2, "9": 3, "a": 4},
		}
		got, err := odometer.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		want := "{\"customerId\":\"sub_a<b>&c\u2028'\\\"\\\\é😀\",\"events\":{\"9\":1e+21,\"10\":0,\"a\":1e-7,\"b\":0.1},\"eventCounts\":{\"9\":3,\"10\":2,\"a\":4,\"b\":1}}"
		if string(got) != want {
			t.Fatalf("Marshal:\n got %s\nwant %s", got, want)
		}
	})

	t.Run("ErrNaN", func(t *testing.T) {
		if _, err := odometer.Marshal(math.NaN()); err == nil {
			t.Fatal("Marshal(NaN) did not fail")
		}
	})
}

// TestAppendNumber_MatchesEncodingJSON holds what the rule relies on:
// encoding/json already writes a float64 as ES2015's Number::toString
// does, but for negative zero, which AppendNumber writes as 0.
func TestAppendNumber_MatchesEncodingJSON(t *testing.T) {
	for _, f := range numberSamples(20000) {
		b, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		want := string(b)
		if f == 0 {
			want = "0"
		}
		if got := string(odometer.AppendNumber(nil, f)); got != want {
			t.Fatalf("AppendNumber(%v) = %s, encoding/json writes %s", f, got, want)
		}
	}
}

// numberSamples returns the edge values of the issue and n doubles spread
// over every exponent.
func numberSamples(n int) []float64 {
	fs := []float64{0, math.Copysign(0, -1), 0.1, 0.2, 0.3, 0.1 + 0.2, 1e21, 1e-7, 1e-6, 123456789012345680000,
		1e20, 9.999999999999999e20, 5e-324, math.MaxFloat64, math.SmallestNonzeroFloat64, 1 << 53, 1<<53 + 2,
		-1.5, 100, 1e300, 1.7976931348623157e308, 4.35, 0.000001234, 1.2345678901234567e-7, 2.5e-7}
	r := rand.New(rand.NewPCG(12, 12))
	for len(fs) < n {
		f := math.Float64frombits(r.Uint64())
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		fs = append(fs, f)
		if len(fs)%4 == 0 { // decimal-looking values too
			fs = append(fs, float64(r.IntN(1_000_000))/math.Pow10(r.IntN(12)))
		}
	}
	return fs
}

// node runs script with Node, one input per line (base64 of UTF-8), and
// returns its output lines, decoded the same way. The script reads
// `input` (a string) and returns a string. It skips the test when Node is
// missing, unless CI is set.
func node(t *testing.T, script string, inputs [][]byte) [][]byte {
	t.Helper()
	path, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("Node.js is not installed: the comparison with JavaScript is skipped; with CI set it fails instead")
		}
		t.Fatal("CI is set and node is not on the PATH")
	}
	prog := `const rl = require("readline").createInterface({input: process.stdin});
const f = (input) => {` + script + `};
const out = [];
rl.on("line", (l) => out.push(Buffer.from(f(Buffer.from(l, "base64").toString("utf8")), "utf8").toString("base64")));
rl.on("close", () => process.stdout.write(out.join("\n") + "\n"));`
	var in bytes.Buffer
	for _, b := range inputs {
		in.WriteString(base64.StdEncoding.EncodeToString(b))
		in.WriteByte('\n')
	}
	cmd := exec.Command(path, "-e", prog)
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.Bytes())
	}
	var res [][]byte
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		b, err := base64.StdEncoding.DecodeString(sc.Text())
		if err != nil {
			t.Fatal(err)
		}
		res = append(res, b)
	}
	if len(res) != len(inputs) {
		t.Fatalf("node answered %d lines for %d inputs", len(res), len(inputs))
	}
	return res
}

// TestRestringify_Node checks Restringify against JavaScript itself, on the
// table's texts, on numbers, and on random text: whatever JSON comes in,
// Odometer writes what JSON.stringify(JSON.parse(text)) writes.
func TestRestringify_Node(t *testing.T) {
	var inputs [][]byte
	for _, tt := range restringifyTests {
		inputs = append(inputs, []byte(tt.in))
	}
	for _, f := range numberSamples(5000) {
		inputs = append(inputs, []byte(strconv.FormatFloat(f, 'g', -1, 64)))
	}
	r := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"<", ">", "&", "'", `\"`, `\\`, "é", "😀", "\u2028", "\u2029", `\u2028`, `\\u2028`, `\u0000`, `\u001F`,
		`\t`, `\/`, `\ud83d\ude00`, `\ud800`, `\udfff`, "a", "7", "\x7f", "\u00a0", "\ufeff"}
	keys := []string{"a", "b", "0", "1", "10", "9", "01", "-1", "4294967294", "4294967295", `\u0032`, "__proto__", "a"}
	for i := 0; i < 500; i++ {
		var b strings.Builder
		b.WriteString("{")
		n := r.IntN(6)
		for j := 0; j < n; j++ {
			if j > 0 {
				b.WriteString(",")
			}
			b.WriteString(`"` + keys[r.IntN(len(keys))] + `":"`)
			for k := r.IntN(8); k > 0; k-- {
				b.WriteString(pieces[r.IntN(len(pieces))])
			}
			b.WriteString(`"`)
		}
		b.WriteString("}")
		inputs = append(inputs, []byte(b.String()))
	}
	for i := 0; i < 200; i++ {
		v := webhookLike{CustomerID: "c", Events: map[string]float64{}, Counts: map[string]int64{}}
		for j := r.IntN(5); j > 0; j-- {
			k := keys[r.IntN(len(keys))]
			v.Events[k] = numberSamples(30)[r.IntN(30)]
			v.Counts[k] = r.Int64()
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, b)
	}
	want := node(t, "return JSON.stringify(JSON.parse(input));", inputs)
	for i, in := range inputs {
		got, err := odometer.Restringify(in)
		if err != nil {
			t.Fatalf("Restringify(%s): %v", in, err)
		}
		if !bytes.Equal(got, want[i]) {
			t.Fatalf("Restringify(%s)\n   = %s\nnode: %s", in, got, want[i])
		}
	}
	t.Logf("%d texts written as Node writes them", len(inputs))
}

// TestAppendNumber_Node: AppendNumber, and so encoding/json, prints every
// double as JavaScript's String(number) does.
func TestAppendNumber_Node(t *testing.T) {
	fs := numberSamples(20000)
	inputs := make([][]byte, len(fs))
	for i, f := range fs {
		inputs[i] = strconv.AppendUint(nil, math.Float64bits(f), 10)
	}
	want := node(t, "const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(input)); return JSON.stringify(b.readDoubleBE(0));", inputs)
	for i, f := range fs {
		if got := odometer.AppendNumber(nil, f); !bytes.Equal(got, want[i]) {
			t.Fatalf("AppendNumber(%v) = %s, JavaScript writes %s", f, got, want[i])
		}
	}
}

func FuzzRestringify(f *testing.F) {
	for _, tt := range restringifyTests {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := odometer.Restringify(in)
		if valid := json.Valid(in); valid != (err == nil) {
			t.Fatalf("json.Valid(%q) = %v, but Restringify: %q, %v", in, valid, got, err)
		}
		if err != nil {
			return
		}
		if !json.Valid(got) {
			t.Fatalf("Restringify(%q) = %q, not JSON", in, got)
		}
		again, err := odometer.Restringify(got)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("not a fixed point: %q, then %q", got, again)
		}
	})
}
