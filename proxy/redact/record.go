package redact

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/redact/internal/jsonscan"
)

// recordValue writes the next record of the body, checking it with the
// record rule; it reports whether the record was kept.
func (w *walker) recordValue(first bool) (bool, error) {
	d := w.dec
	if d.PeekKind() != '{' {
		if _, err := w.readValue(d); err != nil {
			return false, err
		}
		// Every earlier record of the list was counted in upstreamN, so
		// that is this one's index.
		return false, w.fail(fmt.Errorf("transform: %w: record %d of the list is not an object", ErrUnexpectedShape, w.upstreamN))
	}
	start := len(w.out)
	if !first {
		w.out = append(w.out, ',')
	}
	body := len(w.out)
	redacted := w.stats.Redacted
	clear(w.record)
	w.recID, w.hasID = "", false
	w.inRec++
	err := w.recordObject(0)
	w.inRec--
	if err != nil {
		return false, err
	}
	w.upstreamN++
	rd := policy.RecordDecision{Allow: true}
	if w.c.rule != nil {
		if rd, err = w.c.rule.Check(w.record); err != nil {
			return false, w.fail(fmt.Errorf("transform: record rule: %w", err))
		}
	}
	if !rd.Allow {
		w.out = w.out[:start]
		w.stats.Redacted = redacted
		w.stats.Filtered++
		return false, nil
	}
	if len(rd.HiddenFields) > 0 {
		if err := w.rehide(body, rd.HiddenFields); err != nil {
			return false, err
		}
	}
	w.stats.Returned++
	if w.hasID {
		if len(w.stats.IDs) < w.c.maxIDs {
			w.stats.IDs = append(w.stats.IDs, w.recID)
		} else {
			w.stats.Truncated = true
		}
	}
	return true, nil
}

// recordObject writes an object of a record: the record itself (level 0)
// or one on the way to, or at, its fields (level = depth in FieldsPath).
// Along the way it collects what the record rule needs.
func (w *walker) recordObject(level int) error {
	d := w.dec
	if _, err := d.ReadToken(); err != nil {
		return err
	}
	w.out = append(w.out, '{')
	fp := w.c.shape.FieldsPath
	atFields := level == len(fp)
	first := true
	var over *nameSet // names past the memo, if any
	for i := 0; d.PeekKind() != '}'; i++ {
		raw, err := d.ReadValue()
		if err != nil {
			return err
		}
		if i == maxMemo {
			over = w.pushNames()
		}
		m, err := w.member(level, i, raw, over)
		if err != nil {
			return err
		}
		e := m.e
		recID := m.isID && level == 0
		cut := atFields && w.c.visibleDef && !e.visible && !m.isID
		if recID || m.wanted {
			if err := w.collect(raw, recID, e, cut, &first); err != nil {
				return err
			}
			continue
		}
		if e.hidden || cut {
			w.stats.Redacted++
			if err := w.skip(d); err != nil {
				return err
			}
			continue
		}
		w.comma(&first)
		w.out = append(w.out, raw...)
		w.out = append(w.out, ':')
		switch {
		case m.toFields && d.PeekKind() == '{':
			err = w.recordObject(level + 1)
		case e.mask != maskNone:
			err = w.maskNext(d, e.mask)
		default:
			err = w.recordMember(d)
		}
		if err != nil {
			return err
		}
	}
	if _, err := d.ReadToken(); err != nil {
		return err
	}
	if over != nil {
		w.popNames()
	}
	w.out = append(w.out, '}')
	return nil
}

// memberInfo is what recordObject decided about one member name.
type memberInfo struct {
	raw      []byte // the quoted name as it appeared
	uq       []byte // the name unescaped
	bit      uint64 // nameBit(uq)
	e        entry
	isID     bool // the name is Shape.IDField
	wanted   bool // the record rule reads it
	toFields bool // the name is the next step of Shape.FieldsPath
}

// maxMemo bounds the members remembered per level of a record.
const maxMemo = 256

