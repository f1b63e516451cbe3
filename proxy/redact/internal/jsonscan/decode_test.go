package jsonscan

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// splitReader hands out data in pieces whose sizes come from sizes, so that
// tokens, escapes and UTF-8 sequences straddle reads.
type splitReader struct {
	data  []byte
	sizes []byte
	k     int
	empty bool // the last Read returned nothing; jsontext retries forever, so the next one must not
	// eofWithData returns io.EOF along with the last piece.
	eofWithData bool
	// end is returned once data runs out (io.EOF if nil).
	end error
}

var errBoom = errors.New("boom")

func (r *splitReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		if r.end != nil {
			return 0, r.end
		}
		return 0, io.EOF
	}
	n := 1
	if len(r.sizes) > 0 {
		s := r.sizes[r.k%len(r.sizes)]
		r.k++
		if s == 0xff && !r.empty {
			r.empty = true
			return 0, nil // a reader may return nothing and no error
		}
		r.empty = false
		n = int(s)%64 + 1
	}
	n = min(n, len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	if len(r.data) == 0 && r.eofWithData && r.end == nil {
		return n, io.EOF
	}
	return n, nil
}

// Flags of a differential run.
const (
	flagAllowDup   = 1 << iota
	flagOursBuffer // ours reads from a *bytes.Buffer
	flagRefBuffer  // jsontext reads from a *bytes.Buffer
	flagEOFWithData
	flagReadError // the input ends in a read error, not io.EOF
)

func newReader(data, sizes []byte, flags uint8, buffer bool) io.Reader {
	if buffer && flags&flagReadError == 0 {
		return bytes.NewBuffer(bytes.Clone(data))
	}
	r := &splitReader{data: data, sizes: sizes, eofWithData: flags&flagEOFWithData != 0}
	if flags&flagReadError != 0 {
		r.end = errBoom
	}
	return r
}

// Operations of a call program.
const (
	opPeek = iota
	opToken
	opValue
	opSkip
	opNameIf // ReadNameIf with the last name ours read
	numOps
)

// differential runs the call program prog (cycled) on both decoders over
// data until both fail, and reports the first disagreement. Decoding stops
// at the first error: jsontext leaves some errors retryable while ours are
// final, and no caller of ours reads on after an error.
func differential(data, prog, sizes []byte, flags uint8) error {
	allow := flags&flagAllowDup != 0
	ref := jsontext.NewDecoder(newReader(data, sizes, flags, flags&flagRefBuffer != 0), jsontext.AllowDuplicateNames(allow))
	ours := NewDecoder(newReader(data, sizes, flags, flags&flagOursBuffer != 0), allow)
	if len(prog) == 0 {
		prog = []byte{opPeek, opToken, opPeek, opValue}
	}
	steps := 4*len(data) + 16
	var lastName []byte
	for n := range steps {
		op := prog[n%len(prog)] % numOps
		var rerr, oerr error
		atName := ours.PeekKind() == '"' && ours.atName()
		switch op {
		case opPeek:
			rk, ok := ref.PeekKind(), ours.PeekKind()
			if byte(rk) != byte(ok) {
				return fmt.Errorf("step %d PeekKind: jsontext %v, ours %v", n, rk, ok)
			}
			continue
		case opToken:
			var rt jsontext.Token
			var ot Token
			rt, rerr = ref.ReadToken()
			ot, oerr = ours.ReadToken()
			if oerr == nil && atName {
				lastName = append(lastName[:0], ot.raw...)
			}
			if rerr == nil && oerr == nil {
				if byte(rt.Kind()) != byte(ot.Kind()) || rt.String() != ot.String() {
					return fmt.Errorf("step %d ReadToken: jsontext %v %q, ours %v %q", n, rt.Kind(), rt.String(), ot.Kind(), ot.String())
				}
			}
		case opValue:
			var rv jsontext.Value
			var ov []byte
			rv, rerr = ref.ReadValue()
			ov, oerr = ours.ReadValue()
			if rerr == nil && oerr == nil && !bytes.Equal(rv, ov) {
				return fmt.Errorf("step %d ReadValue: jsontext %q, ours %q", n, rv, ov)
			}
			if oerr == nil && atName {
				lastName = append(lastName[:0], ov...)
			}
		case opNameIf:
			if lastName == nil {
				continue
			}
			if !ours.ReadNameIf(lastName) {
				// Nothing read: the next token is compared by later
				// calls, or ours has failed, as PeekKind would.
				if ours.err != nil {
					oerr = ours.err
					_, rerr = ref.ReadToken()
					break
				}
				continue
			}
			var rt jsontext.Token
			rt, rerr = ref.ReadToken()
			if rerr != nil || rt.Kind() != '"' || rt.String() != string(unquoteName(lastName)) {
				return fmt.Errorf("step %d ReadNameIf(%s): jsontext %v %q, %v", n, lastName, rt.Kind(), rt.String(), rerr)
			}
		case opSkip:
			rerr, oerr = ref.SkipValue(), ours.SkipValue()
		}
		if (rerr == nil) != (oerr == nil) || errors.Is(rerr, io.EOF) != errors.Is(oerr, io.EOF) {
			return fmt.Errorf("step %d op %d: jsontext error %v, ours %v", n, op, rerr, oerr)
		}
		if rerr != nil {
			// Ours stays failed.
			if ours.PeekKind() != 0 {
				return fmt.Errorf("step %d: PeekKind after error %v is not 0", n, oerr)
			}
			if _, err := ours.ReadValue(); err == nil {
				return fmt.Errorf("step %d: ReadValue after error %v succeeded", n, oerr)
			}
			return nil
		}
	}
	return nil
}

