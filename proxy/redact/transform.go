package redact

import (
	"bytes"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/crmgate/crmgate/proxy/redact/internal/jsonscan"
)

// flushAt is how much output collects before it is written to dst.
const flushAt = 32 << 10

// maxPooled keeps a walker that once held a huge record out of the pool.
const maxPooled = 1 << 20

// walkers recycles decoders and scratch buffers between Transform calls; it
// holds no state that outlives a call.
var walkers = sync.Pool{New: func() any { return new(walker) }}

// names says which names an object walk removes or masks.
type names struct {
	// base applies the plan's hidden and masked names; it is off when a
	// record already redacted is walked again for its record-hidden names.
	base bool
	// extra are folded names hidden for the current record only.
	extra []string
}

var baseNames = names{base: true}

// errReader remembers the upstream's own read error, so that a broken
// connection is not reported as a body that is not JSON.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		e.err = err
	}
	return n, err
}

// walker is the state of one Transform call.
type walker struct {
	c    *Compiled
	mode Mode
	dst  io.Writer
	src  errReader

	dec    *jsonscan.Decoder // the body, duplicate names allowed (see names.go)
	sub    *jsonscan.Decoder // values already read from dec
	subBuf bytes.Buffer
	chk    *jsonscan.Decoder // checks names in values read whole from dec
	chkBuf bytes.Buffer
	sets   []*nameSet // names of the objects open on dec, by depth
	depth  int

	out     []byte // output not yet written to dst
	hold    bool   // out may not reach dst yet
	inRec   int    // >0 while a record is being written (out may be cut back)
	uq      []byte // the current name, unescaped (may alias the decoder)
	uqBuf   []byte
	fold    []byte // the current name, folded
	nameBuf []byte // a raw name kept across a value read
	valBuf  []byte
	scratch []byte
	rewalk  []byte
	extra   []string
	memo    [][]memberInfo // per record level, by member position
	slots   [][]memberInfo // per object inside a record's members (see nestedObject)
	slot    int            // the next object's slot in the current record
	// memoBytes is what the name buffers of memo and slots hold; their
	// entries keep them for reuse, so a walker that met huge names is not
	// pooled.
	memoBytes int

	record map[string]any
	keys   map[string]string        // field names the rule reads, interned
	recent map[string]*recentValues // by field name, see ruleValue
	recID  string
	hasID  bool
	typeOK bool // the record's type member is one of Plan.RecordTypes
	mac    hash.Hash

	stats      Stats
	fatal      error // an error of ours (shape, rule, denial), not of the JSON
	werr       error
	targetSeen bool
	listDone   bool
	upstreamN  int // records the upstream sent in the list, kept or not
}

func getWalker(c *Compiled, dst io.Writer, src io.Reader, mode Mode) *walker {
	w := walkers.Get().(*walker)
	w.c, w.mode, w.dst = c, mode, dst
	w.src = errReader{r: src}
	if w.dec == nil {
		w.dec = jsonscan.NewDecoder(&w.src, true)
		w.sub = jsonscan.NewDecoder(&w.subBuf, false)
		w.chk = jsonscan.NewDecoder(&w.chkBuf, false)
	} else {
		w.dec.Reset(&w.src, true)
	}
	if w.record == nil {
		w.record = make(map[string]any)
		w.keys = make(map[string]string)
		w.recent = make(map[string]*recentValues)
	}
	return w
}

func putWalker(w *walker) {
	if cap(w.out) > maxPooled || cap(w.rewalk) > maxPooled || w.memoBytes > maxPooled {
		return
	}
	clear(w.record)
	// Names and values of one response do not stay in the pool.
	clear(w.keys)
	clear(w.recent)
	w.c, w.dst, w.src, w.mac = nil, nil, errReader{}, nil
	w.out, w.rewalk = w.out[:0], w.rewalk[:0]
	w.uq, w.extra = nil, w.extra[:0]
	for i, memo := range w.memo {
		// Entries past the length keep their name buffers for reuse, but
		// not the response's interned names and values.
		memo = memo[:cap(memo)]
		for j := range memo {
			memo[j].key, memo[j].recent = "", nil
		}
		w.memo[i] = memo[:0]
	}
	for i := range w.slots {
		w.slots[i] = w.slots[i][:0]
	}
	w.slot = 0
	w.hold, w.inRec, w.hasID, w.recID, w.typeOK = false, 0, false, "", false
	w.stats, w.fatal, w.werr = Stats{}, nil, nil
	w.targetSeen, w.listDone, w.upstreamN = false, false, 0
	w.depth = 0
	w.subBuf, w.chkBuf = bytes.Buffer{}, bytes.Buffer{}
	w.sub.Reset(&w.subBuf, false)
	w.chk.Reset(&w.chkBuf, false)
	w.dec.Reset(&w.src, true)
	walkers.Put(w)
}

