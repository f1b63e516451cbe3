package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/profile"
)

func espoShape() profile.Shape {
	return profile.Shape{
		ListPath:   []string{"list"},
		RecordPath: []string{},
		FieldsPath: []string{},
		IDField:    "id",
		TotalPaths: [][]string{{"total"}},
	}
}

// funcRule is a record rule made of a function, recording what it saw.
type funcRule struct {
	fields []string
	check  func(map[string]any) (policy.RecordDecision, error)
	seen   []map[string]any
}

func (r *funcRule) Fields() []string { return r.fields }

func (r *funcRule) Check(rec map[string]any) (policy.RecordDecision, error) {
	cp := make(map[string]any, len(rec))
	for k, v := range rec {
		cp[k] = v
	}
	r.seen = append(r.seen, cp)
	return r.check(rec)
}

// ownedBy allows records whose field is "u1" and hides extra fields on
// records whose field is "u1-secret".
func ownedBy(field string, extraHidden ...string) *funcRule {
	return &funcRule{
		fields: []string{field},
		check: func(rec map[string]any) (policy.RecordDecision, error) {
			switch rec[field] {
			case "u1":
				return policy.RecordDecision{Allow: true}, nil
			case "u1-secret":
				return policy.RecordDecision{Allow: true, HiddenFields: extraHidden}, nil
			}
			return policy.RecordDecision{}, nil
		},
	}
}

func transform(t *testing.T, p Plan, mode Mode, in string) (string, Stats, error) {
	t.Helper()
	c, err := p.Compile()
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	var out bytes.Buffer
	st, err := c.Transform(&out, strings.NewReader(in), mode)
	if err == nil && !json.Valid(out.Bytes()) {
		t.Fatalf("output is not valid JSON: %s", out.String())
	}
	return out.String(), st, err
}