// member classifies the i-th member name of a record object at level and
// refuses a name the object already had.
//
// Records of one list repeat the same names in the same order, so the
// answer for the previous record at the same position is reused when the
// raw name is the same, which spares unescaping, folding, lookups and the
// duplicate check. The memo of a level holds pairwise distinct names and,
// once position i of an object is reached, exactly that object's names at
// positions 0..i-1 (up to maxMemo): a position that matches keeps its entry,
// one that differs is checked against the entries before it, replaces its
// entry and drops the entries after it, which the object's later members
// then append (each checked likewise). A matching position therefore needs
// no check: its name is in the memo, which holds no name twice.
func (w *walker) member(level, i int, raw []byte, over *nameSet) (memberInfo, error) {
	for len(w.memo) <= level {
		w.memo = append(w.memo, nil)
	}
	memo := w.memo[level]
	if i < len(memo) && bytes.Equal(memo[i].raw, raw) {
		return memo[i], nil
	}
	w.name(raw)
	if err := memoUnique(memo, i, w.uq, over); err != nil {
		return memberInfo{}, err
	}
	fp := w.c.shape.FieldsPath
	m := memberInfo{
		e:        w.c.lookup(w.fold),
		isID:     w.c.shape.IDField != "" && string(w.uq) == w.c.shape.IDField,
		wanted:   level == len(fp) && w.c.rule != nil && (w.c.wantAll || w.wants(w.uq)),
		toFields: level < len(fp) && string(w.uq) == fp[level],
	}
	m.bit = nameBit(w.uq)
	switch {
	case i < len(memo):
		m.raw = append(memo[i].raw[:0], raw...)
		m.uq = append(memo[i].uq[:0], w.uq...)
		memo[i] = m
		w.memo[level] = memo[:i+1]
	case i == len(memo) && i < maxMemo:
		m.raw = append([]byte(nil), raw...)
		m.uq = append([]byte(nil), w.uq...)
		w.memo[level] = append(memo, m)
	}
	return m, nil
}

// recordMember writes a member value inside a record: a scalar is copied
// as it is, an object or array walked from the body in the same pass.
func (w *walker) recordMember(d *jsonscan.Decoder) error {
	if k := d.PeekKind(); k == '{' || k == '[' {
		return w.generic(d, baseNames)
	}
	v, err := d.ReadValue()
	if err != nil {
		return err
	}
	w.out = append(w.out, v...)
	return nil
}

// walkRaw writes a raw object or array read from the body, removing and
// masking by name. The body's decoder has checked its syntax; the sub
// decoder refuses duplicate names in it.
func (w *walker) walkRaw(v []byte) error {
	w.subBuf = *bytes.NewBuffer(v)
	w.sub.Reset(&w.subBuf, false)
	return w.generic(w.sub, baseNames)
}

// wants reports whether the record rule reads the field name. It runs once
// per name and list position (see member), so a linear search is fine.
func (w *walker) wants(name []byte) bool {
	for _, f := range w.c.want {
		if f == string(name) {
			return true
		}
	}
	return false
}

// collect reads a member the record rule needs (or the record id), keeps
// its value for the rule, then writes it as the plan says. raw is the
// member's quoted name.
func (w *walker) collect(raw []byte, recID bool, e entry, cut bool, first *bool) error {
	d := w.dec
	key := w.c.shape.IDField
	if !recID {
		var uq []byte
		uq, w.uqBuf = unquote(raw, w.uqBuf)
		key = w.intern(uq)
	}
	w.nameBuf = append(w.nameBuf[:0], raw...)
	v, err := d.ReadValue()
	if err != nil {
		return err
	}
	val, err := w.ruleValue(key, v, recID)
	if err != nil {
		return err
	}
	w.record[key] = val
	if recID {
		w.hasID = true
		if s, ok := val.(string); ok {
			w.recID = s
		} else {
			w.recID = string(v)
		}
	}
	if e.hidden || cut {
		w.stats.Redacted++
		return nil
	}
	w.comma(first)
	w.out = append(w.out, w.nameBuf...)
	w.out = append(w.out, ':')
	switch {
	case e.mask != maskNone:
		w.appendMask(v, e.mask)
	case v[0] == '{' || v[0] == '[':
		return w.walkRaw(v)
	default:
		w.out = append(w.out, v...)
	}
	return nil
}

