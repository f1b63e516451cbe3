// Package jsonscan is the streaming JSON decoder of the redactor: it reads
// a stream of JSON values token by token or value by value and accepts
// exactly what jsontext.Decoder accepts with its default options (RFC 8259
// grammar, valid UTF-8, paired surrogate escapes, nesting up to 10000,
// optionally unique member names).
//
// It exists because jsontext's general machinery (token state bookkeeping,
// resumable consumers, JSON Pointer tracking) was about half of the
// redactor's CPU on a proxied list. This decoder offers only the calls the
// redactor's walker makes, keeps its state in a few bytes per level, and
// scans plain strings, numbers and whitespace in tight loops. A differential
// fuzz test holds it to jsontext's behaviour.
package jsonscan

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/go-json-experiment/json/jsontext"
)

// Kind is the kind of the next token, with jsontext's byte values: 'n',
// 'f', 't', '"', '0', '{', '}', '[', ']', or 0 when the next byte cannot
// start a token or an error occurred.
type Kind byte

func (k Kind) String() string {
	switch k {
	case 0:
		return "invalid"
	case 'n':
		return "null"
	case 'f':
		return "false"
	case 't':
		return "true"
	case '"':
		return "string"
	case '0':
		return "number"
	case '{', '}', '[', ']':
		return string(rune(k))
	}
	return fmt.Sprintf("<invalid Kind %q>", byte(k))
}

// normKind maps the first byte of a token to its kind, as jsontext does.
var normKind = [256]Kind{
	'n': 'n', 'f': 'f', 't': 't', '"': '"',
	'{': '{', '}': '}', '[': '[', ']': ']',
	'-': '0', '0': '0', '1': '0', '2': '0', '3': '0', '4': '0',
	'5': '0', '6': '0', '7': '0', '8': '0', '9': '0',
}

// Token is one token read by ReadToken. It is valid until the next call on
// its decoder.
type Token struct {
	kind Kind
	raw  []byte // the quoted string or the number, as it appeared
}

// Kind returns the token's kind.
func (t Token) Kind() Kind { return t.kind }

// String returns the unescaped contents of a string token, the text of a
// number, and the literal or delimiter itself otherwise.
func (t Token) String() string {
	switch t.kind {
	case '"':
		body := t.raw[1 : len(t.raw)-1]
		if bytes.IndexByte(body, '\\') < 0 {
			return string(body)
		}
		// The decoder validated the string, so unquoting cannot fail.
		b, _ := jsontext.AppendUnquote(nil, t.raw)
		return string(b)
	case '0':
		return string(t.raw)
	case 0:
		return "<invalid Token>"
	}
	return t.kind.String()
}

// maxDepth is jsontext's nesting limit: at most this many objects and arrays
// open at once.
const maxDepth = 10000

// chunk is how much one Read may add to the buffer. The buffer holds the
// token or value being read plus at most one chunk.
const chunk = 8 << 10

// maxKeep is the largest buffer Reset keeps for the next stream, so that
// one huge value does not stay in a pooled decoder.
const maxKeep = 256 << 10

// Container states. The top level is a stream of values with no
// delimiters; an object alternates names and values.
const (
	stTop      = iota
	stArrEmpty // after '['
	stArrMore  // after an element: ',' or ']' next
	stObjEmpty // after '{': a name or '}' next
	stObjName  // after a name: ':' and a value next
	stObjMore  // after a member: ',' and a name, or '}', next
)

// ErrDuplicateName reports an object member name equal, after unescaping,
// to an earlier name of the same object.
var ErrDuplicateName = errors.New("duplicate object member name")

// SyntaxError is input that is not valid JSON, or not where it appeared.
type SyntaxError struct {
	Offset int64 // of the byte where the problem was found, in the stream
	Err    error
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("jsonscan: %v at offset %d", e.Err, e.Offset)
}

func (e *SyntaxError) Unwrap() error { return e.Err }

