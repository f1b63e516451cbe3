package policy

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// handFields are the record fields the hand-written policies read.
var handFields = []string{"owner", "status", "public", "region", "level", "amount", "archived", "name", "meta", "tags", "a", "b", "flag", "hide", "ts", "n"}

// handValues are values those policies compare with, besides the generic
// pool.
var handValues = []any{
	"alice", "bob", "eu", "uk", "closed", "open", 3, "3", 2.5, 100, 99.5, "a", "ab", "ba",
	map[string]any{"owner": map[string]any{"id": "alice"}}, map[string]any{"owner": "alice"},
	[]any{"x", "y"}, []any{"x", 1}, []any{"x"}, []any{"salary", "phone"},
}

// TestRecordFilterConstructs runs hand-written policies, each exercising a
// construct of the translator or one it must refuse, against the engine on
// random records. Exact says whether the compiled predicate must run.
func TestRecordFilterConstructs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		policy string
		exact  bool
		// fields, when set, is what Fields must return (for alice).
		fields []string
		// uniform: random records all get the same answer, by design.
		uniform bool
	}{
		{
			name: "equality and inequality; undefined record_allow allows",
			policy: `record_allow if input.record.owner == input.subject.id
record_allow if { input.record.status != "closed"; input.record.public == true }
record_hidden_fields contains "status" if input.record.owner != input.subject.id`,
			exact:   true,
			fields:  []string{"owner", "public", "status"},
			uniform: true,
		},
		{
			name: "membership and number comparisons",
			policy: `default record_allow := false
record_allow if input.record.region in {"eu", "uk"}
record_allow if input.record.level >= 3
record_allow if { input.record.amount < 100; input.record.amount > 1 }`,
			exact: true,
		},
		{
			name: "negation and type checks",
			policy: `default record_allow := false
record_allow if { is_string(input.record.owner); not input.record.archived }
record_allow if is_null(input.record.owner)
record_hidden_fields contains "secret" if not input.record.public == true
record_hidden_fields contains "name" if input.record.owner != input.subject.id`,
			exact: true,
		},
		{
			// Record values of the wrong type for a builtin go to the
			// engine, even where the request drops the body.
			name: "startswith on a record value, in a body the request drops",
			policy: `default record_allow := false
record_allow if { startswith(input.record.name, "a"); count(input.subject.roles) > 5 }
record_allow if input.record.owner == input.subject.id`,
			exact:  true,
			fields: []string{"name", "owner"},
		},
		{
			name: "string builtins through a variable",
			policy: `default record_allow := false
record_allow if { n := input.record.name; endswith(n, "b"); lower(n) == n }`,
			exact: true,
		},
		{
			name:   "nested paths",
			policy: `record_allow := input.record.meta.owner.id == input.subject.id`,
			exact:  true,
			fields: []string{"meta"},
		},
		{
			name: "comprehension, count and every",
			policy: `default record_allow := false
owners := {o | some f in ["a", "b"]; o := input.record[f]; o != null}
record_allow if { count(owners) == 1; input.subject.id in owners }
record_allow if { is_array(input.record.tags); every t in input.record.tags { t in {"x", "y"} } }`,
			exact:  true,
			fields: []string{"a", "b", "tags"},
		},
		{
			// x = s[k] with s bound: looked up in sets, walked in arrays
			// and objects, nothing in scalars; k bound to the key. Object
			// values of record fields also reach the hazard check, which
			// used to hand types.Object.Select an ast.Value and panic.
			name: "membership through a key variable",
			policy: `default record_allow := false
tagset := {t | some t in input.record.tags}
record_allow if { some k; tagset[k] == "y"; k == "y" }
record_allow if { some k; input.record.meta[k] == input.subject.id }
record_allow if { some i; input.record.tags[i] == "x"; i == 0; count(input.record.tags) == 2 }
record_allow if { some k; input.record.name[k] == "a" }
record_allow if { some k; {n | n := input.record.n}[k] == 3 }
record_hidden_fields contains k if { some k; input.record.meta[k] == {"id": "alice"} }
record_hidden_fields contains "n" if { some k; tagset[k] == input.record.n }`,
			exact: true,
		},
		{
			// Numbers are compared, not looked up by spelling. The union
			// leaves a residual whose set is the wildcard variable _,
			// which the general generator translation reads unbound.
			name: "membership of numbers spelt differently",
			policy: `default record_allow := false
nums := {n | some n in input.record.tags} | {2.0}
record_allow if { some k; nums[k] == 1.0 }
record_allow if { some k; nums[k] == input.record.level }
record_hidden_fields contains "two" if { some k; nums[k] == 2 }`,
			exact: true,
		},
		{
			// Comprehensions of record fields are remembered by the
			// fields' values: records agreeing on one field but not the
			// other, and a comprehension inside another that was compiled
			// (and remembered) first, whose fields the outer one reads
			// too.
			name: "comprehensions remembered by field values",
			policy: `default record_allow := false
pair := {v | some f in ["owner", "region"]; v := input.record[f]; v != null}
record_allow if { count(pair) == 2; input.subject.id in pair; "eu" in pair }
record_allow if count({x | x := input.record.status}) == 1
record_hidden_fields contains "status" if count({y | some y in {x | x := input.record.status}; y == "open"}) == 1`,
			exact: true,
		},
		{
			name: "conflicting values are an error",
			policy: `record_allow := true if input.record.a == 1
record_allow := false if input.record.b == 1`,
			exact: true,
		},
		{
			name:   "wrongly typed record_allow is an error",
			policy: `record_allow := input.record.flag`,
			exact:  true,
		},
		{
			name:   "hidden fields taken from the record, strings or not",
			policy: `record_hidden_fields contains f if some f in input.record.hide`,
			exact:  true,
			fields: []string{"hide"},
		},
		{
			name:   "the whole record compared",
			policy: `record_allow := input.record != {"owner": "alice"}`,
			exact:  true,
			// Random records never equal the constant.
			uniform: true,
		},
		{
			name:   "iteration over the record's keys",
			policy: `record_hidden_fields contains k if { some k, v in input.record; v == "closed" }`,
			exact:  true,
		},
		{
			name:   "a builtin the translator lacks falls back",
			policy: `record_allow if regex.replace(input.record.name, "a", "") == "b"`,
			exact:  false,
		},
		{
			name:   "sprintf on a record value falls back",
			policy: "default record_allow := false\nrecord_allow if sprintf(\"%v\", [input.record.n]) == \"3\"",
			exact:  false,
		},
		{
			name:   "the clock falls back",
			policy: "default record_allow := false\nrecord_allow if time.now_ns() > input.record.ts",
			exact:  false,
		},
		{
			name:   "count of the whole record falls back",
			policy: "default record_allow := false\nrecord_allow if count(input.record) > 11",
			exact:  false,
		},
		{
			name: "hidden fields as a complete rule fall back",
			policy: `record_hidden_fields := {"a"} if input.record.a == 1
record_allow if input.record.owner == input.subject.id`,
			exact: false,
		},
	}
	subjects := []*Subject{
		{ID: "alice", Roles: []string{"sales"}},
		{ID: "bob", Roles: []string{"sales"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := load(t, map[string]string{"crmgate.rego": "package crmgate\n\n" + tt.policy + "\n"})
			var stats filterStats
			for j, s := range subjects {
				in := &Input{Subject: s, Resource: Resource{Module: "Accounts", Action: ActionList}}
				if j == 0 && tt.fields != nil {
					f, err := e.RecordFilter(context.Background(), in)
					if err != nil {
						t.Fatal(err)
					}
					if got := f.Fields(); !reflect.DeepEqual(got, tt.fields) {
						t.Errorf("Fields() = %#v, want %#v", got, tt.fields)
					}
				}
				gen := newRecordGen(uint64(i*10+j), handFields, handValues...)
				stats.add(assertFilterMatches(t, e, in, gen, 250, tt.exact))
			}
			if !tt.uniform && (stats.allowed+stats.errors == 0 || stats.denied+stats.errors+stats.hidden == 0) {
				t.Errorf("records too uniform to prove anything: %+v", stats)
			}
		})
	}
}