func unquoteName(raw []byte) []byte {
	b, err := jsontext.AppendUnquote(nil, raw)
	if err != nil {
		panic(err)
	}
	return b
}

// diffSeeds are documents, valid and not, that the differential test and
// the fuzz corpus start from.
func diffSeeds() []string {
	seeds := []string{
		``, ` `, `null`, `true`, `false`, `0`, `-0`, `1`, `-1`, `123`, `1.5`, `-1.5e10`, `1E+2`, `1e-2`, `0.0e0`,
		`""`, `"abc"`, `"a\"b\\c\/d\b\f\n\r\t"`, `"\u0041\u00e9\u20ac"`, `"\ud83d\ude00"`, `"\uD83D\uDE00"`,
		`"héllo wörld ✓ 😀"`, `"a long string without any escapes at all, scanned eight bytes at a time"`,
		`"\u0000"`, `"\uFFFF"`, "\"\xef\xbf\xbd\"", "\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\xf3\xbf\xbf\xbf\"",
		`{}`, `[]`, `{ }`, `[ ]`, " \t\r\n{ \"a\" : 1 , \"b\" : [ true , false , null ] }\n",
		`{"a":1,"b":{"c":[1,2,{"d":"e"}]},"f":[],"g":{}}`, `["12345678901","x"]`,
		`[1,[2,[3,[4]]],{"x":{"y":{"z":null}}}]`,
		`1 2 3`, `{}{}`, `[][]`, `"a""b"`, `truefalse`, `nulltrue`, `01`, `-01`, `1x`, `1 ,2`, `1,2`, `[1:2]`,
		`{"a":1}{"a":1}`, `{"a":{"a":{"a":1}}}`, `[{"a":1},{"a":2}]`, `{"a":1,"b":2,"c":3}`,
		// Duplicate names, plain and escaped, at several depths.
		`{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"\u0061":1,"a":2}`, `{"x":{"a":1,"a":2}}`, `[{"a":1,"a":2}]`,
		`{"a":{"b":1},"a":2}`, `{"a":{"b":1,"b":2}}`, `{"é":1,"\u00e9":2}`, `{"":1,"":2}`, `{"a\\":1,"a\u005c":2}`,
		`{"a":1,"b":{"a":1},"c":[{"a":1}]}`,
		// Bad UTF-8.
		"\"\xff\"", "\"\x80\"", "\"\xc0\x80\"", "\"\xc1\xbf\"", "\"\xc2\"", "\"\xc2x\"", "\"\xe0\x80\x80\"", "\"\xed\xa0\x80\"",
		"\"\xe1\x80\"", "\"\xe1\x80x\"", "\"\xf0\x80\x80\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xf5\x80\x80\x80\"", "\"\xf1\x80\x80x\"",
		"{\"\xff\":1}", "[\"ok\",\"\xfe\"]",
		// Surrogates and escapes.
		`"\ud800"`, `"\udc00"`, `"\ud800\u0041"`, `"\ud800\ud800"`, `"\ud800x"`, `"\ud800\x"`, `"\ud800\"`, `"\ud800\u12"`,
		`"\ud800\udbff"`, `"\udfff\udc00"`, `"\ud800\uzzzz"`, `"\ud800\u`, `"\ud800\`, `"\ud800`, `"\udbff\udfff"`,
		`"\x"`, `"\a"`, `"\u12"`, `"\u12G4"`, `"\u"`, `"\`, `"\u00`, `"\'"`, `"\U0041"`, `"\ua"`, `"\uAbCd"`,
		// Control characters and unterminated strings.
		"\"a\x00b\"", "\"a\nb\"", "\"\t\"", "\"\x1f\"", "\"\x7f\"", `"abc`, `"`, `{"a`, `{"a":"b`,
		// Numbers.
		`-`, `1.`, `.5`, `1e`, `1e+`, `1E-`, `+1`, `00`, `1.e5`, `-.5`, `1.5e`, `0x10`, `1.2.3`, `1e5e5`, `-a`, `1ee`, `1.x`, `1e+x`,
		`[-]`, `[1.]`, `[1e]`, `{"a":-}`, `{"a":01}`, `123456789012345678901234567890`, `1.0000000000000000000001e-400`,
		// Literals.
		`nul`, `nulx`, `tru`, `truE`, `fals`, `falsy`, `n`, `t`, `f`, `NULL`, `True`, `[nul]`, `{"a":tru}`, `[nullx]`,
		// Structure.
		`[1,]`, `{"a":1,}`, `[,1]`, `{,"a":1}`, `[1 2]`, `{"a":1 "b":2}`, `{"a" 1}`, `{"a"}`, `{"a":}`, `{"a"::1}`,
		`{1:2}`, `{null:1}`, `{true:1}`, `{[]:1}`, `{{}:1}`, `{"a":1:2}`, `[1}`, `{"a":1]`, `[}`, `{]`, `}`, `]`, `[`, `{`,
		`[[]`, `[[]]]`, `{"a":{}`, `{"a":{}}}`, `:`, `,`, `,1`, `1,`, `[1,`, `{"a":1,`, `{"a":`, `{"a" `, `[1 `, `{"a":1 `,
		`x`, `[x]`, `{"a":x}`, `[1,x]`, `'a'`, `[1;2]`, "\v1", "\f1", "\u00a01", "1\x00", `/**/1`, `[1]x`, "[\"a\"\x00]",
	}
	// Nesting at the limit and one past it, as arrays and as objects.
	seeds = append(seeds,
		strings.Repeat("[", maxDepth)+strings.Repeat("]", maxDepth),
		strings.Repeat("[", maxDepth+1)+strings.Repeat("]", maxDepth+1),
		strings.Repeat(`{"a":`, maxDepth)+"1"+strings.Repeat("}", maxDepth),
		strings.Repeat(`{"a":`, maxDepth+1)+"1"+strings.Repeat("}", maxDepth+1),
		strings.Repeat(`[{"a":`, maxDepth/2)+"1"+strings.Repeat("}]", maxDepth/2),
		`[`+strings.Repeat(`[{"a":`, maxDepth/2)+"1"+strings.Repeat("}]", maxDepth/2)+`]`,
	)
	// An object big enough for the name set to switch to a map, with and
	// without a duplicate past that point.
	var big, bigDup strings.Builder
	big.WriteString("{")
	for i := range 100 {
		if i > 0 {
			big.WriteString(",")
		}
		fmt.Fprintf(&big, `"k%d":%d`, i, i)
	}
	bigDup.WriteString(big.String() + `,"k\u0037":1}`)
	big.WriteString("}")
	seeds = append(seeds, big.String(), bigDup.String(), `[`+big.String()+`,`+big.String()+`]`)
	// A value longer than a read chunk, so that reading it whole grows the
	// buffer, and long runs of whitespace and digits.
	seeds = append(seeds,
		`["`+strings.Repeat("x", 3*chunk)+`",`+strings.Repeat("1", chunk)+`]`,
		`{"a":"`+strings.Repeat("é", chunk)+`"}`,
		strings.Repeat(" ", 2*chunk)+`1`+strings.Repeat(" ", 2*chunk),
		`[`+strings.Repeat(`{"a":"b"},`, chunk/4)+`1]`,
	)
	return seeds
}