var (
	errEOF       = errors.New("unexpected end of input")
	errDepth     = errors.New("exceeded max depth")
	errNonString = errors.New("object member name must be a string")
	errUTF8      = errors.New("invalid UTF-8")
	errEscape    = errors.New("invalid escape sequence")
	errControl   = errors.New("control character in string")
	errNumber    = errors.New("invalid number")
	errLiteral   = errors.New("invalid literal")
	errChar      = errors.New("invalid character")
	errDelim     = errors.New("missing or unexpected delimiter")
	errMismatch  = errors.New("mismatched closing delimiter")
	errMissing   = errors.New("missing object member value")
)

// Decoder reads a stream of JSON values. Unlike jsontext's, its first error
// is final: every later call returns it again, so a caller cannot read on
// past input it was told is bad.
type Decoder struct {
	buf   []byte // buf[pos:] is unread
	pos   int
	base  int64 // stream offset of buf[0]
	src   io.Reader
	rerr  error // a read error (or io.EOF) seen with data, returned next time
	own   []byte
	alias bool // buf is the contents of a bytes.Buffer: never write to it

	allowDup bool
	st       uint8
	stack    []uint8 // states of the enclosing containers
	vstack   []byte  // containers open inside the value ReadValue scans
	sets     []nameSet
	unq      []byte

	peeked   bool // the next token starts at buf[pos]
	peekKind Kind // and is of this kind
	err      error
}

// NewDecoder returns a decoder reading from r. When allowDuplicateNames is
// false it refuses a member name an object already had.
//
// If r is a *bytes.Buffer, the decoder takes its unread contents and parses
// them in place, without copying; the buffer must not be written meanwhile.
func NewDecoder(r io.Reader, allowDuplicateNames bool) *Decoder {
	d := new(Decoder)
	d.Reset(r, allowDuplicateNames)
	return d
}

// Reset makes d read afresh from r, as NewDecoder does.
func (d *Decoder) Reset(r io.Reader, allowDuplicateNames bool) {
	if cap(d.own) > maxKeep {
		d.own = nil
	}
	d.buf, d.pos, d.base, d.src, d.rerr, d.alias = d.own[:0], 0, 0, r, nil, false
	if bb, ok := r.(*bytes.Buffer); ok {
		d.buf, d.src, d.rerr, d.alias = bb.Next(bb.Len()), nil, io.EOF, true
	}
	d.allowDup = allowDuplicateNames
	d.st = stTop
	d.stack, d.vstack = d.stack[:0], d.vstack[:0]
	if cap(d.stack) > 1024 {
		d.stack = nil
	}
	if len(d.sets) > 64 {
		d.sets = nil
	}
	d.peeked, d.err = false, nil
}

// more makes more input available, keeping buf[keep:] and dropping what is
// before it; it returns by how much positions in buf moved down. It returns
// io.EOF at the end of the input and the reader's error if it failed.
func (d *Decoder) more(keep int) (int, error) {
	if d.rerr != nil {
		return 0, d.rerr
	}
	if keep > 0 {
		n := copy(d.buf, d.buf[keep:])
		d.buf = d.buf[:n]
		d.base += int64(keep)
	}
	if cap(d.buf)-len(d.buf) < chunk {
		nb := make([]byte, len(d.buf), max(2*cap(d.buf), len(d.buf)+chunk))
		copy(nb, d.buf)
		d.buf = nb
	}
	d.own = d.buf
	for range 100 {
		n, err := d.src.Read(d.buf[len(d.buf):min(cap(d.buf), len(d.buf)+chunk)])
		d.buf = d.buf[:len(d.buf)+n]
		if err != nil {
			d.rerr = err
		}
		if n > 0 {
			return keep, nil
		}
		if err != nil {
			return keep, err
		}
	}
	d.rerr = io.ErrNoProgress
	return keep, d.rerr
}

func (d *Decoder) syntax(pos int, err error) error {
	return &SyntaxError{Offset: d.base + int64(pos), Err: err}
}

// eofErr turns the end of the input met at pos inside a token or value into
// an error; a read error is returned as it is.
func (d *Decoder) eofErr(pos int, err error) error {
	if err == io.EOF {
		return d.syntax(pos, errEOF)
	}
	return fmt.Errorf("jsonscan: read: %w", err)
}