func TestTransformShapes(t *testing.T) {
	t.Parallel()
	suite := func(mod func(*Plan)) Plan {
		p := Plan{Shape: suiteShape(), Hidden: []string{"cost"}, Masked: map[string]string{"phone": policy.MaskLast4}}
		if mod != nil {
			mod(&p)
		}
		return p
	}
	espo := func(mod func(*Plan)) Plan {
		p := Plan{Shape: espoShape(), Hidden: []string{"cost"}, Masked: map[string]string{"phone": policy.MaskLast4}}
		if mod != nil {
			mod(&p)
		}
		return p
	}
	withRule := func(p *Plan) { p.Record = ownedBy("owner", "phone") }
	tests := []struct {
		name  string
		plan  Plan
		mode  Mode
		in    string
		want  string
		stats Stats
	}{
		{
			name:  "suite list without record rule keeps records and counts",
			plan:  suite(nil),
			mode:  ModeList,
			in:    `{"data":[{"type":"Accounts","id":"a1","attributes":{"name":"Acme","phone":"5551234567","cost":10,"owner":"u2"}}],"meta":{"total-pages":7,"records-on-this-page":1},"links":{"next":"/n"}}`,
			want:  `{"data":[{"type":"Accounts","id":"a1","attributes":{"name":"Acme","phone":"******4567","owner":"u2"}}],"meta":{"total-pages":7,"records-on-this-page":1},"links":{"next":"/n"}}`,
			stats: Stats{Returned: 1, Redacted: 2, Masked: 1, IDs: []string{"a1"}},
		},
		{
			name:  "suite list drops records and rewrites meta after the list",
			plan:  suite(withRule),
			mode:  ModeList,
			in:    `{"data":[{"type":"Accounts","id":"a1","attributes":{"name":"A","owner":"u1","cost":1}},{"type":"Accounts","id":"a2","attributes":{"name":"B","owner":"u2","cost":2}},{"type":"Accounts","id":"a3","attributes":{"name":"C","owner":"u1"}}],"meta":{"total-pages":9,"records-on-this-page":3},"links":{"self":"/s"}}`,
			want:  `{"data":[{"type":"Accounts","id":"a1","attributes":{"name":"A","owner":"u1"}},{"type":"Accounts","id":"a3","attributes":{"name":"C","owner":"u1"}}],"meta":{"records-on-this-page":2},"links":{"self":"/s"}}`,
			stats: Stats{Returned: 2, Filtered: 1, Redacted: 1, IDs: []string{"a1", "a3"}},
		},
		{
			name:  "pushed-down list keeps the CRM's counts and still drops a refused record",
			plan:  suite(func(p *Plan) { withRule(p); p.KeepTotals = true }),
			mode:  ModeList,
			in:    `{"meta":{"total-pages":9,"records-on-this-page":2},"data":[{"id":"a1","attributes":{"owner":"u1"}},{"id":"a2","attributes":{"owner":"u2","name":"LEAK"}}],"links":{"last":"/l?page[number]=9"}}`,
			want:  `{"meta":{"total-pages":9,"records-on-this-page":2},"data":[{"id":"a1","attributes":{"owner":"u1"}}],"links":{"last":"/l?page[number]=9"}}`,
			stats: Stats{Returned: 1, Filtered: 1, IDs: []string{"a1"}},
		},
		{
			name:  "espo pushed-down list keeps total",
			plan:  espo(func(p *Plan) { withRule(p); p.KeepTotals = true }),
			mode:  ModeList,
			in:    `{"total":41,"list":[{"id":"a1","owner":"u1"}]}`,
			want:  `{"total":41,"list":[{"id":"a1","owner":"u1"}]}`,
			stats: Stats{Returned: 1, IDs: []string{"a1"}},
		},
		{
			name:  "suite meta before the list in a sibling object loses its counts",
			plan:  suite(withRule),
			mode:  ModeList,
			in:    `{"meta":{"total-pages":9,"records-on-this-page":3,"note":"x"},"data":[{"id":"a2","attributes":{"owner":"u2"}}]}`,
			want:  `{"meta":{"note":"x"},"data":[]}`,
			stats: Stats{Filtered: 1},
		},
		{
			name:  "suite list, first record dropped: no leading comma",
			plan:  suite(withRule),
			mode:  ModeList,
			in:    `{"data":[{"id":"a2","attributes":{"owner":"u2"}},{"id":"a1","attributes":{"owner":"u1"}},{"id":"a4","attributes":{"owner":"u4"}}]}`,
			want:  `{"data":[{"id":"a1","attributes":{"owner":"u1"}}]}`,
			stats: Stats{Returned: 1, Filtered: 2, IDs: []string{"a1"}},
		},
		{
			name:  "suite record with hidden names deep in relationships",
			plan:  suite(nil),
			mode:  ModeRecord,
			in:    `{"data":{"type":"Accounts","id":"a1","attributes":{"name":"A","phone":"123"},"relationships":{"x":{"data":[{"id":"c","meta":{"cost":5}}]}}}}`,
			want:  `{"data":{"type":"Accounts","id":"a1","attributes":{"name":"A","phone":"***"},"relationships":{"x":{"data":[{"id":"c","meta":{}}]}}}}`,
			stats: Stats{Returned: 1, Redacted: 2, Masked: 1, IDs: []string{"a1"}},
		},
		{
			name:  "suite record allowed with record hidden fields",
			plan:  suite(withRule),
			mode:  ModeRecord,
			in:    `{"data":{"type":"Accounts","id":"a1","attributes":{"name":"A","phone":"5551234","owner":"u1-secret"}}}`,
			want:  `{"data":{"type":"Accounts","id":"a1","attributes":{"name":"A","owner":"u1-secret"}}}`,
			stats: Stats{Returned: 1, Redacted: 1, IDs: []string{"a1"}},
		},
		{
			name:  "espo list total before the list moves after it",
			plan:  espo(withRule),
			mode:  ModeList,
			in:    `{"total":57,"list":[{"id":"1","name":"A","owner":"u1"},{"id":"2","name":"B","owner":"u2"}]}`,
			want:  `{"list":[{"id":"1","name":"A","owner":"u1"}],"total":-1}`,
			stats: Stats{Returned: 1, Filtered: 1, IDs: []string{"1"}},
		},
		{
			name:  "espo list on its last page says no more",
			plan:  espo(withRule),
			mode:  ModeList,
			in:    `{"total":2,"list":[{"id":"1","owner":"u1"},{"id":"2","owner":"u2"}]}`,
			want:  `{"list":[{"id":"1","owner":"u1"}],"total":-2}`,
			stats: Stats{Returned: 1, Filtered: 1, IDs: []string{"1"}},
		},
		{
			name:  "espo offset counts earlier pages",
			plan:  espo(func(p *Plan) { withRule(p); p.Offset = 55 }),
			mode:  ModeList,
			in:    `{"list":[{"id":"1","owner":"u1"},{"id":"2","owner":"u2"}],"total":57}`,
			want:  `{"list":[{"id":"1","owner":"u1"}],"total":-2}`,
			stats: Stats{Returned: 1, Filtered: 1, IDs: []string{"1"}},
		},
		{
			name: "espo empty page says no more",
			plan: espo(withRule),
			mode: ModeList,
			in:   `{"total":57,"list":[]}`,
			want: `{"list":[],"total":-2}`,
		},
		{
			name:  "espo total already unknown is kept",
			plan:  espo(withRule),
			mode:  ModeList,
			in:    `{"total":-1,"list":[{"id":"2","owner":"u2"}]}`,
			want:  `{"list":[],"total":-1}`,
			stats: Stats{Filtered: 1},
		},
		{
			name:  "espo total that is not an integer is removed",
			plan:  espo(withRule),
			mode:  ModeList,
			in:    `{"total":"57","list":[{"id":"1","owner":"u1"}]}`,
			want:  `{"list":[{"id":"1","owner":"u1"}]}`,
			stats: Stats{Returned: 1, IDs: []string{"1"}},
		},
		{
			name:  "espo list without record rule leaves the total alone",
			plan:  espo(nil),
			mode:  ModeList,
			in:    `{"total":57,"list":[{"id":"1","phone":"5551234567","cost":3}]}`,
			want:  `{"total":57,"list":[{"id":"1","phone":"******4567"}]}`,
			stats: Stats{Returned: 1, Redacted: 2, Masked: 1, IDs: []string{"1"}},
		},
		{
			name:  "espo record hidden fields only for that record",
			plan:  espo(withRule),
			mode:  ModeList,
			in:    `{"list":[{"id":"1","owner":"u1","phone":"5551234"},{"id":"2","owner":"u1-secret","phone":"5559876","nested":{"phone":"x"}}],"total":2}`,
			want:  `{"list":[{"id":"1","owner":"u1","phone":"***1234"},{"id":"2","owner":"u1-secret","nested":{}}],"total":-2}`,
			stats: Stats{Returned: 2, Redacted: 3, Masked: 1, IDs: []string{"1", "2"}},
		},
		{
			name:  "espo record at the root",
			plan:  espo(withRule),
			mode:  ModeRecord,
			in:    `{"id":"1","owner":"u1","cost":1,"phone":null}`,
			want:  `{"id":"1","owner":"u1","phone":null}`,
			stats: Stats{Returned: 1, Redacted: 1, IDs: []string{"1"}},
		},
		{
			name:  "other mode: names at any depth, no records",
			plan:  suite(withRule),
			mode:  ModeOther,
			in:    `{"errors":[{"detail":"x","meta":{"Cost":1,"phone":"12345"}}],"data":[{"id":"a2","attributes":{"owner":"u2"}}]}`,
			want:  `{"errors":[{"detail":"x","meta":{"phone":"*2345"}}],"data":[{"id":"a2","attributes":{"owner":"u2"}}]}`,
			stats: Stats{Redacted: 2, Masked: 1},
		},
		{
			name: "other mode: scalar document",
			plan: suite(nil),
			mode: ModeOther,
			in:   ` "just a string" `,
			want: `"just a string"`,
		},
		{
			name:  "numeric ids are logged as their JSON text",
			plan:  espo(nil),
			mode:  ModeList,
			in:    `{"list":[{"id":42},{"name":"no id"}]}`,
			want:  `{"list":[{"id":42},{"name":"no id"}]}`,
			stats: Stats{Returned: 2, IDs: []string{"42"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, st, err := transform(t, tt.plan, tt.mode, tt.in)
			if err != nil {
				t.Fatalf("transform: %v", err)
			}
			if got != tt.want {
				t.Errorf("output\n got %s\nwant %s", got, tt.want)
			}
			if !reflect.DeepEqual(st, tt.stats) {
				t.Errorf("stats = %+v, want %+v", st, tt.stats)
			}
		})
	}
}

func TestTransformVisible(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		plan  Plan
		mode  Mode
		in    string
		want  string
		stats Stats
	}{
		{
			name:  "espo allow-list keeps the id and matches case-insensitively",
			plan:  Plan{Shape: espoShape(), Visible: []string{"Name"}, VisibleDefined: true},
			mode:  ModeList,
			in:    `{"total":1,"list":[{"id":"1","name":"A","phone":"1","cost":2}]}`,
			want:  `{"total":1,"list":[{"id":"1","name":"A"}]}`,
			stats: Stats{Returned: 1, Redacted: 2, IDs: []string{"1"}},
		},
		{
			name:  "empty defined allow-list leaves only the id",
			plan:  Plan{Shape: espoShape(), VisibleDefined: true},
			mode:  ModeRecord,
			in:    `{"id":"1","name":"A"}`,
			want:  `{"id":"1"}`,
			stats: Stats{Returned: 1, Redacted: 1, IDs: []string{"1"}},
		},
		{
			name:  "undefined allow-list keeps everything",
			plan:  Plan{Shape: espoShape(), Visible: []string{"name"}},
			mode:  ModeRecord,
			in:    `{"id":"1","name":"A","x":1}`,
			want:  `{"id":"1","name":"A","x":1}`,
			stats: Stats{Returned: 1, IDs: []string{"1"}},
		},
		{
			name:  "suite allow-list applies to attributes, not the envelope",
			plan:  Plan{Shape: suiteShape(), Visible: []string{"name"}, VisibleDefined: true},
			mode:  ModeRecord,
			in:    `{"data":{"type":"Accounts","id":"a1","attributes":{"name":"A","phone":"1"},"relationships":{}}}`,
			want:  `{"data":{"type":"Accounts","id":"a1","attributes":{"name":"A"},"relationships":{}}}`,
			stats: Stats{Returned: 1, Redacted: 1, IDs: []string{"a1"}},
		},
		{
			name: "hidden wins over visible, masked applies to visible",
			plan: Plan{Shape: espoShape(), Visible: []string{"name", "phone"}, VisibleDefined: true,
				Hidden: []string{"name"}, Masked: map[string]string{"phone": policy.MaskRedact}},
			mode:  ModeRecord,
			in:    `{"id":"1","name":"A","phone":"1"}`,
			want:  `{"id":"1","phone":"[redacted]"}`,
			stats: Stats{Returned: 1, Redacted: 2, Masked: 1, IDs: []string{"1"}},
		},
		{
			name:  "fields the record rule reads are still cut by the allow-list",
			plan:  Plan{Shape: espoShape(), VisibleDefined: true, Record: ownedBy("owner")},
			mode:  ModeList,
			in:    `{"list":[{"id":"1","owner":"u1"}]}`,
			want:  `{"list":[{"id":"1"}]}`,
			stats: Stats{Returned: 1, Redacted: 1, IDs: []string{"1"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, st, err := transform(t, tt.plan, tt.mode, tt.in)
			if err != nil {
				t.Fatalf("transform: %v", err)
			}
			if got != tt.want {
				t.Errorf("output\n got %s\nwant %s", got, tt.want)
			}
			if !reflect.DeepEqual(st, tt.stats) {
				t.Errorf("stats = %+v, want %+v", st, tt.stats)
			}
		})
	}
}

// TestTransformHiddenSpellings tries to get a hidden field past the name
// match: escapes, case, Unicode folding, depth, and duplicates.
func TestTransformHiddenSpellings(t *testing.T) {
	t.Parallel()
	plan := Plan{Shape: espoShape(), Hidden: []string{"cost", "ssn", "kind"}}
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"escaped letter", `{"co\u0073t":"S3CR3T"}`, `{}`},
		{"all escaped", `{"\u0063\u006f\u0073\u0074":"S3CR3T"}`, `{}`},
		{"upper case", `{"COST":"S3CR3T","Cost":"S3CR3T2"}`, `{}`},
		{"long s folds to s", `{"ſſn":"S3CR3T"}`, `{}`},
		{"kelvin sign folds to k", `{"\u212aind":"S3CR3T"}`, `{}`},
		{"deep in arrays", `[[[{"a":[{"b":{"cost":"S3CR3T"}}]}]]]`, `[[[{"a":[{"b":{}}]}]]]`},
		{"hidden object value", `{"cost":{"x":"S3CR3T"},"y":1}`, `{"y":1}`},
		{"names that only start alike stay", `{"costs":1,"cos":2,"xcost":3}`, `{"costs":1,"cos":2,"xcost":3}`},
		{"a hidden name as a value is not a name", `{"field":"cost"}`, `{"field":"cost"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, _, err := transform(t, plan, ModeOther, tt.in)
			if err != nil {
				t.Fatalf("transform: %v", err)
			}
			if got != tt.want {
				t.Errorf("output\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestTransformNotJSON(t *testing.T) {
	t.Parallel()
	plan := Plan{Shape: espoShape(), Hidden: []string{"cost"}, Record: ownedBy("owner")}
	tests := []struct {
		name string
		mode Mode
		in   string
	}{
		{"empty", ModeOther, ``},
		{"whitespace", ModeOther, "  \n"},
		{"truncated", ModeOther, `{"a":[1,2`},
		{"trailing value", ModeOther, `{"a":1} {"cost":2}`},
		{"trailing garbage", ModeOther, `{"a":1}x`},
		{"single quotes", ModeOther, `{'a':1}`},
		{"NaN", ModeOther, `{"a":NaN}`},
		{"duplicate via escape", ModeOther, `{"cost":1,"co\u0073t":2}`},
		{"duplicate plain", ModeOther, `{"name":"a","name":"b"}`},
		{"duplicate record field", ModeList, `{"list":[{"id":"1","owner":"u2","owner":"u1"}]}`},
		{"duplicate list", ModeList, `{"list":[],"list":[{"id":"1","owner":"u2"}]}`},
		{"invalid utf-8 in name", ModeOther, "{\"co\xffst\":1}"},
		{"invalid utf-8 in value", ModeOther, "{\"a\":\"\xff\"}"},
		{"bad escape", ModeOther, `{"a":"\x"}`},
		{"broken record in list", ModeList, `{"list":[{"id":"1","owner":"u1"},{"id":]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := transform(t, plan, tt.mode, tt.in)
			if !errors.Is(err, ErrNotJSON) {
				t.Fatalf("err = %v, want ErrNotJSON", err)
			}
		})
	}
}

// writeRecorder fails the test on any write: used where nothing may leave.
type writeRecorder struct{ writes [][]byte }

func (w *writeRecorder) Write(p []byte) (int, error) {
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

func TestTransformNothingWritten(t *testing.T) {
	t.Parallel()
	rule := ownedBy("owner")
	tests := []struct {
		name  string
		shape profile.Shape
		mode  Mode
		in    string
		err   error
	}{
		{"espo record denied", espoShape(), ModeRecord, `{"id":"2","owner":"u2","name":"secret"}`, ErrRecordDenied},
		{"suite record denied", suiteShape(), ModeRecord, `{"data":{"id":"a2","attributes":{"owner":"u2"}},"meta":{}}`, ErrRecordDenied},
		{"suite record denied after a long prefix", suiteShape(), ModeRecord,
			`{"links":{"self":"` + strings.Repeat("x", 3*flushAt) + `"},"data":{"id":"a2","attributes":{"owner":"u2"}}}`, ErrRecordDenied},
		{"no list", espoShape(), ModeList, `{"total":1,"records":[{"id":"2","owner":"u2"}]}`, ErrUnexpectedShape},
		{"list is an object", espoShape(), ModeList, `{"list":{"id":"2","owner":"u2"}}`, ErrUnexpectedShape},
		{"list is null", espoShape(), ModeList, `{"list":null}`, ErrUnexpectedShape},
		{"list document is an array", espoShape(), ModeList, `[{"id":"2","owner":"u2"}]`, ErrUnexpectedShape},
		{"list under a differently cased name", suiteShape(), ModeList, `{"Data":[{"id":"a2","attributes":{"owner":"u2"}}]}`, ErrUnexpectedShape},
		{"no record", suiteShape(), ModeRecord, `{"errors":[{"title":"x"}]}`, ErrUnexpectedShape},
		{"record is an array", suiteShape(), ModeRecord, `{"data":[{"id":"a2","attributes":{"owner":"u2"}}]}`, ErrUnexpectedShape},
		{"record document is a string", espoShape(), ModeRecord, `"x"`, ErrUnexpectedShape},
		{"record element not an object", espoShape(), ModeList, `{"list":["x"]}`, ErrUnexpectedShape},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := (&Plan{Shape: tt.shape, Record: rule}).Compile()
			if err != nil {
				t.Fatal(err)
			}
			var w writeRecorder
			_, err = c.Transform(&w, strings.NewReader(tt.in), tt.mode)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if len(w.writes) > 0 {
				t.Fatalf("wrote %q before failing", w.writes)
			}
		})
	}
}

func TestTransformRecordRuleInput(t *testing.T) {
	t.Parallel()
	t.Run("only the named fields and the id", func(t *testing.T) {
		t.Parallel()
		rule := ownedBy("owner")
		_, _, err := transform(t, Plan{Shape: suiteShape(), Record: rule}, ModeList,
			`{"data":[{"type":"A","id":"a1","attributes":{"owner":"u1","amount":12.50,"secret":"x"}}]}`)
		if err != nil {
			t.Fatal(err)
		}
		want := []map[string]any{{"id": "a1", "owner": "u1"}}
		if !reflect.DeepEqual(rule.seen, want) {
			t.Errorf("rule saw %v, want %v", rule.seen, want)
		}
	})
	t.Run("all fields with JSON numbers, hidden fields included", func(t *testing.T) {
		t.Parallel()
		rule := &funcRule{check: func(map[string]any) (policy.RecordDecision, error) {
			return policy.RecordDecision{Allow: true}, nil
		}}
		_, _, err := transform(t, Plan{Shape: espoShape(), Record: rule, Hidden: []string{"secret"}}, ModeRecord,
			`{"id":"1","amount":12.50,"secret":"x","tags":["a",{"b":null}],"ok":true,"n\u0061me":"A"}`)
		if err != nil {
			t.Fatal(err)
		}
		want := []map[string]any{{"id": "1", "amount": json.Number("12.50"), "secret": "x",
			"tags": []any{"a", map[string]any{"b": nil}}, "ok": true, "name": "A"}}
		if !reflect.DeepEqual(rule.seen, want) {
			t.Errorf("rule saw %#v, want %#v", rule.seen, want)
		}
	})
	t.Run("rule error fails the transform", func(t *testing.T) {
		t.Parallel()
		boom := errors.New("boom")
		rule := &funcRule{check: func(map[string]any) (policy.RecordDecision, error) {
			return policy.RecordDecision{Allow: true}, boom
		}}
		_, _, err := transform(t, Plan{Shape: espoShape(), Record: rule}, ModeList, `{"list":[{"id":"1"}]}`)
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want boom", err)
		}
	})
}