// TestRecordFilterErrorsLikeTheEngine pins the cases where the predicate
// must hand the record to the engine and return its error.
func TestRecordFilterErrorsLikeTheEngine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		policy string
		record map[string]any
		// ruleErr: the error is a *RuleError.
		ruleErr bool
	}{
		{
			name:   "conflict",
			policy: "record_allow := true if input.record.a == 1\nrecord_allow := false if input.record.b == 1",
			record: map[string]any{"a": 1, "b": 1},
		},
		{
			name:    "record_allow not a boolean",
			policy:  "record_allow := input.record.flag",
			record:  map[string]any{"flag": "yes"},
			ruleErr: true,
		},
		{
			name:    "hidden field not a string",
			policy:  "record_hidden_fields contains f if some f in input.record.hide",
			record:  map[string]any{"hide": []any{"a", 1}},
			ruleErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := load(t, map[string]string{"crmgate.rego": "package crmgate\n\n" + tt.policy + "\n"})
			in := &Input{Subject: &Subject{ID: "alice"}, Resource: Resource{Module: "Accounts", Action: ActionList}}
			f, err := e.RecordFilter(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if !f.Exact() {
				t.Fatalf("not exact: %s", f.cf.reason)
			}
			d, err := f.Check(tt.record)
			if err == nil {
				t.Fatalf("Check = %+v, want an error", d)
			}
			if d.Allow {
				t.Error("an error allowed the record")
			}
			var re *RuleError
			if errors.As(err, &re) != tt.ruleErr {
				t.Errorf("error %v: RuleError %v, want %v", err, !tt.ruleErr, tt.ruleErr)
			}
		})
	}
}