func (d *Decoder) fail(err error) error {
	d.err = err
	d.peeked = false
	d.pos = len(d.buf) // keeps peek off its fast path, which does not look at err
	return err
}

func (d *Decoder) needDelim(k Kind) byte {
	switch d.st {
	case stObjName:
		return ':'
	case stArrMore, stObjMore:
		if k != '}' && k != ']' {
			return ','
		}
	}
	return 0
}

// atName reports whether the next token is an object member name.
func (d *Decoder) atName() bool { return d.st == stObjEmpty || d.st == stObjMore }

// afterValue is the state of a container past a complete value in it.
var afterValue = [8]uint8{
	stTop:      stTop,
	stArrEmpty: stArrMore,
	stArrMore:  stArrMore,
	stObjEmpty: stObjEmpty, // not reached: a value there is refused
	stObjName:  stObjMore,
	stObjMore:  stObjMore, // not reached either
}

// done moves the current container past a complete value.
func (d *Decoder) done() { d.st = afterValue[d.st&7] }

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

// next finds the start of the next token, past whitespace and the comma or
// colon before it, and checks that delimiter.
func (d *Decoder) next() (int, Kind, error) {
	if d.err != nil {
		return 0, 0, d.err
	}
	i := d.pos
	for {
		for i < len(d.buf) && isSpace(d.buf[i]) {
			i++
		}
		if i < len(d.buf) {
			break
		}
		shift, err := d.more(i)
		i -= shift
		if err != nil {
			if err == io.EOF && d.st == stTop {
				return 0, 0, d.fail(io.EOF)
			}
			return 0, 0, d.fail(d.eofErr(i, err))
		}
	}
	var delim byte
	if c := d.buf[i]; c == ',' || c == ':' {
		delim = c
		i++
		for {
			for i < len(d.buf) && isSpace(d.buf[i]) {
				i++
			}
			if i < len(d.buf) {
				break
			}
			shift, err := d.more(i)
			i -= shift
			if err != nil {
				if d.needDelim('"') != delim {
					return 0, 0, d.fail(d.syntax(i, errDelim))
				}
				return 0, 0, d.fail(d.eofErr(i, err))
			}
		}
	}
	k := normKind[d.buf[i]]
	if d.needDelim(k) != delim {
		return 0, 0, d.fail(d.syntax(i, errDelim))
	}
	return i, k, nil
}

// PeekKind returns the kind of the next token without reading it, or 0 if
// there is none or it cannot be told; the error, if any, is returned by the
// next read call.
func (d *Decoder) PeekKind() Kind {
	if d.peeked {
		return d.peekKind
	}
	return d.peek()
}

// peek finds the next token and caches where it is and its kind; on an
// error, d.err is set and d.peeked is not.
func (d *Decoder) peek() Kind {
	// Fast path: compact JSON, the token right there or after a comma or
	// colon, in the buffer.
	if i := d.pos; i+1 < len(d.buf) {
		c := d.buf[i]
		var delim byte
		if c == ',' || c == ':' {
			delim = c
			i++
			c = d.buf[i]
		}
		if k := normKind[c]; k != 0 && delimBefore[d.st&7][c] == delim {
			d.pos, d.peeked, d.peekKind = i, true, k
			return k
		}
	}
	i, k, err := d.next()
	if err != nil {
		return 0
	}
	d.pos, d.peeked, d.peekKind = i, true, k
	return k
}

// delimBefore is needDelim by container state and first byte of the token.
var delimBefore = func() (t [8][256]byte) {
	var d Decoder
	for st := range stObjMore + 1 {
		d.st = uint8(st)
		for c := range t[st] {
			t[st][c] = d.needDelim(normKind[c])
		}
	}
	return t
}()

