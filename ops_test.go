package odometer_test

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/odometer-dev/odometer"
)

func readHexLines(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, l := range strings.Fields(string(b)) {
		x, err := hex.DecodeString(l)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

// opsConfig has a meter of every op, and a grouped one.
var opsConfig = mustConfig(`{
  "events": {"e": {"op": "sum"}},
  "meters": {
    "grouped": {"eventType": "e", "op": "p95", "value": "$.v", "groupBy": ["g"]},
    "groupedUnique": {"eventType": "e", "op": "unique", "value": "$.u", "groupBy": ["g", "h"]}
  }
}`)

func mustConfig(s string) *odometer.Config {
	c, err := odometer.ParseConfig("test", []byte(s))
	if err != nil {
		panic(err)
	}
	return c
}

// hardState returns a state of a random kind with random samples.
func hardState(rng *rand.Rand) odometer.State {
	var s odometer.State
	group := false
	switch rng.IntN(5) {
	case 0:
		s = odometer.NewState(odometer.OpUnique)
	case 1:
		s = odometer.NewState(odometer.OpP99)
	case 2:
		s, group = opsConfig.Meter("grouped").NewState(), true
	case 3:
		s, group = opsConfig.Meter("groupedUnique").NewState(), true
	default:
		s = odometer.NewState(odometer.OpSum)
	}
	for i := 1 + rng.IntN(40); i > 0; i-- {
		x := num(hardValue(rng), rng.Int64N(1<<42)-1<<41, rng.Int64N(1<<40))
		x.Text = strconv.Quote(strconv.Itoa(rng.IntN(20)))
		if group {
			x.Group = `["` + strconv.Itoa(rng.IntN(4)) + `"]`
		}
		s.Add(x)
	}
	return s
}

func TestEncodeStates(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	t.Run("OK", func(t *testing.T) {
		for round := 0; round < 300; round++ {
			states := map[string]odometer.State{}
			for i := rng.IntN(6); i > 0; i-- {
				states[string(rune('a'+rng.IntN(26)))+".calls"] = hardState(rng)
			}
			if round == 0 {
				states["ünïcode/ty pe"] = hardState(rng)
			}
			b := odometer.EncodeStates(states)
			got, err := odometer.DecodeStates(b)
			if err != nil {
				t.Fatalf("round %d: decode: %v", round, err)
			}
			if len(got) != len(states) {
				t.Fatalf("round %d: decoded %d states, want %d", round, len(got), len(states))
			}
			for name, s := range states {
				if g := got[name]; g == nil || !bytes.Equal(odometer.AppendState(nil, g), odometer.AppendState(nil, s)) {
					t.Fatalf("round %d: state %q differs after a round trip", round, name)
				}
			}
			if again := odometer.EncodeStates(got); !bytes.Equal(again, b) {
				t.Fatalf("round %d: re-encoding differs", round)
			}
		}
	})
	t.Run("Empty", func(t *testing.T) {
		got, err := odometer.DecodeStates(odometer.EncodeStates(nil))
		if err != nil || len(got) != 0 {
			t.Fatalf("got %v, %v; want no states", got, err)
		}
	})
	t.Run("ErrCorrupt", func(t *testing.T) {
		for k := 0; k < 20; k++ {
			last := odometer.EncodeStates(map[string]odometer.State{"api.calls": hardState(rng)})
			for n := 1; n < len(last); n++ {
				if _, err := odometer.DecodeStates(last[:n]); err == nil {
					t.Fatalf("truncated to %d of %d bytes: no error", n, len(last))
				}
			}
		}
		for _, b := range [][]byte{
			{0x05, 'a'}, // legacy: name longer than the input
			{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 'a'},
			{0x01, 'a', 0x01, 0x41},                 // legacy: 65 partials
			{0x01, 'a'},                             // legacy: name without a state
			{0x00, 0x01, 'a', 'S', 0x02},            // a version from the future
			{0x00, 0x01, 'a', 'Z', 0x01},            // an unknown kind
			{0x00, 0x01, 'a', 'G', 0x01, 'G', 0x00}, // groups of groups
		} {
			if _, err := odometer.DecodeStates(b); err == nil {
				t.Errorf("DecodeStates(%x): no error", b)
			}
		}
		valid := odometer.EncodeStates(map[string]odometer.State{"a": hardState(rng), "b": hardState(rng), "c": hardState(rng)})
		for i := 0; i < 5000; i++ {
			b := append([]byte(nil), valid...)
			for j := rng.IntN(4); j >= 0; j-- {
				b[rng.IntN(len(b))] = byte(rng.IntN(256))
			}
			b = b[:rng.IntN(len(b)+1)]
			if states, err := odometer.DecodeStates(b); err == nil {
				for _, s := range states {
					for _, op := range odometer.Ops {
						odometer.Value(op, s)
					}
				}
			}
		}
	})
}

func TestEncodeSlots(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, hour := range []int64{0, 1, 480_000, -1, -3, -480_000} {
		slots := map[int64]odometer.State{}
		for _, i := range []int64{0, 1, 3} {
			slots[hour*odometer.SlotsPerBucket+i] = hardState(rng)
		}
		b := odometer.EncodeSlots(hour, slots)
		got := map[int64]odometer.State{}
		if err := odometer.DecodeSlots(hour, b, got); err != nil {
			t.Fatalf("hour %d: %v", hour, err)
		}
		if again := odometer.EncodeSlots(hour, got); !bytes.Equal(again, b) || len(got) != len(slots) {
			t.Fatalf("hour %d: re-encoding differs", hour)
		}
		one := odometer.EncodeSlots(hour, map[int64]odometer.State{hour*odometer.SlotsPerBucket + 2: hardState(rng)})
		for n := 1; n < len(one); n++ {
			if err := odometer.DecodeSlots(hour, one[:n], map[int64]odometer.State{}); err == nil {
				t.Fatalf("truncated to %d of %d bytes: no error", n, len(one))
			}
		}
	}
	if err := odometer.DecodeSlots(0, []byte{odometer.SlotsPerBucket}, map[int64]odometer.State{}); err == nil {
		t.Error("legacy slot 4 of an hour: no error")
	}
}

func FuzzDecodeStates(f *testing.F) {
	rng := rand.New(rand.NewPCG(11, 12))
	f.Add([]byte{})
	f.Add([]byte{0x01, 'a', 0x00})
	if legacy, err := readHexLines("testdata/states/v1-legacy.hex"); err == nil {
		f.Add(legacy[0])
	}
	for i := 0; i < 6; i++ {
		f.Add(odometer.EncodeStates(map[string]odometer.State{"a": hardState(rng), "b": hardState(rng)}))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		states, err := odometer.DecodeStates(b)
		if err != nil {
			return
		}
		for _, s := range states {
			for _, op := range odometer.Ops {
				odometer.Value(op, s)
			}
		}
		// What decodes re-encodes to a fixed point.
		enc := odometer.EncodeStates(states)
		again, err := odometer.DecodeStates(enc)
		if err != nil {
			t.Fatalf("re-encoded states do not decode: %v", err)
		}
		if got := odometer.EncodeStates(again); !bytes.Equal(got, enc) {
			t.Fatalf("encoding is not stable:\n%x\n%x", got, enc)
		}
	})
}

// TestStates_KindChanged: a meter whose definition changed while the
// server was stopped meets stored states of another kind under its name;
// they are replaced, never merged (a grouped sum into a grouped p95 too).
func TestStates_KindChanged(t *testing.T) {
	sumCfg := mustConfig(`{"events": {"e": {"op": "sum"}}, "meters": {"m": {"eventType": "e", "op": "sum", "groupBy": ["g"]}}}`)
	p95Cfg := mustConfig(`{"events": {"e": {"op": "sum"}}, "meters": {"m": {"eventType": "e", "op": "p95", "groupBy": ["g"]}}}`)
	a, b := sumCfg.Meter("m").NewState(), p95Cfg.Meter("m").NewState()
	x := num(3, 1, 1)
	x.Group = `["a"]`
	a.Add(x)
	b.Add(x)
	if odometer.SameKind(a, b) {
		t.Fatal("a grouped sum and a grouped p95 are of the same kind")
	}
	if !odometer.SameKind(a, sumCfg.Meter("m").NewState()) {
		t.Fatal("two grouped sums are not of the same kind")
	}
}
