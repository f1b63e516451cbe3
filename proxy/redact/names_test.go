package redact

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/policy"
)

// manyFields returns n distinct members "f0":0,... for an object body.
func manyFields(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"f%d":%d`, i, i)
	}
	return b.String()
}

// manyObjects returns an array of n objects {"a":1}, the last one ending
// with last.
func manyObjects(n int, last string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"a":1`)
		if i == n-1 {
			b.WriteString(last)
		}
		b.WriteByte('}')
	}
	b.WriteByte(']')
	return b.String()
}

// TestTransformDuplicateNames tries to get a second spelling of a name past
// the walker's own duplicate check, which replaced the decoder's: in every
// place an object can sit, through the member memo of records, past the
// memo's bound and the name set's switch to a map, and inside values the
// walker reads whole, hides, masks or hands to the record rule.
func TestTransformDuplicateNames(t *testing.T) {
	t.Parallel()
	suite := Plan{Shape: suiteShape(), Hidden: []string{"cost"}, Record: ownedBy("owner"),
		Masked: map[string]string{"phone": policy.MaskRedact}}
	espo := Plan{Shape: espoShape(), Hidden: []string{"cost"}, Record: ownedBy("owner", "name"),
		Masked: map[string]string{"phone": policy.MaskRedact}}
	rec := func(id, attrs string) string { return `{"id":"` + id + `","attributes":{` + attrs + `}}` }
	good := rec("1", `"owner":"u1","name":"a","x":1`)
	rel := func(id, rels string) string {
		return `{"id":"` + id + `","attributes":{"owner":"u1"},"relationships":` + rels + `}`
	}
	big := manyFields(300)
	tests := []struct {
		name string
		plan Plan
		mode Mode
		in   string
	}{
		{"record field in the first record", suite, ModeList, `{"data":[` + rec("1", `"owner":"u1","name":"a","name":"b"`) + `]}`},
		{"record field after records without one", suite, ModeList, `{"data":[` + good + `,` + good + `,` + rec("3", `"owner":"u1","name":"a","x":1,"name":"b"`) + `]}`},
		{"escaped spelling of an earlier memo name", suite, ModeList, `{"data":[` + good + `,` + rec("2", `"owner":"u1","name":"a","n\u0061me":"b"`) + `]}`},
		{"escaped spelling at the position the memo knows", suite, ModeList, `{"data":[` + good + `,` + rec("2", `"owner":"u1","\u006fwner":"u1","x":1`) + `]}`},
		{"memo name repeated after a changed position", suite, ModeList, `{"data":[` + good + `,` + rec("2", `"owner":"u1","y":"a","x":1,"y":2`) + `]}`},
		{"changed position repeats an earlier name", suite, ModeList, `{"data":[` + good + `,` + rec("2", `"owner":"u1","owner":"u2","x":1`) + `]}`},
		{"changed position takes a later memo name, which then repeats", suite, ModeList, `{"data":[` + good + `,` + rec("2", `"x":1,"name":"a","x":2`) + `]}`},
		{"later name repeats a changed one", suite, ModeList, `{"data":[` + good + `,` + rec("2", `"y":"u1","owner":"u1","x":1,"y":3`) + `]}`},
		{"record level", suite, ModeList, `{"data":[{"id":"1","attributes":{"owner":"u1"},"id":"2"}]}`},
		{"record level id after the memo", suite, ModeList, `{"data":[` + good + `,{"id":"2","attributes":{"owner":"u1"},"i\u0064":"3"}]}`},
		{"wanted field after the memo bound", suite, ModeList, `{"data":[` + rec("1", `"owner":"u1",`+big+`,"owner":"u2"`) + `]}`},
		{"name past the memo bound twice", suite, ModeList, `{"data":[` + rec("1", `"owner":"u1",`+big+`,"zz":1,"zz":2`) + `]}`},
		{"name past the memo bound repeats one inside it", suite, ModeList, `{"data":[` + rec("1", `"owner":"u1",`+big+`,"f7":1`) + `]}`},
		{"envelope", suite, ModeList, `{"meta":{},"data":[],"meta":{}}`},
		{"total", suite, ModeList, `{"data":[],"meta":{"total-pages":1,"total-pages":2}}`},
		{"inside a total", suite, ModeList, `{"data":[],"meta":{"total-pages":{"a":1,"a":2}}}`},
		{"inside a hidden envelope member", suite, ModeList, `{"cost":{"a":1,"a":2},"data":[]}`},
		{"inside a hidden record field", suite, ModeList, `{"data":[` + rec("1", `"owner":"u1","cost":{"a":1,"a":2}`) + `]}`},
		{"inside a masked record field", suite, ModeList, `{"data":[` + rec("1", `"owner":"u1","phone":[{"a":1,"a":2}]`) + `]}`},
		{"inside a wanted field", suite, ModeList, `{"data":[` + rec("1", `"owner":{"a":1,"a":2}`) + `]}`},
		{"inside a plain record field", suite, ModeList, `{"data":[` + rec("1", `"owner":"u1","rel":{"b":{"a":1,"a":2}}`) + `]}`},
		{"inside a record's relationships", suite, ModeList, `{"data":[{"id":"1","attributes":{"owner":"u1"},"relationships":{"a":1,"a":2}}]}`},
		{"nested object, after a record with the same names", suite, ModeList, `{"data":[` + rel("1", `{"a":{"x":1,"y":2}}`) + `,` + rel("2", `{"a":{"x":1,"x":2}}`) + `]}`},
		{"nested object, escaped spelling at a known position", suite, ModeList, `{"data":[` + rel("1", `{"a":{"x":1,"y":2}}`) + `,` + rel("2", `{"a":{"x":1,"\u0078":2}}`) + `]}`},
		{"nested object, names moved into one object", suite, ModeList, `{"data":[` + rel("1", `{"a":{"x":1},"x":2}`) + `,` + rel("2", `{"a":{"x":1,"x":2}}`) + `]}`},
		{"nested object, in an array", suite, ModeList, `{"data":[` + rel("1", `{"a":[{"x":1,"y":2},{"x":1,"y":2}]}`) + `,` + rel("2", `{"a":[{"x":1,"y":2},{"y":1,"y":2}]}`) + `]}`},
		{"nested object past the memo bound", suite, ModeList, `{"data":[` + rel("1", `{`+big+`}`) + `,` + rel("2", `{`+big+`,"f70":1}`) + `]}`},
		{"nested object past the memo bound, then a known name", suite, ModeList, `{"data":[` + rel("1", `{`+manyFields(80)+`}`) + `,` + rel("2", `{`+manyFields(80)+`,"f3":1}`) + `]}`},
		{"nested object past the slots", suite, ModeList, `{"data":[` + rel("1", manyObjects(80, "")) + `,` + rel("2", manyObjects(80, `,"a":2`)) + `]}`},
		{"list is not an array", suite, ModeList, `{"data":{"a":1,"a":2}}`},
		{"record is not an object", suite, ModeList, `{"data":[[{"a":1,"a":2}]]}`},
		{"espo record field", espo, ModeList, `{"list":[{"id":"1","owner":"u1","name":"a","name":"b"}]}`},
		{"espo record hidden by the rule", espo, ModeList, `{"list":[{"id":"1","owner":"u1-secret","name":{"a":1,"a":2}}]}`},
		{"espo single record", espo, ModeRecord, `{"id":"1","owner":"u1","id":"2"}`},
		{"other, deep", suite, ModeOther, `[{"a":[{"b":{"c":1,"c":2}}]}]`},
		{"other, sibling objects may share names but not within one", suite, ModeOther, `[{"c":1},{"c":1,"d":{"c":1},"c":2}]`},
		{"other, hidden value", suite, ModeOther, `{"cost":[{"a":1,"a":2}]}`},
		{"other, masked value", suite, ModeOther, `{"phone":{"a":1,"a":2}}`},
		{"other, past the map switch", suite, ModeOther, `{` + big + `,"f299":1}`},
		{"other, escaped past the map switch", suite, ModeOther, `{` + big + `,"f\u0031":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := transform(t, tt.plan, tt.mode, tt.in)
			if !errors.Is(err, ErrNotJSON) {
				t.Fatalf("err = %v, want ErrNotJSON", err)
			}
		})
	}
}

// TestTransformDistinctNamesPass checks the other side: objects whose names
// only look alike, sibling objects sharing names, records changing their
// names, and objects past the memo bound and the map switch go through.
func TestTransformDistinctNamesPass(t *testing.T) {
	t.Parallel()
	plan := Plan{Shape: suiteShape(), Record: ownedBy("owner")}
	rec := func(id, attrs string) string { return `{"id":"` + id + `","attributes":{` + attrs + `}}` }
	big := manyFields(300)
	tests := []struct {
		name string
		mode Mode
		in   string
	}{
		{"case differs", ModeOther, `{"a":1,"A":2}`},
		{"same names in siblings and children", ModeOther, `[{"a":{"a":{"a":1}}},{"a":2}]`},
		{"records reorder their names", ModeList, `{"data":[` + rec("1", `"owner":"u1","a":1,"b":2`) + `,` + rec("2", `"b":1,"owner":"u1","a":2`) + `,` + rec("3", `"a":1,"b":2,"owner":"u1"`) + `]}`},
		{"records shrink and grow", ModeList, `{"data":[` + rec("1", `"owner":"u1","a":1,"b":2,"c":3`) + `,` + rec("2", `"owner":"u1"`) + `,` + rec("3", `"owner":"u1","c":1,"b":2,"a":3`) + `]}`},
		{"escaped name the memo does not know", ModeList, `{"data":[` + rec("1", `"owner":"u1","a":1`) + `,` + rec("2", `"\u006fwner":"u1","a":1`) + `]}`},
		{"past the memo bound", ModeList, `{"data":[` + rec("1", `"owner":"u1",`+big) + `,` + rec("2", big+`,"owner":"u1"`) + `]}`},
		{"past the map switch", ModeOther, `{` + big + `,"f300":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, _, err := transform(t, plan, tt.mode, tt.in); err != nil {
				t.Fatalf("transform: %v", err)
			}
		})
	}
}