// ReadToken reads the next token. At the end of the stream, between
// top-level values, it returns io.EOF.
func (d *Decoder) ReadToken() (Token, error) {
	if !d.peeked {
		d.peek()
		if !d.peeked {
			return Token{}, d.err
		}
	}
	d.peeked = false
	i, k := d.pos, d.peekKind
	switch k {
	case '"':
		moved, end, err := d.scanString(i, i)
		if err != nil {
			return Token{}, d.fail(err)
		}
		start := i - moved
		raw := d.buf[start:end:end]
		if d.atName() {
			if err := d.name(raw, len(d.stack), start); err != nil {
				return Token{}, d.fail(err)
			}
			d.st = stObjName
		} else {
			d.done()
		}
		d.pos = end
		return Token{kind: '"', raw: raw}, nil
	case '0', 'n', 't', 'f':
		if d.atName() {
			return Token{}, d.fail(d.syntax(i, errNonString))
		}
		var moved, end int
		var err error
		if k == '0' {
			moved, end, err = d.scanNumber(i, i)
		} else {
			moved, end, err = d.scanLiteral(i, i)
		}
		if err != nil {
			return Token{}, d.fail(err)
		}
		start := i - moved
		d.done()
		d.pos = end
		if k == '0' {
			return Token{kind: '0', raw: d.buf[start:end:end]}, nil
		}
		return Token{kind: k}, nil
	case '{', '[':
		if d.atName() {
			return Token{}, d.fail(d.syntax(i, errNonString))
		}
		if len(d.stack) == maxDepth {
			return Token{}, d.fail(d.syntax(i, errDepth))
		}
		d.done()
		d.stack = append(d.stack, d.st)
		if k == '{' {
			d.st = stObjEmpty
			if !d.allowDup {
				d.set(len(d.stack)).reset()
			}
		} else {
			d.st = stArrEmpty
		}
		d.pos = i + 1
		return Token{kind: k}, nil
	case '}', ']':
		switch {
		case d.st == stObjName:
			return Token{}, d.fail(d.syntax(i, errMissing))
		case k == '}' && d.st != stObjEmpty && d.st != stObjMore,
			k == ']' && d.st != stArrEmpty && d.st != stArrMore:
			return Token{}, d.fail(d.syntax(i, errMismatch))
		}
		d.st = d.stack[len(d.stack)-1]
		d.stack = d.stack[:len(d.stack)-1]
		d.pos = i + 1
		return Token{kind: k}, nil
	}
	return Token{}, d.fail(d.syntax(i, errChar))
}

// ReadValue reads the next value whole and returns its bytes, valid until
// the next call. It fails at the end of an object or array.
func (d *Decoder) ReadValue() ([]byte, error) {
	if !d.peeked {
		d.peek()
		if !d.peeked {
			return nil, d.err
		}
	}
	d.peeked = false
	i, k := d.pos, d.peekKind
	// Fast path: a string without escapes or non-ASCII bytes, closed in
	// the buffer.
	if k == '"' {
		b := d.buf
		if j := plainRun(b, i+1); j < len(b) && b[j] == '"' {
			raw := b[i : j+1 : j+1]
			if st := d.st; st == stObjEmpty || st == stObjMore {
				if !d.allowDup {
					if err := d.name(raw, len(d.stack), i); err != nil {
						return nil, d.fail(err)
					}
				}
				d.st = stObjName
			} else {
				d.st = afterValue[st&7]
			}
			d.pos = j + 1
			return raw, nil
		}
	}
	name := d.atName()
	var start, end, moved int
	var err error
	switch k {
	case '"':
		moved, end, err = d.scanString(i, i)
		start = i - moved
		if err == nil && name {
			err = d.name(d.buf[start:end], len(d.stack), start)
		}
	case '0', 'n', 't', 'f', '{', '[':
		if name {
			return nil, d.fail(d.syntax(i, errNonString))
		}
		switch k {
		case '0':
			moved, end, err = d.scanNumber(i, i)
			start = i - moved
		case '{', '[':
			start, end, err = d.scanContainer(i)
		default:
			moved, end, err = d.scanLiteral(i, i)
			start = i - moved
		}
	default:
		return nil, d.fail(d.syntax(i, errChar))
	}
	if err != nil {
		return nil, d.fail(err)
	}
	if name {
		d.st = stObjName
	} else {
		d.done()
	}
	d.pos = end
	return d.buf[start:end:end], nil
}