// intern returns the field name as a string, allocated once per Transform.
func (w *walker) intern(name []byte) string {
	if s, ok := w.keys[string(name)]; ok {
		return s
	}
	s := string(name)
	w.keys[s] = s
	return s
}

// recentWays is how many values of one field ruleValue remembers.
const recentWays = 16

// recentValues are the last values of a field the rule reads, as raw JSON
// and decoded.
type recentValues struct {
	raw  [recentWays][]byte
	val  [recentWays]any
	n    int // entries filled
	next int // entry replaced next, round robin
}

// ruleValue is decodeAny for the record rule's field key, reusing a value
// decoded for an earlier record when the raw JSON is the same: lists
// repeat owners and statuses, and a string put in the map costs two
// allocations. Scalars only (a map or slice could be changed by the rule),
// and not the id, which every record has its own of.
func (w *walker) ruleValue(key string, v []byte, recID bool) (any, error) {
	if recID || v[0] == '{' || v[0] == '[' {
		return w.decodeAny(v)
	}
	r := w.recent[key]
	if r == nil {
		r = new(recentValues)
		w.recent[key] = r
	}
	for i := range r.n {
		if bytes.Equal(r.raw[i], v) {
			return r.val[i], nil
		}
	}
	val, err := w.decodeAny(v)
	if err != nil {
		return nil, err
	}
	i := r.next
	r.raw[i], r.val[i] = append(r.raw[i][:0], v...), val
	r.next = (i + 1) % recentWays
	r.n = max(r.n, i+1)
	return val, nil
}

// rehide walks the record written from out[from:] again, removing the
// record rule's extra hidden names at any depth. Masks and the allow-list
// were applied in the first pass, so only names are removed here.
func (w *walker) rehide(from int, hidden []string) error {
	w.extra = w.extra[:0]
	for _, h := range hidden {
		w.scratch = appendFold(w.scratch[:0], []byte(h))
		w.extra = append(w.extra, string(w.scratch))
	}
	w.rewalk = append(w.rewalk[:0], w.out[from:]...)
	w.out = w.out[:from]
	w.subBuf = *bytes.NewBuffer(w.rewalk)
	w.sub.Reset(&w.subBuf, true)
	if err := w.generic(w.sub, names{extra: w.extra}); err != nil {
		return w.fail(fmt.Errorf("transform: record hidden fields: %w", err))
	}
	return nil
}

// decodeAny turns a raw value into what the record rule sees: strings,
// json.Number, bools, nil, map[string]any and []any.
func (w *walker) decodeAny(v []byte) (any, error) {
	switch v[0] {
	case '"':
		s, buf := unquote(v, w.valBuf)
		w.valBuf = buf
		return string(s), nil
	case 'n':
		return nil, nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case '{', '[':
		w.subBuf = *bytes.NewBuffer(v)
		w.sub.Reset(&w.subBuf, false)
		return decodeTokens(w.sub)
	}
	return json.Number(string(v)), nil
}

func decodeTokens(d *jsonscan.Decoder) (any, error) {
	tok, err := d.ReadToken()
	if err != nil {
		return nil, err
	}
	switch tok.Kind() {
	case '{':
		m := make(map[string]any)
		for d.PeekKind() != '}' {
			k, err := d.ReadToken()
			if err != nil {
				return nil, err
			}
			name := k.String()
			if m[name], err = decodeTokens(d); err != nil {
				return nil, err
			}
		}
		_, err := d.ReadToken()
		return m, err
	case '[':
		a := []any{}
		for d.PeekKind() != ']' {
			x, err := decodeTokens(d)
			if err != nil {
				return nil, err
			}
			a = append(a, x)
		}
		_, err := d.ReadToken()
		return a, err
	case '"':
		return tok.String(), nil
	case 'n':
		return nil, nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	}
	return json.Number(tok.String()), nil
}