// programs are call programs every seed is run with.
var programs = [][]byte{
	{opPeek, opToken},                    // token by token
	{opValue},                            // value by value
	{opSkip},                             // skipping
	{opPeek, opToken, opPeek, opValue},   // the walker's mix: delimiters as tokens, the rest whole
	{opToken, opToken, opValue, opSkip},  // names as tokens
	{opToken, opValue, opPeek, opToken},  // mixed
	{opToken, opSkip, opToken, opPeek},   // mixed
	{opPeek, opPeek, opValue, opToken},   // peek twice
	{opToken, opToken, opToken, opValue}, // mixed
	{opPeek, opNameIf, opToken},          // names known from the object before
	{opNameIf, opValue, opNameIf, opToken, opToken},
}

// splits are read-size patterns: whole chunks, single bytes, odd sizes and
// empty reads.
var splits = [][]byte{nil, {0}, {2, 0, 6}, {0xff, 4, 0xff, 0}, {63}, {1, 2, 3, 5, 8, 13}}

func TestDifferential(t *testing.T) {
	for i, s := range diffSeeds() {
		for pi, prog := range programs {
			for si, sizes := range splits {
				if len(s) > 1000 && si == 1 {
					continue // long inputs byte by byte take long; the fuzz test mixes splits
				}
				// Every seed runs with both duplicate settings; the other
				// flags rotate so that each meets every program and split.
				base := uint8(i+3*pi+7*si) % 32 &^ flagAllowDup
				for _, flags := range []uint8{base, base | flagAllowDup} {
					if err := differential([]byte(s), prog, sizes, flags); err != nil {
						t.Fatalf("input %.80q prog %v split %v flags %05b: %v", s, prog, sizes, flags, err)
					}
				}
			}
		}
	}
}

