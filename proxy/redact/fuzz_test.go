package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/profile"
)

var fuzzHidden = []string{"secret", "cost"}

// fuzzRule denies records whose owner is "deny" and hides "xh" in records
// whose owner is "xh".
type fuzzRule struct{}

func (fuzzRule) Fields() []string { return nil }

func (fuzzRule) Check(rec map[string]any) (policy.RecordDecision, error) {
	switch rec["owner"] {
	case "deny":
		return policy.RecordDecision{}, nil
	case "xh":
		return policy.RecordDecision{Allow: true, HiddenFields: []string{"xh"}}, nil
	}
	return policy.RecordDecision{Allow: true}, nil
}

func fuzzPlans(t testing.TB) [2]*Compiled {
	var cs [2]*Compiled
	for i, shape := range []profile.Shape{suiteShape(), espoShape()} {
		p := Plan{
			Shape:   shape,
			Hidden:  fuzzHidden,
			Masked:  map[string]string{"phone": policy.MaskLast4, "mail": policy.MaskEmail, "h": policy.MaskHash, "r": policy.MaskRedact},
			Record:  fuzzRule{},
			HashKey: []byte("fuzz-key-0123456789"),
		}
		c, err := p.Compile()
		if err != nil {
			t.Fatal(err)
		}
		cs[i] = c
	}
	return cs
}

func FuzzTransform(f *testing.F) {
	seeds := []string{
		`{"data":[{"type":"A","id":"a1","attributes":{"name":"n","secret":"S3CRET-VALUE-1","phone":"5551234567","owner":"u1"}},{"id":"a2","attributes":{"owner":"deny","name":"DENIED-NAME-XYZ"}}],"meta":{"total-pages":2,"records-on-this-page":2}}`,
		`{"data":{"type":"A","id":"a1","attributes":{"co\u0073t":"S3CRET-VALUE-2","owner":"xh","xh":"RECORD-HIDDEN-1","mail":"a@b.example"}}}`,
		`{"total":5,"list":[{"id":"1","owner":"u1","COST":{"deep":"S3CRET-VALUE-3"}},{"id":"2","owner":"deny"}]}`,
		`{"list":[{"id":"1","owner":"xh","nested":[{"xh":"RECORD-HIDDEN-2"}],"h":"5551234"}],"total":-1}`,
		`{"id":"1","owner":"u1","secret":null,"r":[1,2]}`,
		`{"errors":[{"meta":{"ſecret":"S3CRET-VALUE-4"}}]}`,
		`[1,"two",{"three":{"cost":"S3CRET-VALUE-5"}}]`,
		`{"data":[{"id":"a1","attributes":{"owner":"u1","name":"n"}},{"id":"a2","attributes":{"name":"n","owner":"u1","name":"DUP"}}]}`,
		`{"data":[{"id":"a1","attributes":{"owner":"u1","x":{"a":1,"\u0061":2}}}],"meta":{"total-pages":1}}`,
		`{"total":1,"list":[{"id":"1","owner":"u1","owner":"deny"}],"t\u006ftal":2}`,
	}
	for _, s := range seeds {
		for mode := range 3 {
			f.Add([]byte(s), uint8(mode), s[2] == 'd')
		}
	}
	cs := fuzzPlans(f)
	f.Fuzz(func(t *testing.T, in []byte, m uint8, suite bool) {
		mode := Mode(m % 3)
		c := cs[1]
		if suite {
			c = cs[0]
		}
		var out bytes.Buffer
		st, err := c.Transform(&out, bytes.NewReader(in), mode)
		if errors.Is(err, ErrRecordDenied) && out.Len() > 0 {
			t.Fatalf("denied record but wrote %q", out.Bytes())
		}
		if err != nil {
			return
		}
		// The walker checks names itself (the decoder lets duplicates
		// through), so what it accepted must be RFC 7493 JSON.
		if !jsontext.Value(in).IsValid() {
			t.Fatalf("accepted input that is not valid JSON (duplicate names?): %q", in)
		}
		if !jsontext.Value(out.Bytes()).IsValid() {
			t.Fatalf("output is not valid JSON: %q", out.Bytes())
		}
		checkNoHidden(t, in, out.Bytes())
		if mode != ModeOther {
			checkRecords(t, c.shape, mode, out.Bytes(), st)
		}
	})
}