// ReadNameIf reads the next token if it is an object member name spelled
// byte for byte as name, and reports whether it did; otherwise it reads
// nothing. name must be a quoted name this decoder has returned before, so
// that the same bytes are known to be a valid string token: a caller that
// expects the names of earlier objects again compares them without the
// string being scanned once more.
func (d *Decoder) ReadNameIf(name []byte) bool {
	if !d.peeked {
		d.peek()
		if !d.peeked {
			return false
		}
	}
	i := d.pos
	if d.peekKind != '"' || !d.atName() || len(d.buf)-i < len(name) || string(d.buf[i:i+len(name)]) != string(name) {
		return false
	}
	if !d.allowDup {
		if err := d.name(d.buf[i:i+len(name)], len(d.stack), i); err != nil {
			d.fail(err)
			return false
		}
	}
	d.st = stObjName
	j := i + len(name)
	// In compact JSON the colon and the value follow at once: peek the
	// value here, as peek would (after a name and its colon, peek takes
	// any token and ReadToken refuses a closing one).
	if j+1 < len(d.buf) && d.buf[j] == ':' {
		if k := normKind[d.buf[j+1]]; k != 0 {
			d.pos, d.peekKind = j+1, k
			return true
		}
	}
	d.peeked = false
	d.pos = j
	return true
}

// SkipValue reads the next value and drops it, with ReadValue's checks.
func (d *Decoder) SkipValue() error {
	_, err := d.ReadValue()
	return err
}

// The scanners below take keep, the start of what must stay in the buffer
// if it is refilled (the token itself, or the value that contains it), and
// return by how much positions moved down meanwhile along with the end of
// what they scanned, in the new positions.

// scanLiteral scans null, true or false starting at buf[i].
func (d *Decoder) scanLiteral(keep, i int) (int, int, error) {
	var lit string
	switch d.buf[i] {
	case 'n':
		lit = "null"
	case 't':
		lit = "true"
	default:
		lit = "false"
	}
	moved := 0
	for {
		b := d.buf[i:]
		n := min(len(b), len(lit))
		for j := range n {
			if b[j] != lit[j] {
				return 0, 0, d.syntax(i+j, errLiteral)
			}
		}
		if n == len(lit) {
			return moved, i + n, nil
		}
		shift, err := d.more(keep)
		keep, i, moved = keep-shift, i-shift, moved+shift
		if err != nil {
			return 0, 0, d.eofErr(len(d.buf), err)
		}
	}
}

// Number scanner states; the ones marked final may end the number.
const (
	numSign    = iota // at the start: '-' or a digit
	numInt0           // after '-': a digit
	numZero           // after a leading 0 (final)
	numInt            // in integer digits (final)
	numFrac0          // after '.': a digit
	numFrac           // in fraction digits (final)
	numExp0           // after 'e': a sign or a digit
	numExpSign        // after the exponent sign: a digit
	numExp            // in exponent digits (final)
)