func TestTransformIDsBound(t *testing.T) {
	t.Parallel()
	in := `{"list":[{"id":"1"},{"id":"2"},{"id":"3"}]}`
	tests := []struct {
		max       int
		ids       []string
		truncated bool
	}{
		{2, []string{"1", "2"}, true},
		{3, []string{"1", "2", "3"}, false},
		{0, []string{"1", "2", "3"}, false},
		{-1, nil, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("max=%d", tt.max), func(t *testing.T) {
			t.Parallel()
			_, st, err := transform(t, Plan{Shape: espoShape(), MaxRecordIDs: tt.max}, ModeList, in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(st.IDs, tt.ids) || st.Truncated != tt.truncated {
				t.Errorf("ids %v truncated %v, want %v %v", st.IDs, st.Truncated, tt.ids, tt.truncated)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		plan Plan
	}{
		{"unknown mask", Plan{Masked: map[string]string{"phone": "last5"}}},
		{"hash without key", Plan{Masked: map[string]string{"phone": policy.MaskHash}}},
		{"hash with short key", Plan{Masked: map[string]string{"phone": policy.MaskHash}, HashKey: []byte("short")}},
		{"negative offset", Plan{Offset: -1}},
		{"empty total path", Plan{Shape: profile.Shape{ListPath: []string{"list"}, TotalPaths: [][]string{{}}}, Record: ownedBy("o")}},
		{"total path through the list", Plan{Shape: profile.Shape{ListPath: []string{"list"}, TotalPaths: [][]string{{"list", "n"}}}, Record: ownedBy("o")}},
		{"total path is the list", Plan{Shape: profile.Shape{ListPath: []string{"meta", "list"}, TotalPaths: [][]string{{"meta"}}}, Record: ownedBy("o")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := tt.plan.Compile(); err == nil {
				t.Fatal("compiled, want an error")
			}
		})
	}
}

func TestTransformReadAndWriteErrors(t *testing.T) {
	t.Parallel()
	c, err := (&Plan{Shape: espoShape()}).Compile()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("upstream read error is not ErrNotJSON", func(t *testing.T) {
		t.Parallel()
		boom := errors.New("connection reset")
		src := io.MultiReader(strings.NewReader(`{"list":[`), iotest.ErrReader(boom))
		_, err := c.Transform(io.Discard, src, ModeList)
		if !errors.Is(err, boom) || errors.Is(err, ErrNotJSON) {
			t.Fatalf("err = %v, want the read error only", err)
		}
	})
	t.Run("write error is reported", func(t *testing.T) {
		t.Parallel()
		boom := errors.New("client gone")
		_, err := c.Transform(failWriter{boom}, strings.NewReader(`{"list":[{"id":"1"}]}`), ModeList)
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want %v", err, boom)
		}
	})
	t.Run("unknown mode", func(t *testing.T) {
		t.Parallel()
		if _, err := c.Transform(io.Discard, strings.NewReader(`{}`), Mode(9)); err == nil {
			t.Fatal("no error for an unknown mode")
		}
	})
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

// TestTransformStreams checks that a large list reaches dst in pieces while
// it is read, instead of after the whole body.
func TestTransformStreams(t *testing.T) {
	t.Parallel()
	body := suiteList(2000)
	c := benchPlan(t)
	var w writeRecorder
	st, err := c.Transform(&w, bytes.NewReader(body), ModeList)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.writes) < len(body)/(2*flushAt) {
		t.Fatalf("%d writes for %d bytes: output is not streamed", len(w.writes), len(body))
	}
	for _, p := range w.writes {
		if len(p) > flushAt+4096 {
			t.Fatalf("a write of %d bytes: output collects beyond a record", len(p))
		}
	}
	if st.Returned != 1800 || st.Filtered != 200 {
		t.Fatalf("stats %+v", st)
	}
	out := bytes.Join(w.writes, nil)
	if !json.Valid(out) {
		t.Fatal("output is not valid JSON")
	}
	for _, leak := range []string{"annual_revenue", "credit_limit", "tax_id", `"u-3"`, "total-pages"} {
		if bytes.Contains(out, []byte(leak)) {
			t.Errorf("output contains %s", leak)
		}
	}
}

// TestTransformMemberMemo tries to get a hidden field past the per-position
// memory of member names by changing the name, its escaping or its case at
// a position earlier records used for harmless names.
func TestTransformMemberMemo(t *testing.T) {
	t.Parallel()
	plan := Plan{Shape: suiteShape(), Hidden: []string{"cost"}, Record: ownedBy("owner"),
		Masked: map[string]string{"phone": policy.MaskRedact}}
	in := `{"data":[` +
		`{"id":"1","attributes":{"owner":"u1","name":"x","phone":"1"}},` +
		`{"id":"2","attributes":{"owner":"u1","cost":"S1","phone":"2"}},` +
		`{"id":"3","attributes":{"owner":"u1","co\u0073t":"S2","name":"3"}},` +
		`{"id":"4","attributes":{"owner":"u1","COST":"S3","phone":"4"}},` +
		`{"id":"5","attributes":{"owner":"u2","name":"S4"}},` +
		`{"id":"6","attributes":{"ow\u006eer":"u2","name":"S5"}},` +
		`{"id":"7","attributes":{"name":"z","owner":"u1","cost":"S6"}}]}`
	want := `{"data":[` +
		`{"id":"1","attributes":{"owner":"u1","name":"x","phone":"[redacted]"}},` +
		`{"id":"2","attributes":{"owner":"u1","phone":"[redacted]"}},` +
		`{"id":"3","attributes":{"owner":"u1","name":"3"}},` +
		`{"id":"4","attributes":{"owner":"u1","phone":"[redacted]"}},` +
		`{"id":"7","attributes":{"name":"z","owner":"u1"}}]}`
	got, st, err := transform(t, plan, ModeList, in)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("output\n got %s\nwant %s", got, want)
	}
	if st.Returned != 5 || st.Filtered != 2 {
		t.Errorf("stats %+v", st)
	}
}

// TestTransformNestedMemo does the same inside the objects of record members
// (SuiteCRM's relationships), whose names are remembered per object, and
// checks that objects which change shape between records are walked as
// they are.
func TestTransformNestedMemo(t *testing.T) {
	t.Parallel()
	plan := Plan{Shape: suiteShape(), Hidden: []string{"cost"}, Record: ownedBy("owner"),
		Masked: map[string]string{"phone": policy.MaskRedact}}
	rec := func(id, rels string) string {
		return `{"id":"` + id + `","attributes":{"owner":"u1"},"relationships":` + rels + `}`
	}
	in := `{"data":[` +
		rec("1", `{"C":{"links":{"related":"a","phone":"1"}},"D":{"x":1}}`) + `,` +
		rec("2", `{"C":{"links":{"cost":"S1","phone":"2"}},"D":{"x":1}}`) + `,` +
		rec("3", `{"C":{"links":{"co\u0073t":"S2","phone":"3"}},"D":{"COST":"S3"}}`) + `,` +
		rec("4", `{"C":{"links":{"related":"b"},"phone":{"a":1}},"D":[{"x":{"cost":"S4"}},{"phone":5}]}`) + `,` +
		rec("5", `{"C":{"links":{"related":"a","phone":"1"}},"D":{"x":1}}`) + `]}`
	want := `{"data":[` +
		rec("1", `{"C":{"links":{"related":"a","phone":"[redacted]"}},"D":{"x":1}}`) + `,` +
		rec("2", `{"C":{"links":{"phone":"[redacted]"}},"D":{"x":1}}`) + `,` +
		rec("3", `{"C":{"links":{"phone":"[redacted]"}},"D":{}}`) + `,` +
		rec("4", `{"C":{"links":{"related":"b"},"phone":"[redacted]"},"D":[{"x":{}},{"phone":"[redacted]"}]}`) + `,` +
		rec("5", `{"C":{"links":{"related":"a","phone":"[redacted]"}},"D":{"x":1}}`) + `]}`
	got, st, err := transform(t, plan, ModeList, in)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("output\n got %s\nwant %s", got, want)
	}
	if st.Returned != 5 || st.Redacted != 10 || st.Masked != 6 {
		t.Errorf("stats %+v", st)
	}
}