// checkNoHidden asserts that no hidden name, and no distinctive string
// found only under a hidden name in the input, appears in the output.
func checkNoHidden(t *testing.T, in, out []byte) {
	t.Helper()
	var hiddenVals, otherVals []string
	var vin any
	if err := unmarshal(in, &vin); err != nil {
		t.Fatalf("transform accepted input encoding/json refuses: %v", err)
	}
	collectStrings(vin, false, &hiddenVals, &otherVals)
	var vout any
	if err := unmarshal(out, &vout); err != nil {
		t.Fatal(err)
	}
	var outHidden, outAll []string
	collectStrings(vout, false, &outHidden, &outAll)
	if len(outHidden) > 0 {
		t.Fatalf("output has hidden names: %q in %s", outHidden, out)
	}
	for _, v := range hiddenVals {
		if !distinctive(v, otherVals) {
			continue
		}
		for _, o := range outAll {
			if strings.Contains(o, v) {
				t.Fatalf("hidden value %q appears in the output %s", v, out)
			}
		}
	}
}

func isHiddenName(name string) bool {
	for _, h := range fuzzHidden {
		if strings.EqualFold(name, h) {
			return true
		}
	}
	return false
}

// collectStrings gathers every name and string of v: those under a hidden
// name into hidden, the rest into other.
func collectStrings(v any, under bool, hidden, other *[]string) {
	add := func(s string, h bool) {
		if h {
			*hidden = append(*hidden, s)
		} else {
			*other = append(*other, s)
		}
	}
	switch x := v.(type) {
	case string:
		add(x, under)
	case []any:
		for _, e := range x {
			collectStrings(e, under, hidden, other)
		}
	case map[string]any:
		for k, e := range x {
			h := under || isHiddenName(k)
			add(k, h)
			collectStrings(e, h, hidden, other)
		}
	}
}

// distinctive reports whether finding v in the output could only mean a
// leak: it is long, occurs in no other input string, and cannot be made by a
// mask.
func distinctive(v string, others []string) bool {
	if len(v) < 6 || strings.ContainsAny(v, "*@") || strings.Contains("[redacted]hmac:", v) {
		return false
	}
	for _, o := range others {
		if strings.Contains(o, v) {
			return false
		}
	}
	return true
}

// checkRecords asserts that no record the rule denies was written, that
// record-hidden names are gone from their records, and that Returned
// matches what was written.
func checkRecords(t *testing.T, shape profile.Shape, mode Mode, out []byte, st Stats) {
	t.Helper()
	var doc any
	if err := unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	path := shape.ListPath
	if mode == ModeRecord {
		path = shape.RecordPath
	}
	at := doc
	for _, p := range path {
		m, ok := at.(map[string]any)
		if !ok {
			t.Fatalf("no %v in output %s", path, out)
		}
		at = m[p]
	}
	records := []any{at}
	if mode == ModeList {
		list, ok := at.([]any)
		if !ok {
			t.Fatalf("list at %v is %T in %s", path, at, out)
		}
		records = list
	}
	if len(records) != st.Returned {
		t.Fatalf("wrote %d records, Stats.Returned %d", len(records), st.Returned)
	}
	for _, r := range records {
		rec := r.(map[string]any)
		fields := any(rec)
		for _, p := range shape.FieldsPath {
			if m, ok := fields.(map[string]any); ok {
				fields = m[p]
			}
		}
		fm, _ := fields.(map[string]any)
		switch fm["owner"] {
		case "deny":
			t.Fatalf("denied record written: %s", out)
		case "xh":
			if hasName(rec, "xh") {
				t.Fatalf("record-hidden name left in %s", out)
			}
		}
	}
}

// hasName reports whether an object member named name (case-insensitively)
// occurs anywhere in v.
func hasName(v any, name string) bool {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if hasName(e, name) {
				return true
			}
		}
	case map[string]any:
		for k, e := range x {
			if strings.EqualFold(k, name) || hasName(e, name) {
				return true
			}
		}
	}
	return false
}

// unmarshal decodes with json.Number, since JSON numbers need not fit a
// float64.
func unmarshal(b []byte, v *any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}
