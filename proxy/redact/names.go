package redact

import (
	"errors"
	"fmt"
)

// The body's decoder runs with duplicate names allowed, and the walker refuses
// duplicates itself: a decoder that refuses them compares every name with
// all earlier names of its object, which for a 30-field record was a fifth
// of a list's cost, while the walker already knows, from the member memo,
// that a record spelling its names exactly as the previous one did has no
// duplicates.
// Values the walker reads whole from the body are checked by a decoder that
// does refuse duplicates (see readValue and the sub decoder), so every object
// of the document is checked exactly once either way.

// errDuplicateName is wrapped into ErrNotJSON by run.
var errDuplicateName = errors.New("duplicate object member name")

// mapAt is the member count from which a nameSet switches from a linear
// search to a map (the threshold jsontext uses).
const mapAt = 64

// nameSet holds the unescaped names of one object seen so far.
type nameSet struct {
	buf   []byte
	ends  []int
	bloom uint64 // a bit per (length, last byte) pair of the names held
	big   map[string]struct{}
}

func (s *nameSet) reset() {
	s.buf, s.ends, s.bloom = s.buf[:0], s.ends[:0], 0
	if s.big != nil {
		clear(s.big)
		s.big = nil
	}
}

// nameBit is a cheap summary of a name for the bloom word: two names that
// differ in it certainly differ.
func nameBit(name []byte) uint64 {
	h := uint(len(name))
	if len(name) > 0 {
		h = h*31 + uint(name[len(name)-1])
	}
	return 1 << (h & 63)
}

// insert adds the unescaped name and reports whether it was new.
func (s *nameSet) insert(name []byte) bool {
	if s.big != nil {
		if _, dup := s.big[string(name)]; dup {
			return false
		}
		s.big[string(name)] = struct{}{}
		return true
	}
	bit := nameBit(name)
	if s.bloom&bit != 0 {
		start := 0
		for _, end := range s.ends {
			if string(s.buf[start:end]) == string(name) {
				return false
			}
			start = end
		}
	}
	s.bloom |= bit
	s.buf = append(s.buf, name...)
	s.ends = append(s.ends, len(s.buf))
	if len(s.ends) > mapAt {
		s.big = make(map[string]struct{}, 2*len(s.ends))
		start := 0
		for _, end := range s.ends {
			s.big[string(s.buf[start:end])] = struct{}{}
			start = end
		}
	}
	return true
}

// pushNames returns a cleared name set for an object one level deeper than
// the current one; popNames releases it.
func (w *walker) pushNames() *nameSet {
	if w.depth == len(w.sets) {
		w.sets = append(w.sets, new(nameSet))
	}
	s := w.sets[w.depth]
	s.reset()
	w.depth++
	return s
}

func (w *walker) popNames() { w.depth-- }

// unique records the current name (w.uq) in s and fails on a duplicate.
func unique(s *nameSet, uq []byte) error {
	if !s.insert(uq) {
		return fmt.Errorf("%w %q", errDuplicateName, uq)
	}
	return nil
}

// memoUnique checks the i-th member name of a record object against the
// earlier ones when the memo could not vouch for it. memo holds, by
// induction, exactly the names of positions 0..i-1 of the current object
// (see nextName), pairwise distinct, up to its limit; the names from there on
// also go to over, which is nil until then.
func memoUnique(memo []memberInfo, i int, uq []byte, over *nameSet) error {
	bit := nameBit(uq)
	for j := range min(i, len(memo)) {
		if memo[j].bit == bit && string(memo[j].uq) == string(uq) {
			return fmt.Errorf("%w %q", errDuplicateName, uq)
		}
	}
	if over != nil {
		return unique(over, uq)
	}
	return nil
}