// TestDifferentialRandom runs random documents with random programs and
// splits, a short fuzz run that needs no fuzzing engine.
func TestDifferentialRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	seeds := diffSeeds()
	n := 5000
	if testing.Short() {
		n = 1000
	}
	for range n {
		s := []byte(seeds[rng.IntN(len(seeds))])
		if len(s) > 2000 {
			continue
		}
		// Mutate: flip, insert or delete a few bytes.
		for range rng.IntN(4) {
			if len(s) == 0 {
				break
			}
			i := rng.IntN(len(s))
			switch rng.IntN(3) {
			case 0:
				s[i] = "{}[],:\"\\ 0-.eEu1aé\x00\xff"[rng.IntN(20)]
			case 1:
				s = append(s[:i], append([]byte{byte(rng.IntN(256))}, s[i:]...)...)
			default:
				s = append(s[:i], s[i+1:]...)
			}
		}
		prog := make([]byte, 1+rng.IntN(8))
		for i := range prog {
			prog[i] = byte(rng.IntN(256))
		}
		sizes := make([]byte, rng.IntN(4))
		for i := range sizes {
			sizes[i] = byte(rng.IntN(256))
		}
		flags := uint8(rng.IntN(32))
		if err := differential(s, prog, sizes, flags); err != nil {
			t.Fatalf("input %q prog %v split %v flags %05b: %v", s, prog, sizes, flags, err)
		}
	}
}