// scanNumber scans a number starting at buf[i]. A number ends at the first
// byte that cannot continue it; that byte is left for the next token.
func (d *Decoder) scanNumber(keep, i int) (int, int, error) {
	j, state, moved := i, numSign, 0
	for {
		buf := d.buf
	scan:
		for j < len(buf) {
			c := buf[j]
			switch state {
			case numSign:
				switch {
				case c == '-':
					state = numInt0
				case c == '0':
					state = numZero
				default:
					state = numInt
				}
			case numInt0:
				switch {
				case c == '0':
					state = numZero
				case '1' <= c && c <= '9':
					state = numInt
				default:
					return 0, 0, d.syntax(j, errNumber)
				}
			case numZero, numInt:
				if state == numInt {
					for j < len(buf) && '0' <= buf[j] && buf[j] <= '9' {
						j++
					}
					if j == len(buf) {
						break scan
					}
					c = buf[j]
				}
				switch c {
				case '.':
					state = numFrac0
				case 'e', 'E':
					state = numExp0
				default:
					return moved, j, nil
				}
			case numFrac0, numExpSign:
				if c < '0' || c > '9' {
					return 0, 0, d.syntax(j, errNumber)
				}
				state++
			case numExp0:
				switch {
				case c == '+' || c == '-':
					state = numExpSign
				case '0' <= c && c <= '9':
					state = numExp
				default:
					return 0, 0, d.syntax(j, errNumber)
				}
			case numFrac, numExp:
				for j < len(buf) && '0' <= buf[j] && buf[j] <= '9' {
					j++
				}
				if j == len(buf) {
					break scan
				}
				if state == numFrac && (buf[j] == 'e' || buf[j] == 'E') {
					state = numExp0
				} else {
					return moved, j, nil
				}
			}
			j++
		}
		shift, err := d.more(keep)
		keep, j, moved = keep-shift, j-shift, moved+shift
		if err != nil {
			if err == io.EOF && (state == numZero || state == numInt || state == numFrac || state == numExp) {
				return moved, j, nil
			}
			return 0, 0, d.eofErr(j, err)
		}
	}
}

// special reports, for 8 bytes loaded little-endian, which bytes need a
// closer look in a string: '"', '\\', control characters and non-ASCII
// bytes. Subtracting 1 from a byte XORed with '"' or '\\' sets its top bit
// when it was that character, or when it was not ASCII (flagged anyway);
// subtracting 0x20 does when it was a control character. A borrow only runs
// upward from a flagged byte, so the lowest flagged byte is exact; higher
// ones may be false alarms.
func special(x uint64) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	q := (x ^ (lo * '"')) - lo
	b := (x ^ (lo * '\\')) - lo
	c := x - lo*0x20
	return (q | b | c | x) & hi
}

// plainRun returns the index of the first byte from b[j] on that is not
// plain string content, or len(b).
func plainRun(b []byte, j int) int {
	for j+16 <= len(b) {
		m1 := special(binary.LittleEndian.Uint64(b[j:]))
		m2 := special(binary.LittleEndian.Uint64(b[j+8:]))
		if m1|m2 != 0 {
			if m1 != 0 {
				return j + bits.TrailingZeros64(m1)>>3
			}
			return j + 8 + bits.TrailingZeros64(m2)>>3
		}
		j += 16
	}
	for j+8 <= len(b) {
		if m := special(binary.LittleEndian.Uint64(b[j:])); m != 0 {
			return j + bits.TrailingZeros64(m)>>3
		}
		j += 8
	}
	for j < len(b) && stringSafe[b[j]] {
		j++
	}
	return j
}

// stringSafe marks the bytes that need no attention inside a string.
var stringSafe = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString scans a string whose opening quote is at buf[i].
func (d *Decoder) scanString(keep, i int) (int, int, error) {
	j, moved := i+1, 0
	for {
		buf := d.buf
		j = plainRun(buf, j)
		if j < len(buf) {
			c := buf[j]
			switch {
			case c == '"':
				return moved, j + 1, nil
			case c == '\\':
				n, err := escape(buf[j:])
				if err != nil {
					return 0, 0, d.syntax(j, err)
				}
				if n > 0 {
					j += n
					continue
				}
			case c < 0x20:
				return 0, 0, d.syntax(j, errControl)
			default:
				n := utf8Len(buf[j:])
				if n < 0 {
					return 0, 0, d.syntax(j, errUTF8)
				}
				if n > 0 {
					j += n
					continue
				}
			}
		}
		// The string, or an escape or UTF-8 sequence in it, goes on past
		// the buffer.
		shift, err := d.more(keep)
		keep, j, moved = keep-shift, j-shift, moved+shift
		if err != nil {
			return 0, 0, d.eofErr(j, err)
		}
	}
}

