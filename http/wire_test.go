package http

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestDecodeWire(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     wireEvent
		dup      string
	}{
		{"OK", `{"customerId": "c", "value": 1.5, "metadata": {"a": [1, {"b": "}"}]}, "x": null}`,
			wireEvent{CustomerID: json.RawMessage(`"c"`), Value: json.RawMessage(`1.5`), Metadata: json.RawMessage(`{"a": [1, {"b": "}"}]}`)}, ""},
		{"Empty", `{}`, wireEvent{}, ""},
		{"Spaces", " {\n\t\"id\" : \"a\\\"b\" ,\"timestamp\":\"t\" } ", wireEvent{ID: json.RawMessage(`"a\"b"`), Timestamp: json.RawMessage(`"t"`)}, ""},
		{"CaseMatters", `{"CUSTOMERID": "c", "Value": 1}`, wireEvent{}, ""},
		{"EscapedKey", `{"\u0063ustomerId": "c"}`, wireEvent{CustomerID: json.RawMessage(`"c"`)}, ""},
		{"ErrDuplicate", `{"customerId": "a", "customerId": "b"}`, wireEvent{}, "customerId"},
		{"ErrDuplicateEscaped", `{"value": 1, "\u0076alue": 2}`, wireEvent{}, "value"},
		{"DuplicateUnknownIgnored", `{"x": 1, "x": 2, "value": 3}`, wireEvent{Value: json.RawMessage(`3`)}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !json.Valid([]byte(tt.in)) {
				t.Fatalf("test input is not valid JSON: %s", tt.in)
			}
			var got wireEvent
			err := decodeWire([]byte(tt.in), &got)
			var dup errDuplicateKey
			if tt.dup != "" {
				if !errors.As(err, &dup) || string(dup) != tt.dup {
					t.Fatalf("err = %v, want duplicate %q", err, tt.dup)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []struct {
				name      string
				got, want json.RawMessage
			}{{"eventType", got.EventType, tt.want.EventType}, {"customerId", got.CustomerID, tt.want.CustomerID},
				{"value", got.Value, tt.want.Value}, {"metadata", got.Metadata, tt.want.Metadata},
				{"id", got.ID, tt.want.ID}, {"timestamp", got.Timestamp, tt.want.Timestamp}} {
				if string(f.got) != string(f.want) {
					t.Errorf("%s = %q, want %q", f.name, f.got, f.want)
				}
			}
		})
	}
}

func TestEachElement(t *testing.T) {
	var got []string
	err := eachElement([]byte(` [ {"a": "]"} , 1, "x", [2, [3]] , null ] `), func(e []byte) error {
		got = append(got, string(e))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`{"a": "]"}`, `1`, `"x"`, `[2, [3]]`, `null`}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("element %d = %q, want %q", i, got[i], want[i])
		}
	}
	if err := eachElement([]byte(`{}`), func([]byte) error { return nil }); err != errNotArray {
		t.Errorf("object as array: err = %v", err)
	}
}

func TestLoneSurrogate(t *testing.T) {
	for in, want := range map[string]bool{
		`"plain"`:                false,
		`"\ud83d\ude00"`:         false, // a pair: 😀
		`"\ud800"`:               true,
		`"\udc00"`:               true,
		`"\ud800x"`:              true,
		`"\ud800\u0041"`:         true,
		`"a\\ud800"`:             false, // an escaped backslash, then text
		`"\u00e9\n\ud83d\ude00"`: false,
	} {
		if got := loneSurrogate([]byte(in)); got != want {
			t.Errorf("loneSurrogate(%s) = %v, want %v", in, got, want)
		}
	}
}

func FuzzDecodeWire(f *testing.F) {
	for _, s := range []string{`{"customerId": "c", "value": 1}`, `{"a": {"b": [1, "}"]}, "id": "x"}`, `{}`, `{"\u0069d": "y"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		var we wireEvent
		if err := decodeWire(b, &we); err != nil {
			return
		}
		// What the walker found must be what encoding/json finds when the
		// keys are unique and exact.
		var m map[string]json.RawMessage
		if json.Unmarshal(b, &m) != nil {
			return
		}
		for k, v := range map[string]json.RawMessage{"customerId": we.CustomerID, "value": we.Value, "id": we.ID} {
			if want, ok := m[k]; ok && v != nil && string(compact(t, v)) != string(compact(t, want)) {
				t.Fatalf("%s = %s, encoding/json says %s", k, v, want)
			}
		}
	})
}

func compact(t *testing.T, b []byte) []byte {
	var m json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	out, _ := json.Marshal(m)
	return out
}