// run transforms the whole document and sorts out what went wrong.
func (w *walker) run() error {
	var err error
	switch w.mode {
	case ModeList:
		w.hold = true
		err = w.value(w.c.listTrie)
	case ModeRecord:
		w.hold = true
		err = w.value(w.c.recTrie)
	case ModeOther:
		err = w.generic(w.dec, baseNames)
	default:
		return fmt.Errorf("transform: unknown mode %d", int(w.mode))
	}
	if err == nil {
		err = w.end()
	}
	if err == nil {
		err = w.flush()
	}
	switch {
	case err == nil:
		return nil
	case w.werr != nil:
		return fmt.Errorf("transform: write: %w", w.werr)
	case w.src.err != nil:
		return fmt.Errorf("transform: read body: %w", w.src.err)
	case w.fatal != nil:
		return w.fatal
	}
	return fmt.Errorf("transform: %w: %w", ErrNotJSON, err)
}

func (w *walker) end() error {
	if w.mode != ModeOther && !w.targetSeen {
		path := w.c.shape.ListPath
		if w.mode == ModeRecord {
			path = w.c.shape.RecordPath
		}
		return w.fail(fmt.Errorf("transform: %w: no %s at %q", ErrUnexpectedShape, w.mode, path))
	}
	if _, err := w.dec.ReadToken(); !errors.Is(err, io.EOF) {
		if err == nil {
			return errors.New("data after the top-level value")
		}
		return err
	}
	return nil
}

func (w *walker) fail(err error) error {
	if w.fatal == nil {
		w.fatal = err
	}
	return err
}

func (w *walker) flush() error {
	if len(w.out) == 0 {
		return nil
	}
	_, err := w.dst.Write(w.out)
	w.out = w.out[:0]
	if err != nil {
		w.werr = err
	}
	return err
}

// put, putByte and putName append to the output in place while it has
// room: assigning the result of append to w.out writes the slice's pointer
// back to the walker every time, which costs a write barrier whenever the
// GC is marking, and the walker appends a few times per member.
func (w *walker) put(b []byte) {
	n := len(w.out)
	if cap(w.out)-n < len(b) {
		w.out = append(w.out, b...)
		return
	}
	w.out = w.out[:n+len(b)]
	copy(w.out[n:], b)
}

func (w *walker) putByte(c byte) {
	n := len(w.out)
	if n == cap(w.out) {
		w.out = append(w.out, c)
		return
	}
	w.out = w.out[:n+1]
	w.out[n] = c
}

// putName writes a member's quoted name and its colon.
func (w *walker) putName(raw []byte) {
	n := len(w.out)
	if cap(w.out)-n <= len(raw) {
		w.out = append(w.out, raw...)
		w.out = append(w.out, ':')
		return
	}
	w.out = w.out[:n+len(raw)+1]
	copy(w.out[n:], raw)
	w.out[n+len(raw)] = ':'
}

// maybeFlush writes out what has collected, unless it is held back or a
// record in progress may still be cut from it.
func (w *walker) maybeFlush() error {
	if len(w.out) < flushAt {
		return nil
	}
	if w.hold {
		if len(w.out) > MaxHeld {
			return w.fail(fmt.Errorf("transform: %w: more than %d bytes before the %s", ErrUnexpectedShape, MaxHeld, w.mode))
		}
		return nil
	}
	if w.inRec > 0 {
		return nil
	}
	return w.flush()
}

// name decodes the raw (quoted) member name into w.uq and w.fold.
func (w *walker) name(raw []byte) {
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		w.uq = body
	} else {
		// The decoder has validated the string, so unquoting cannot fail.
		w.uqBuf, _ = jsontext.AppendUnquote(w.uqBuf[:0], raw)
		w.uq = w.uqBuf
	}
	w.fold = appendFold(w.fold[:0], w.uq)
}

// hides reports whether the current name is removed under nm.
func (w *walker) hides(e entry, nm names) bool {
	if nm.base && e.hidden {
		return true
	}
	for _, x := range nm.extra {
		if x == string(w.fold) {
			return true
		}
	}
	return false
}