// escape checks the escape sequence at the start of b and returns its
// length, or 0 if b ends before it can tell.
func escape(b []byte) (int, error) {
	if len(b) < 2 {
		return 0, nil
	}
	switch b[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, nil
	case 'u':
	default:
		return 0, errEscape
	}
	v, ok, short := hex4(b[2:])
	if !ok {
		if short {
			return 0, nil
		}
		return 0, errEscape
	}
	if v < 0xd800 || v > 0xdfff {
		return 6, nil
	}
	// A surrogate half must be a high one followed by an escaped low one.
	if v >= 0xdc00 {
		return 0, errEscape
	}
	rest := b[6:]
	for i, c := range []byte{'\\', 'u'} {
		if i >= len(rest) {
			return 0, nil
		}
		if rest[i] != c {
			return 0, errEscape
		}
	}
	w, ok, short := hex4(rest[2:])
	if !ok {
		if short {
			return 0, nil
		}
		return 0, errEscape
	}
	if w < 0xdc00 || w > 0xdfff {
		return 0, errEscape
	}
	return 12, nil
}

// hex4 decodes four hex digits at the start of b; short reports that b ends
// before a bad digit could be seen.
func hex4(b []byte) (v rune, ok, short bool) {
	for i := range 4 {
		if i >= len(b) {
			return 0, false, true
		}
		c := b[i]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false, false
		}
		v = v<<4 | rune(c)
	}
	return v, true, false
}

// utf8Len returns the length of the valid UTF-8 sequence of two or more
// bytes at the start of b, 0 if b ends before it can tell, or -1 if it is
// not valid (overlong forms, surrogates and values past U+10FFFF are not).
func utf8Len(b []byte) int {
	c := b[0]
	var n int
	lo, hi := byte(0x80), byte(0xbf) // range of the second byte
	switch {
	case c >= 0xc2 && c <= 0xdf:
		n = 2
	case c == 0xe0:
		n, lo = 3, 0xa0
	case c >= 0xe1 && c <= 0xec, c == 0xee, c == 0xef:
		n = 3
	case c == 0xed:
		n, hi = 3, 0x9f
	case c == 0xf0:
		n, lo = 4, 0x90
	case c >= 0xf1 && c <= 0xf3:
		n = 4
	case c == 0xf4:
		n, hi = 4, 0x8f
	default:
		return -1
	}
	for k := 1; k < n; k++ {
		if k >= len(b) {
			return 0
		}
		if k == 1 && (b[1] < lo || b[1] > hi) || k > 1 && (b[k] < 0x80 || b[k] > 0xbf) {
			return -1
		}
	}
	return n
}

// scanContainer scans an object or array starting at buf[i], which the
// current state allows there, checking everything inside it. It returns
// where the value starts and ends after any refill.
func (d *Decoder) scanContainer(i int) (int, int, error) {
	start, j := i, i
	d.vstack = d.vstack[:0]
	var err error
value: // a value starts at buf[j]
	for {
		if c := d.buf[j]; c == '{' || c == '[' {
			if len(d.stack)+len(d.vstack) == maxDepth {
				return 0, 0, d.syntax(j, errDepth)
			}
			d.vstack = append(d.vstack, c)
			if c == '{' && !d.allowDup {
				d.set(len(d.stack) + len(d.vstack)).reset()
			}
			if j, err = d.skipSpace(&start, j+1); err != nil {
				return 0, 0, err
			}
			if d.buf[j] != c+2 { // not at once '}' or ']'
				if c == '{' {
					if j, err = d.member(&start, j); err != nil {
						return 0, 0, err
					}
				}
				continue value
			}
			j++
			d.vstack = d.vstack[:len(d.vstack)-1]
		} else {
			var moved, e int
			switch c {
			case '"':
				moved, e, err = d.scanString(start, j)
			case 'n', 't', 'f':
				moved, e, err = d.scanLiteral(start, j)
			case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
				moved, e, err = d.scanNumber(start, j)
			default:
				return 0, 0, d.syntax(j, errChar)
			}
			if err != nil {
				return 0, 0, err
			}
			start, j = start-moved, e
		}
		// After a value: close containers, or go on to the next element.
		for len(d.vstack) > 0 {
			if j, err = d.skipSpace(&start, j); err != nil {
				return 0, 0, err
			}
			c := d.vstack[len(d.vstack)-1]
			switch d.buf[j] {
			case ',':
				if j, err = d.skipSpace(&start, j+1); err != nil {
					return 0, 0, err
				}
				if c == '{' {
					if j, err = d.member(&start, j); err != nil {
						return 0, 0, err
					}
				}
				continue value
			case c + 2:
				j++
				d.vstack = d.vstack[:len(d.vstack)-1]
			default:
				return 0, 0, d.syntax(j, errDelim)
			}
		}
		return start, j, nil
	}
}