// TestTransformRuleSeesEachRecord checks that the values the rule reads
// are the record's own although names and values are reused between
// records: more distinct owners than the walker remembers, in a cycle
// (the worst order for a round robin), escaped spellings of one value,
// numbers, nulls, booleans and objects, and a field some records lack.
func TestTransformRuleSeesEachRecord(t *testing.T) {
	t.Parallel()
	values := []string{`"u1"`, `"u\u0031"`, `1`, `1.0`, `null`, `true`, `{"id":"u1"}`, `["u1"]`, `""`}
	for i := range 2 * recentWays {
		values = append(values, fmt.Sprintf(`"owner-%d"`, i))
	}
	var in strings.Builder
	var want []map[string]any
	in.WriteString(`{"data":[`)
	for i := range 3 * len(values) {
		if i > 0 {
			in.WriteByte(',')
		}
		raw := values[i%len(values)]
		id := fmt.Sprintf("r%d", i)
		rec := map[string]any{"id": id}
		if i%7 == 3 {
			fmt.Fprintf(&in, `{"id":%q,"attributes":{"name":"n"}}`, id)
		} else {
			fmt.Fprintf(&in, `{"id":%q,"attributes":{"owner":%s,"name":"n"}}`, id, raw)
			var v any
			d := json.NewDecoder(strings.NewReader(raw))
			d.UseNumber()
			if err := d.Decode(&v); err != nil {
				t.Fatal(err)
			}
			rec["owner"] = v
		}
		want = append(want, rec)
	}
	in.WriteString(`]}`)
	rule := &funcRule{fields: []string{"owner"}, check: func(map[string]any) (policy.RecordDecision, error) {
		return policy.RecordDecision{Allow: true}, nil
	}}
	plan := Plan{Shape: suiteShape(), Record: rule}
	if _, _, err := transform(t, plan, ModeList, in.String()); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rule.seen, want) {
		for i := range min(len(rule.seen), len(want)) {
			if !reflect.DeepEqual(rule.seen[i], want[i]) {
				t.Fatalf("record %d: rule saw %#v, want %#v", i, rule.seen[i], want[i])
			}
		}
		t.Fatalf("rule saw %d records, want %d", len(rule.seen), len(want))
	}
}
