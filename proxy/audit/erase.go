package audit

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"
)

// eraser removes mask paths from a serialised input in one streaming pass:
// subtrees no mask path points into are copied as raw values, so the cost
// is close to a copy rather than a decode into maps and a re-encode (which
// measured several times slower). It is reused by the single writer
// goroutine and is not safe for concurrent use.
type eraser struct {
	paths []maskPath
	dec   jsontext.Decoder
	enc   jsontext.Encoder
	out   bytes.Buffer
	found []bool
}

// erase returns raw without the values at x.paths and the paths that were
// present, in configuration order, as OPA reports them.
func (x *eraser) erase(raw []byte) ([]byte, []string, error) {
	x.out.Reset()
	x.dec.Reset(bytes.NewReader(raw))
	x.enc.Reset(&x.out)
	if cap(x.found) < len(x.paths) {
		x.found = make([]bool, len(x.paths))
	}
	x.found = x.found[:len(x.paths)]
	clear(x.found)
	all := make([]int, len(x.paths))
	for i := range all {
		all[i] = i
	}
	if err := x.copyValue(all, 0); err != nil {
		return nil, nil, fmt.Errorf("erase mask paths: %w", err)
	}
	var erased []string
	for i, ok := range x.found {
		if ok {
			erased = append(erased, x.paths[i].raw)
		}
	}
	out := bytes.TrimRight(x.out.Bytes(), "\n")
	return bytes.Clone(out), erased, nil
}

// copyValue copies the next value, descending only where a candidate mask
// path (indices into x.paths whose first depth segments match) may lead.
func (x *eraser) copyValue(cands []int, depth int) error {
	switch x.dec.PeekKind() {
	case '{':
		if err := x.copyToken(); err != nil {
			return err
		}
		for x.dec.PeekKind() != '}' {
			name, err := x.dec.ReadToken()
			if err != nil {
				return err
			}
			if err := x.member(name.String(), &name, cands, depth); err != nil {
				return err
			}
		}
		return x.copyToken()
	case '[':
		if err := x.copyToken(); err != nil {
			return err
		}
		for i := 0; x.dec.PeekKind() != ']'; i++ {
			if err := x.member(strconv.Itoa(i), nil, cands, depth); err != nil {
				return err
			}
		}
		return x.copyToken()
	default:
		v, err := x.dec.ReadValue()
		if err != nil {
			return err
		}
		return x.enc.WriteValue(v)
	}
}

// member handles one object member (name set) or array element (name nil)
// whose key is key: erase it, copy it whole, or descend into it.
func (x *eraser) member(key string, name *jsontext.Token, cands []int, depth int) error {
	var next []int
	erase := false
	for _, c := range cands {
		p := x.paths[c].parts
		if p[depth] != key {
			continue
		}
		if len(p) == depth+1 {
			x.found[c], erase = true, true
			continue
		}
		next = append(next, c)
	}
	if erase {
		return x.dec.SkipValue()
	}
	if name != nil {
		if err := x.enc.WriteToken(*name); err != nil {
			return err
		}
	}
	if len(next) == 0 {
		v, err := x.dec.ReadValue()
		if err != nil {
			return err
		}
		return x.enc.WriteValue(v)
	}
	return x.copyValue(next, depth+1)
}

func (x *eraser) copyToken() error {
	t, err := x.dec.ReadToken()
	if err != nil {
		return err
	}
	return x.enc.WriteToken(t)
}