// skipSpace skips whitespace from buf[j] inside a value that starts at
// *start, refilling; the value cannot end there, so the end of the input
// is an error.
func (d *Decoder) skipSpace(start *int, j int) (int, error) {
	for {
		for j < len(d.buf) && isSpace(d.buf[j]) {
			j++
		}
		if j < len(d.buf) {
			return j, nil
		}
		shift, err := d.more(*start)
		*start, j = *start-shift, j-shift
		if err != nil {
			return 0, d.eofErr(j, err)
		}
	}
}

// member scans a member name at buf[j] and the colon after it, inside a
// value that starts at *start; it returns where the member's value starts.
func (d *Decoder) member(start *int, j int) (int, error) {
	if d.buf[j] != '"' {
		return 0, d.syntax(j, errNonString)
	}
	moved, e, err := d.scanString(*start, j)
	if err != nil {
		return 0, err
	}
	*start -= moved
	if err := d.name(d.buf[j-moved:e], len(d.stack)+len(d.vstack), j-moved); err != nil {
		return 0, err
	}
	if j, err = d.skipSpace(start, e); err != nil {
		return 0, err
	}
	if d.buf[j] != ':' {
		return 0, d.syntax(j, errDelim)
	}
	return d.skipSpace(start, j+1)
}

// set returns the name set of the object at depth (1 for a top-level one).
func (d *Decoder) set(depth int) *nameSet {
	for len(d.sets) <= depth {
		d.sets = append(d.sets, nameSet{})
	}
	return &d.sets[depth]
}

// name records the quoted member name raw (found at buf[pos]) of the object
// at depth, and refuses it if the object already had it.
func (d *Decoder) name(raw []byte, depth, pos int) error {
	if d.allowDup {
		return nil
	}
	uq := raw[1 : len(raw)-1]
	if bytes.IndexByte(uq, '\\') >= 0 {
		d.unq, _ = jsontext.AppendUnquote(d.unq[:0], raw)
		uq = d.unq
	}
	if !d.set(depth).insert(uq) {
		return d.syntax(pos, fmt.Errorf("%w %q", ErrDuplicateName, uq))
	}
	return nil
}

// mapAt is the member count from which a nameSet searches a map rather
// than its list, as jsontext does.
const mapAt = 64

// nameSet holds the unescaped names of one object seen so far.
type nameSet struct {
	buf  []byte
	ends []int
	big  map[string]struct{}
}

func (s *nameSet) reset() {
	s.buf, s.ends = s.buf[:0], s.ends[:0]
	if s.big != nil {
		clear(s.big)
	}
}

// insert adds name and reports whether it was new.
func (s *nameSet) insert(name []byte) bool {
	if len(s.ends) >= mapAt {
		if s.big == nil {
			s.big = make(map[string]struct{})
		}
		if len(s.big) == 0 {
			start := 0
			for _, end := range s.ends {
				s.big[string(s.buf[start:end])] = struct{}{}
				start = end
			}
		}
		if _, dup := s.big[string(name)]; dup {
			return false
		}
		s.big[string(name)] = struct{}{}
		s.ends = append(s.ends, len(s.buf)) // counts names; buf stops growing
		return true
	}
	start := 0
	for _, end := range s.ends {
		if string(s.buf[start:end]) == string(name) {
			return false
		}
		start = end
	}
	s.buf = append(s.buf, name...)
	s.ends = append(s.ends, len(s.buf))
	return true
}