func (w *walker) comma(first *bool) {
	if !*first {
		w.putByte(',')
	}
	*first = false
}

// generic writes the next value of d, removing and masking by name at any
// depth.
func (w *walker) generic(d *jsonscan.Decoder, nm names) error {
	switch d.PeekKind() {
	case '{':
		if _, err := d.ReadToken(); err != nil {
			return err
		}
		w.putByte('{')
		var ns *nameSet
		if d == w.dec {
			ns = w.pushNames()
		}
		first := true
		for d.PeekKind() != '}' {
			raw, err := d.ReadValue()
			if err != nil {
				return err
			}
			w.name(raw)
			if ns != nil {
				if err := unique(ns, w.uq); err != nil {
					return err
				}
			}
			e := w.c.lookup(w.fold)
			if w.hides(e, nm) {
				// On the second pass for record-hidden names, a masked
				// field was already counted when it was masked.
				if nm.base || e.mask == maskNone || d.PeekKind() == 'n' {
					w.stats.Redacted++
				} else {
					// Masked on the first pass, removed now: it counts as
					// removed, not masked.
					w.stats.Masked--
				}
				if err := w.skip(d); err != nil {
					return err
				}
				continue
			}
			w.comma(&first)
			w.putName(raw)
			if nm.base && e.mask != maskNone {
				err = w.maskNext(d, e.mask)
			} else {
				err = w.generic(d, nm)
			}
			if err != nil {
				return err
			}
			if err := w.maybeFlush(); err != nil {
				return err
			}
		}
		if _, err := d.ReadToken(); err != nil {
			return err
		}
		if ns != nil {
			w.popNames()
		}
		w.putByte('}')
		return nil
	case '[':
		if _, err := d.ReadToken(); err != nil {
			return err
		}
		w.putByte('[')
		first := true
		for d.PeekKind() != ']' {
			w.comma(&first)
			if err := w.generic(d, nm); err != nil {
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
	v, err := d.ReadValue()
	if err != nil {
		return err
	}
	w.put(v)
	return nil
}

// maskNext writes the masked form of the next value of d.
func (w *walker) maskNext(d *jsonscan.Decoder, style maskStyle) error {
	v, err := w.readValue(d)
	if err != nil {
		return err
	}
	w.appendMask(v, style)
	return nil
}

// appendMask writes the masked form of the raw value v: strings by style,
// any other value but null as "[redacted]".
func (w *walker) appendMask(v []byte, style maskStyle) {
	switch v[0] {
	case 'n':
		w.out = append(w.out, "null"...)
		return
	case '"':
		var s []byte
		s, w.valBuf = unquote(v, w.valBuf)
		if style == maskHash && w.mac == nil {
			w.mac = newMAC(w.c.hashKey)
		}
		w.out, w.scratch = appendMasked(w.out, s, style, w.mac, w.scratch)
	default:
		w.out = append(w.out, redactedJSON...)
	}
	w.stats.Redacted++
	w.stats.Masked++
}

// unquote returns the contents of the valid JSON string v, using buf only
// when v has escapes.
func unquote(v, buf []byte) ([]byte, []byte) {
	body := v[1 : len(v)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return body, buf
	}
	buf, _ = jsontext.AppendUnquote(buf[:0], v)
	return buf, buf
}

// readValue reads the next value of d whole. An object or array from the
// body's decoder, which lets duplicate names through, is checked here.
func (w *walker) readValue(d *jsonscan.Decoder) ([]byte, error) {
	v, err := d.ReadValue()
	if err != nil || d != w.dec || (v[0] != '{' && v[0] != '[') {
		return v, err
	}
	w.chkBuf = *bytes.NewBuffer(v)
	w.chk.Reset(&w.chkBuf, false)
	if err := w.chk.SkipValue(); err != nil {
		return nil, err
	}
	return v, nil
}

// skip drops the next value of d, still refusing it if it is not valid.
func (w *walker) skip(d *jsonscan.Decoder) error {
	_, err := w.readValue(d)
	return err
}

// value writes the value at the structural node n of the body.
func (w *walker) value(n *pathNode) error {
	switch n.kind {
	case nodeList:
		return w.list()
	case nodeRecord:
		return w.single()
	}
	if len(n.children) > 0 && w.dec.PeekKind() == '{' {
		return w.envelope(n)
	}
	return w.generic(w.dec, baseNames)
}

// envelope writes an object on the way to the list or record, rewriting
// counts.
func (w *walker) envelope(n *pathNode) error {
	d := w.dec
	if _, err := d.ReadToken(); err != nil {
		return err
	}
	w.putByte('{')
	ns := w.pushNames()
	first := true
	var pending []pendingTotal
	for d.PeekKind() != '}' {
		raw, err := d.ReadValue()
		if err != nil {
			return err
		}
		w.name(raw)
		if err := unique(ns, w.uq); err != nil {
			return err
		}
		e := w.c.lookup(w.fold)
		if e.hidden {
			w.stats.Redacted++
			if err := w.skip(d); err != nil {
				return err
			}
			continue
		}
		child := n.children[string(w.uq)]
		if child != nil && child.kind == nodeLink {
			v, err := w.readValue(d)
			if err != nil {
				return err
			}
			w.writeLink(&first, raw, v)
			continue
		}
		if child != nil && child.kind == nodeTotal {
			name := bytes.Clone(raw)
			v, err := w.readValue(d)
			if err != nil {
				return err
			}
			switch {
			case w.listDone:
				w.writeTotal(&first, name, child.total, v)
			case n.holdsTarget:
				pending = append(pending, pendingTotal{name: name, value: bytes.Clone(v), style: child.total})
			}
			continue
		}
		w.comma(&first)
		w.putName(raw)
		switch {
		case child != nil && (child.kind != nodeInner || child.holdsTarget):
			err = w.value(child)
		case e.mask != maskNone:
			err = w.maskNext(d, e.mask)
		case child != nil:
			err = w.value(child)
		default:
			err = w.generic(d, baseNames)
		}
		if err != nil {
			return err
		}
		if err := w.maybeFlush(); err != nil {
			return err
		}
	}
	if _, err := d.ReadToken(); err != nil {
		return err
	}
	w.popNames()
	for _, p := range pending {
		w.writeTotal(&first, p.name, p.style, p.value)
	}
	w.putByte('}')
	return nil
}

// writeLink writes a CRM URL rewritten by the plan's Links, or nothing.
func (w *walker) writeLink(first *bool, name, v []byte) {
	if w.c.links == nil || len(v) == 0 || v[0] != '"' {
		return
	}
	s, err := jsontext.AppendUnquote(nil, v)
	if err != nil {
		return
	}
	out, ok := w.c.links(string(s))
	if !ok {
		return
	}
	q, err := jsontext.AppendQuote(nil, out)
	if err != nil {
		return
	}
	w.comma(first)
	w.putName(name)
	w.put(q)
}

func (w *walker) writeTotal(first *bool, name []byte, style totalStyle, upstream []byte) {
	var ok bool
	if w.scratch, ok = w.appendTotal(w.scratch[:0], style, upstream); !ok {
		return
	}
	w.comma(first)
	w.putName(name)
	w.put(w.scratch)
}

// list writes the list, record by record.
func (w *walker) list() error {
	d := w.dec
	if d.PeekKind() != '[' {
		if _, err := w.readValue(d); err != nil {
			return err
		}
		return w.fail(fmt.Errorf("transform: %w: list at %q is not an array", ErrUnexpectedShape, w.c.shape.ListPath))
	}
	if _, err := d.ReadToken(); err != nil {
		return err
	}
	w.targetSeen = true
	w.hold = false
	w.putByte('[')
	first := true
	for d.PeekKind() != ']' {
		kept, err := w.recordValue(first)
		if err != nil {
			return err
		}
		if kept {
			first = false
		}
		if err := w.maybeFlush(); err != nil {
			return err
		}
	}
	if _, err := d.ReadToken(); err != nil {
		return err
	}
	w.putByte(']')
	w.listDone = true
	return nil
}

// single writes the one record of a ModeRecord body, or refuses it.
func (w *walker) single() error {
	if w.dec.PeekKind() != '{' {
		if _, err := w.readValue(w.dec); err != nil {
			return err
		}
		return w.fail(fmt.Errorf("transform: %w: record at %q is not an object", ErrUnexpectedShape, w.c.shape.RecordPath))
	}
	w.targetSeen = true
	kept, err := w.recordValue(true)
	if err != nil {
		return err
	}
	if !kept {
		if w.stats.Withheld > 0 {
			return w.fail(fmt.Errorf("transform: %w", ErrWithheld))
		}
		return w.fail(fmt.Errorf("transform: %w", ErrRecordDenied))
	}
	w.hold = false
	return nil
}