// TestRecordFilterConcurrentChecks shares one filter between goroutines.
func TestRecordFilterConcurrentChecks(t *testing.T) {
	t.Parallel()
	e := load(t, map[string]string{"crmgate.rego": `package crmgate

default record_allow := false
owners := {o | some f in ["a", "b"]; o := input.record[f]; o != null}
record_allow if { count(owners) == 1; input.subject.id in owners }
record_hidden_fields contains "b" if not input.record.public
`})
	f, err := e.RecordFilter(context.Background(), &Input{Subject: &Subject{ID: "alice"}, Resource: Resource{Module: "M", Action: "list"}})
	if err != nil {
		t.Fatal(err)
	}
	recs := []map[string]any{
		{"a": "alice"}, {"a": "alice", "b": "bob"}, {"b": "alice", "public": true}, {},
	}
	want := make([]RecordDecision, len(recs))
	for i, r := range recs {
		if want[i], err = f.Check(r); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for n := range 200 {
				i := n % len(recs)
				got, err := f.Check(recs[i])
				if err != nil || !reflect.DeepEqual(got, want[i]) {
					t.Errorf("record %v: %+v, %v; want %+v", recs[i], got, err, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestRecordFilterKeepsItsRevision: a filter compiled before a reload keeps
// answering from its revision, whether it runs the predicate or the engine.
func TestRecordFilterKeepsItsRevision(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := loadDir(t, dir, "package crmgate\n\ndefault record_allow := false\nrecord_allow if input.record.owner == input.subject.id\n")
	in := &Input{Subject: &Subject{ID: "alice"}, Resource: Resource{Module: "M", Action: "list"}}
	f, err := e.RecordFilter(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	rewrite(t, dir, "package crmgate\n\ndefault record_allow := true\n")
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d, err := f.Check(map[string]any{"owner": "bob"}); err != nil || d.Allow {
		t.Errorf("old filter after reload: %+v, %v; want the old revision's deny", d, err)
	}
	g, err := e.RecordFilter(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := g.Check(map[string]any{"owner": "bob"}); err != nil || !d.Allow {
		t.Errorf("new filter: %+v, %v; want allow", d, err)
	}
}

// TestNativeBuiltinsAgreeWithOPA compares the hand-written builtins with
// OPA's implementations on values of every type, numbers spelled in
// different ways included.
func TestNativeBuiltinsAgreeWithOPA(t *testing.T) {
	t.Parallel()
	values := []ast.Value{
		ast.String("a"), ast.String(""), ast.String("héllo"), ast.Number("1"), ast.Number("1.0"), ast.Number("2"),
		ast.Boolean(true), ast.Boolean(false), ast.Null{},
		ast.NewArray(ast.StringTerm("a"), ast.NumberTerm("1")), ast.NewArray(),
		ast.NewSet(ast.StringTerm("a"), ast.NumberTerm("1")), ast.NewSet(),
		ast.NewObject([2]*ast.Term{ast.StringTerm("k"), ast.StringTerm("a")}),
	}
	for name, native := range nativeBuiltins {
		arity := len(ast.BuiltinMap[name].Decl.FuncArgs().Args)
		fn := topdown.GetBuiltin(name)
		var args [][]ast.Value
		for _, a := range values {
			if arity == 1 {
				args = append(args, []ast.Value{a})
				continue
			}
			for _, b := range values {
				args = append(args, []ast.Value{a, b})
			}
		}
		for _, a := range args {
			nf, of := &frame{}, &frame{}
			got, gotOK := native(nf, a)
			want, wantOK := callBuiltin(of, fn, a)
			if gotOK != wantOK || nf.abort != of.abort || (gotOK && !ast.ValueEqual(got, want)) {
				t.Errorf("%s%v: native %v, %v (abort %v); OPA %v, %v (abort %v)", name, a, got, gotOK, nf.abort, want, wantOK, of.abort)
			}
		}
	}
}

// TestRecordFilterMemoKeepsRecordsApart tries to make the per-filter memo
// answer one record with another's decision: values that run together
// without their lengths, a number and the same digits as a string, null
// and an absent field, and a caller changing the hidden fields it got.
func TestRecordFilterMemoKeepsRecordsApart(t *testing.T) {
	t.Parallel()
	e := load(t, map[string]string{"crmgate.rego": `package crmgate

default record_allow := false

record_allow if {
	input.record.a == "x"
	input.record.b == "y\u0004z"
}

record_allow if input.record.n == 1

record_allow if input.record.c == null

record_hidden_fields contains "secret" if input.record.a == "x"
`})
	in := &Input{Subject: &Subject{ID: "alice"}, Resource: Resource{Module: "Accounts", Action: ActionList}}
	f, err := e.RecordFilter(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Exact() || f.Fields() == nil {
		t.Fatalf("filter not exact with known fields: %s", f.cf.reason)
	}
	records := []map[string]any{
		{"a": "x", "b": "y\x04z"},
		{"a": "x\x04y", "b": "z"},
		{"a": "x", "b": "y\x04z"},
		{"n": json.Number("1")},
		{"n": "1"},
		{"c": nil},
		{},
		{"c": nil},
		{"n": json.Number("1")},
		{"a": "x", "b": "y\x04z", "n": "1"},
	}
	for round := range 2 {
		for i, rec := range records {
			got, err := f.Check(rec)
			if err != nil {
				t.Fatal(err)
			}
			full := *in
			full.Record = rec
			want, err := e.Record(context.Background(), &full)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d record %d %q: Check = %+v, engine = %+v", round, i, rec, got, want)
			}
			// The caller owns what it got.
			if len(got.HiddenFields) > 0 {
				got.HiddenFields[0] = "changed"
			}
		}
	}
}