func FuzzDifferential(f *testing.F) {
	for _, s := range diffSeeds() {
		if len(s) > 4096 {
			continue // the engine's input limit keeps these out; TestDifferential has them
		}
		for i, prog := range programs {
			f.Add([]byte(s), prog, splits[i%len(splits)], uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, data, prog, sizes []byte, flags uint8) {
		if err := differential(data, prog, sizes, flags); err != nil {
			t.Fatal(err)
		}
	})
}

// TestReaderError checks that a failing reader is reported, not taken for
// the end of the input, and that the failure is final.
func TestReaderError(t *testing.T) {
	for _, in := range []string{``, `1`, `[1,2`, `{"a":"b`, `"x`} {
		d := NewDecoder(&splitReader{data: []byte(in), end: errBoom}, false)
		var err error
		for range 10 {
			if _, err = d.ReadToken(); err != nil {
				break
			}
		}
		if !errors.Is(err, errBoom) {
			t.Errorf("%q: got %v, want the reader's error", in, err)
		}
		if _, err2 := d.ReadValue(); !errors.Is(err2, errBoom) {
			t.Errorf("%q: after the error, ReadValue returned %v", in, err2)
		}
	}
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

// TestNoProgress checks that a reader that never returns data nor an
// error does not hang the decoder.
func TestNoProgress(t *testing.T) {
	d := NewDecoder(emptyReader{}, false)
	if _, err := d.ReadToken(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("got %v, want io.ErrNoProgress", err)
	}
}

// TestResetReuse checks that a decoder reset mid-stream starts afresh,
// including its duplicate setting and after reading from a bytes.Buffer
// (whose contents it must not write to).
func TestResetReuse(t *testing.T) {
	d := NewDecoder(strings.NewReader(`{"a":[1,{"b":`), false)
	for range 5 {
		if _, err := d.ReadToken(); err != nil {
			t.Fatal(err)
		}
	}
	src := []byte(`{"a":1,"a":2}`)
	bb := bytes.NewBuffer(src)
	d.Reset(bb, true)
	v, err := d.ReadValue()
	if err != nil || string(v) != `{"a":1,"a":2}` {
		t.Fatalf("after Reset: %q %v", v, err)
	}
	if _, err := d.ReadToken(); err != io.EOF {
		t.Fatalf("want io.EOF, got %v", err)
	}
	if string(src) != `{"a":1,"a":2}` {
		t.Fatalf("decoder wrote to the bytes.Buffer's contents: %q", src)
	}
	d.Reset(strings.NewReader(`{"a":1,"a":2}`), false)
	if _, err = d.ReadValue(); !errors.Is(err, ErrDuplicateName) {
		t.Fatalf("Reset did not restore the duplicate check: %v", err)
	}
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("not a SyntaxError: %T", err)
	}
}

// TestErrorOffset checks that a syntax error names where it is.
func TestErrorOffset(t *testing.T) {
	d := NewDecoder(&splitReader{data: []byte(`[1, 2, "a` + "\x01" + `"]`), sizes: []byte{2}}, false)
	_, err := d.ReadValue()
	var se *SyntaxError
	if !errors.As(err, &se) || se.Offset != 9 {
		t.Fatalf("got %v, want a SyntaxError at offset 9", err)
	}
	if !strings.Contains(err.Error(), "offset 9") {
		t.Fatalf("message %q lacks the offset", err)
	}
}

// TestTokenWalkBounded checks that walking a large array token by token
// keeps the buffer at one read chunk, and that reading one value whole
// holds no more than that value and a chunk.
func TestTokenWalkBounded(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("[")
	for i := range 100000 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"record %d"}`, i, i)
	}
	b.WriteString("]")
	body := b.Bytes()
	d := NewDecoder(bytes.NewReader(body), false)
	if err := walkOurs(d); err != nil {
		t.Fatal(err)
	}
	if cap(d.buf) > 2*chunk {
		t.Fatalf("token walk of %d bytes grew the buffer to %d", len(body), cap(d.buf))
	}
	d.Reset(bytes.NewReader(body), false)
	v, err := d.ReadValue()
	if err != nil || len(v) != len(body) {
		t.Fatalf("ReadValue: %d bytes, %v", len(v), err)
	}
	if cap(d.buf) > 2*(len(body)+chunk) {
		t.Fatalf("reading %d bytes whole grew the buffer to %d", len(body), cap(d.buf))
	}
	d.Reset(bytes.NewReader(body), false)
	if cap(d.buf) > maxKeep {
		t.Fatalf("Reset kept a %d-byte buffer", cap(d.buf))
	}
}

// TestTokenString checks Token.String for every kind.
func TestTokenString(t *testing.T) {
	d := NewDecoder(strings.NewReader(`[null,true,false,"a\u00e9",-1.5e3,{}]`), false)
	var got []string
	for {
		tok, err := d.ReadToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, tok.String()+"/"+tok.Kind().String())
	}
	want := `[/[ null/null true/true false/false aé/string -1.5e3/number {/{ }/} ]/]`
	if strings.Join(got, " ") != want {
		t.Fatalf("got %q, want %q", strings.Join(got, " "), want)
	}
	if s := (Token{}).String(); s != "<invalid Token>" {
		t.Fatalf("zero Token: %q", s)
	}
	if Kind(0).String() != "invalid" || Kind('x').String() != `<invalid Kind 'x'>` {
		t.Fatalf("Kind.String: %q %q", Kind(0).String(), Kind('x').String())
	}
}

// TestReadNameIf checks that a known name is read only where it is the
// next token spelled the same, and that names read so are still checked for
// duplicates.
func TestReadNameIf(t *testing.T) {
	d := NewDecoder(strings.NewReader(`[{"a":1,"b":2},{"a":3,"c":4},{"\u0061":"a"}]`), true)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := d.ReadToken() // [
	must(err)
	_, err = d.ReadToken() // {
	must(err)
	a, err := d.ReadValue()
	must(err)
	a = bytes.Clone(a)
	if d.ReadNameIf(a) {
		t.Fatal("ReadNameIf read a value")
	}
	must(d.SkipValue())
	b, err := d.ReadValue()
	must(err)
	b = bytes.Clone(b)
	must(d.SkipValue())
	_, err = d.ReadToken() // }
	must(err)
	if d.ReadNameIf(a) {
		t.Fatal("ReadNameIf read a '{'")
	}
	_, err = d.ReadToken() // {
	must(err)
	if !d.ReadNameIf(a) {
		t.Fatal(`ReadNameIf did not read "a"`)
	}
	must(d.SkipValue())
	if d.ReadNameIf(b) {
		t.Fatal(`ReadNameIf read "c" as "b"`)
	}
	if c, err := d.ReadValue(); err != nil || string(c) != `"c"` {
		t.Fatalf(`got %q, %v; want "c"`, c, err)
	}
	must(d.SkipValue())
	_, err = d.ReadToken() // }
	must(err)
	_, err = d.ReadToken() // {
	must(err)
	if d.ReadNameIf(a) {
		t.Fatal(`ReadNameIf read "\u0061" as "a"`)
	}

	d = NewDecoder(strings.NewReader(`{"a":1,"a":2}`), false)
	_, err = d.ReadToken()
	must(err)
	a, err = d.ReadValue()
	must(err)
	a = bytes.Clone(a)
	must(d.SkipValue())
	if d.ReadNameIf(a) {
		t.Fatal("ReadNameIf read a duplicate name")
	}
	if _, err := d.ReadValue(); !errors.Is(err, ErrDuplicateName) {
		t.Fatalf("after a duplicate: %v, want ErrDuplicateName", err)
	}
}
