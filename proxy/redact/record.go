package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

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
		w.putByte(',')
	}
	body := len(w.out)
	redacted := w.stats.Redacted
	clear(w.record)
	w.recID, w.hasID, w.typeOK = "", false, false
	w.slot = 0
	w.inRec++
	err := w.recordObject(0)
	w.inRec--
	if err != nil {
		return false, err
	}
	w.upstreamN++
	rd := policy.RecordDecision{Allow: true}
	if w.c.typeField != "" && !w.typeOK {
		rd.Allow = false
	} else if w.c.rule != nil {
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
	if w.c.admit != nil && !w.c.admit() {
		w.out = w.out[:start]
		w.stats.Redacted = redacted
		w.stats.Withheld++
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
	w.putByte('{')
	first := true
	var over *nameSet // names past the memo, if any
	for len(w.memo) <= level {
		w.memo = append(w.memo, nil)
	}
	for i := 0; d.PeekKind() != '}'; i++ {
		if i == maxMemo {
			over = w.pushNames()
		}
		raw, a, err := w.nextName(d, &w.memo[level], maxMemo, level, i, over)
		if err != nil {
			return err
		}
		switch a.kind {
		case actCollect:
			err = w.collect(level, i, raw, a, &first)
		case actDrop:
			w.stats.Redacted++
			err = w.skip(d)
		default:
			w.comma(&first)
			w.putName(raw)
			switch {
			case a.kind == actFields && d.PeekKind() == '{':
				err = w.recordObject(level + 1)
			case a.e.mask != maskNone:
				err = w.maskNext(d, a.e.mask)
			default:
				err = w.recordMember(d)
			}
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
	w.putByte('}')
	return nil
}

// memberInfo is the memo's entry for one member name of a record object.
type memberInfo struct {
	raw []byte // the quoted name as it appeared
	uq  []byte // the name unescaped
	bit uint64 // nameBit(uq)
	act memberAct
	// For a name the record rule reads: its interned name and recent values.
	key    string
	recent *recentValues
}

// memberAct is what recordObject does with a member. It is kept small, so
// that member hands it back in registers rather than copying a memo entry.
type memberAct struct {
	kind  uint8 // act*
	e     entry
	recID bool // the name is Shape.IDField, in the record object itself
	typ   bool // the name is Shape.TypeField, checked against Plan.RecordTypes
	cut   bool // outside the allow-list (for actCollect: written or not)
}

// What recordObject does with a member.
const (
	actCopy    = iota // written as it is (objects and arrays walked)
	actCollect        // kept for the record rule, or the record id
	actDrop           // hidden or outside the allow-list
	actMask           // masked
	actFields         // the next step of Shape.FieldsPath
)

// classify decides what happens to the member named uq (folded: fold) at
// level of a record; a negative level is an object inside a member value,
// where only the plan's hidden and masked names apply.
func (w *walker) classify(level int, uq, fold []byte) memberAct {
	c := w.c
	if level < 0 {
		a := memberAct{e: c.lookup(fold)}
		switch {
		case a.e.hidden:
			a.kind = actDrop
		case a.e.mask != maskNone:
			a.kind = actMask
		}
		return a
	}
	fp := c.shape.FieldsPath
	isID := c.shape.IDField != "" && string(uq) == c.shape.IDField
	a := memberAct{
		e:     c.lookup(fold),
		recID: isID && level == 0,
		// Compile makes sure the type member is not also a field.
		typ: level == 0 && c.typeField != "" && string(uq) == c.typeField,
		cut: level == len(fp) && c.visibleDef && !isID,
	}
	a.cut = a.cut && !a.e.visible
	wanted := level == len(fp) && c.rule != nil && (c.wantAll || w.wants(uq))
	switch {
	case level == 0 && !a.recID && c.recLinks[string(uq)]:
		a.kind = actDrop
	case a.recID || a.typ || wanted:
		a.kind = actCollect
	case a.e.hidden || a.cut:
		a.kind = actDrop
	case level < len(fp) && string(uq) == fp[level]:
		// Walked as the next object on the way to the fields if it is an
		// object; otherwise masked or copied like any other member.
		a.kind = actFields
	case a.e.mask != maskNone:
		a.kind = actMask
	}
	return a
}

// maxMemo bounds the members remembered per level of a record.
const maxMemo = 256

// nextName reads the i-th member name of an object, classifies it and
// refuses a name the object already had, through a memo *pm of up to limit
// names (level is passed on to classify; over holds the object's names
// from position limit on, once it is reached). Record objects have a memo
// per level, objects nested in record members one per slot.
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
// no check: its name is in the memo, which holds no name twice. The name
// the previous object had at i is compared in the decoder's buffer first,
// without the name being scanned as a string.
func (w *walker) nextName(d *jsonscan.Decoder, pm *[]memberInfo, limit, level, i int, over *nameSet) ([]byte, memberAct, error) {
	if memo := *pm; i < len(memo) && d.ReadNameIf(memo[i].raw) {
		return memo[i].raw, memo[i].act, nil
	}
	raw, err := d.ReadValue()
	if err != nil {
		return nil, memberAct{}, err
	}
	a, err := w.memoized(pm, limit, level, i, raw, over)
	return raw, a, err
}

// memoized is nextName for a name already read from the body.
func (w *walker) memoized(pm *[]memberInfo, limit, level, i int, raw []byte, over *nameSet) (memberAct, error) {
	memo := *pm
	if i < len(memo) && string(memo[i].raw) == string(raw) {
		return memo[i].act, nil
	}
	w.name(raw)
	if err := memoUnique(memo, i, w.uq, over); err != nil {
		return memberAct{}, err
	}
	a := w.classify(level, w.uq, w.fold)
	var m *memberInfo
	switch {
	case i < len(memo):
		m = &memo[i]
		*pm = memo[:i+1]
	case i == len(memo) && i < limit:
		if i < cap(memo) {
			memo = memo[:i+1] // the entry's buffers are reused
		} else {
			memo = append(memo, memberInfo{})
		}
		*pm = memo
		m = &memo[i]
	default:
		return a, nil
	}
	held := cap(m.raw) + cap(m.uq)
	m.raw = append(m.raw[:0], raw...)
	m.uq = append(m.uq[:0], w.uq...)
	w.memoBytes += cap(m.raw) + cap(m.uq) - held
	m.bit = nameBit(w.uq)
	m.act = a
	m.key, m.recent = "", nil
	return a, nil
}

// recordMember writes a member value inside a record: a scalar is copied
// as it is, an object or array walked from the body in the same pass.
func (w *walker) recordMember(d *jsonscan.Decoder) error {
	switch d.PeekKind() {
	case '{':
		return w.nestedObject()
	case '[':
		return w.nestedArray()
	}
	v, err := d.ReadValue()
	if err != nil {
		return err
	}
	w.put(v)
	return nil
}

// Objects inside the members of a record (SuiteCRM's relationships, say)
// get memos of their names too, one per object in the order the objects
// open in the record (a slot), kept like the memo of a record level (see
// member): the k-th object of a record mostly has the names the k-th object
// of the previous record had. An object's slot is its own while it is
// walked, so the argument that a matching position needs no duplicate check
// holds for each slot as it does for a level.
const (
	maxSlots    = 64 // objects per record with a memo; later ones go to generic
	maxSlotMemo = 64 // names remembered per slot
)

// nestedObject writes the object that is next in the body, inside a record,
// removing and masking by name at any depth, as generic does.
func (w *walker) nestedObject() error {
	d := w.dec
	slot := w.slot
	if slot >= maxSlots {
		return w.generic(d, baseNames)
	}
	w.slot++
	for len(w.slots) <= slot {
		w.slots = append(w.slots, nil)
	}
	if _, err := d.ReadToken(); err != nil {
		return err
	}
	w.putByte('{')
	first := true
	var over *nameSet
	for i := 0; d.PeekKind() != '}'; i++ {
		if i == maxSlotMemo {
			over = w.pushNames()
		}
		raw, a, err := w.nextName(d, &w.slots[slot], maxSlotMemo, -1, i, over)
		if err != nil {
			return err
		}
		switch a.kind {
		case actDrop:
			w.stats.Redacted++
			err = w.skip(d)
		case actMask:
			w.comma(&first)
			w.putName(raw)
			err = w.maskNext(d, a.e.mask)
		default:
			w.comma(&first)
			w.putName(raw)
			err = w.recordMember(d)
		}
		if err != nil {
			return err
		}
		if a.kind != actDrop {
			if err := w.maybeFlush(); err != nil {
				return err
			}
		}
	}
	if _, err := d.ReadToken(); err != nil {
		return err
	}
	if over != nil {
		w.popNames()
	}
	w.putByte('}')
	return nil
}

// nestedArray writes the array that is next in the body, inside a record.
func (w *walker) nestedArray() error {
	d := w.dec
	if _, err := d.ReadToken(); err != nil {
		return err
	}
	w.putByte('[')
	first := true
	for d.PeekKind() != ']' {
		w.comma(&first)
		if err := w.recordMember(d); err != nil {
			return err
		}
		if err := w.maybeFlush(); err != nil {
			return err
		}
	}
	if _, err := d.ReadToken(); err != nil {
		return err
	}
	w.putByte(']')
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
// per name and list position (see nextName), so a linear search is fine.
func (w *walker) wants(name []byte) bool {
	for _, f := range w.c.want {
		if f == string(name) {
			return true
		}
	}
	return false
}

// collect reads a member the record rule needs (or the record id), keeps
// its value for the rule, then writes it as a says. raw is the member's
// quoted name, the i-th of its object at level.
func (w *walker) collect(level, i int, raw []byte, a memberAct, first *bool) error {
	d := w.dec
	var m *memberInfo
	if i < maxMemo {
		// member has just made this entry the current name; nothing
		// below changes the memo of this level.
		m = &w.memo[level][i]
	}
	var key string
	var r *recentValues
	switch {
	case a.recID:
		key = w.c.shape.IDField
	case a.typ:
		// Not a field of the record: kept out of the rule's input.
	case m != nil && m.recent != nil:
		key, r = m.key, m.recent
	default:
		var uq []byte
		uq, w.uqBuf = unquote(raw, w.uqBuf)
		key = w.intern(uq)
		r = w.recentFor(key)
		if m != nil {
			m.key, m.recent = key, r
		}
	}
	// raw lies in the decoder's buffer, which reading the value may move.
	var name []byte
	if m != nil {
		name = m.raw
	} else {
		w.nameBuf = append(w.nameBuf[:0], raw...)
		name = w.nameBuf
	}
	v, err := d.ReadValue()
	if err != nil {
		return err
	}
	if a.typ {
		// Any JSON spelling of the module's name, escapes included, is
		// compared decoded; anything but a string matches nothing.
		t, err := w.decodeAny(v)
		if err != nil {
			return err
		}
		s, _ := t.(string)
		w.typeOK = slices.Contains(w.c.recTypes, s)
		return w.writeCollected(first, name, v, a)
	}
	val, err := w.ruleValue(r, v, a.recID)
	if err != nil {
		return err
	}
	w.record[key] = val
	if a.recID {
		w.hasID = true
		if s, ok := val.(string); ok {
			w.recID = s
		} else {
			w.recID = string(v)
		}
	}
	return w.writeCollected(first, name, v, a)
}

// writeCollected writes a member collect read, as a says.
func (w *walker) writeCollected(first *bool, name, v []byte, a memberAct) error {
	if a.e.hidden || a.cut {
		w.stats.Redacted++
		return nil
	}
	w.comma(first)
	w.putName(name)
	switch {
	case a.e.mask != maskNone:
		w.appendMask(v, a.e.mask)
	case v[0] == '{' || v[0] == '[':
		return w.walkRaw(v)
	default:
		w.put(v)
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

// recentFor returns the recent values of the rule's field key.
func (w *walker) recentFor(key string) *recentValues {
	r := w.recent[key]
	if r == nil {
		r = new(recentValues)
		w.recent[key] = r
	}
	return r
}

// ruleValue is decodeAny for a field the record rule reads, whose recent
// values are r, reusing a value decoded for an earlier record when the raw
// JSON is the same: lists repeat owners and statuses, and a string put in
// the map costs two allocations. Scalars only (a map or slice could be
// changed by the rule), and not the id, which every record has its own of.
func (w *walker) ruleValue(r *recentValues, v []byte, recID bool) (any, error) {
	if recID || v[0] == '{' || v[0] == '[' {
		return w.decodeAny(v)
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
