package odometer

import (
	"encoding/binary"
	"sort"
)

const groupedKind stateKind = 'G'

var groupedCodec = stateCodec{kind: groupedKind, version: 1, decode: decodeGrouped}

// groupedState is the state of a meter with groupBy: one state of the
// meter's op per group, by the group's key (the JSON text of the tuple of
// its values). It is one state, so a grouped meter is one section of one
// bucket row, however many groups it has.
type groupedState struct {
	inner  stateKind
	groups map[string]State
}

func newGroupedState(inner stateKind) *groupedState {
	return &groupedState{inner: inner, groups: map[string]State{}}
}

func (g *groupedState) kind() stateKind { return groupedKind }

func (g *groupedState) Add(s *Sample) {
	st := g.groups[s.Group]
	if st == nil {
		st = codecByKind[g.inner].new()
		g.groups[s.Group] = st
	}
	st.Add(s)
}

func (g *groupedState) Merge(os State) {
	o := os.(*groupedState)
	for k, s := range o.groups {
		if cur := g.groups[k]; cur != nil {
			cur.Merge(s)
		} else {
			g.groups[k] = s.Clone()
		}
	}
}

func (g *groupedState) Count() int64 {
	var n int64
	for _, s := range g.groups {
		n += s.Count()
	}
	return n
}

func (g *groupedState) Clone() State {
	c := newGroupedState(g.inner)
	for k, s := range g.groups {
		c.groups[k] = s.Clone()
	}
	return c
}

// total is the meter over all its groups: every group's state merged.
func (g *groupedState) total() State {
	t := codecByKind[g.inner].new()
	for _, k := range g.keys() {
		t.Merge(g.groups[k])
	}
	return t
}

func (g *groupedState) keys() []string {
	keys := make([]string, 0, len(g.groups))
	for k := range g.groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (g *groupedState) appendPayload(b []byte) []byte {
	b = append(b, byte(g.inner))
	b = binary.AppendUvarint(b, uint64(len(g.groups)))
	for _, k := range g.keys() {
		b = appendString(b, k)
		b = AppendState(b, g.groups[k])
	}
	return b
}

func decodeGrouped(_ byte, r *reader) State {
	inner := stateKind(r.byte())
	if codecByKind[inner] == nil || inner == groupedKind {
		r.fail()
		return nil
	}
	g := newGroupedState(inner)
	n := r.count()
	for i := 0; i < n && !r.err; i++ {
		k := string(r.bytes(r.uvarint()))
		s := decodeState(r)
		if r.err || s.kind() != inner {
			r.fail()
			return nil
		}
		g.groups[k] = s
	}
	return g
}
