package redact

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/profile"
)

// TestTransformRecordType: with Plan.RecordType a list keeps only records
// whose type member names that module, however the CRM spells the JSON;
// the rest are dropped as filtered, whatever the record rule says.
func TestTransformRecordType(t *testing.T) {
	t.Parallel()
	shape := suiteShape()
	shape.TypeField = "type"
	allowAll := func() *funcRule {
		return &funcRule{fields: []string{"type", "owner"}, check: func(map[string]any) (policy.RecordDecision, error) {
			return policy.RecordDecision{Allow: true}, nil
		}}
	}
	in := `{"data":[
		{"type":"Contacts","id":"c1","attributes":{"type":"Customer","owner":"u1"}},
		{"type":"Cases","id":"x1","attributes":{"owner":"u1"}},
		{"id":"x2","attributes":{"owner":"u1"}},
		{"type":"contacts","id":"x3","attributes":{"owner":"u1"}},
		{"type":"\u0043ontacts","id":"c2","attributes":{"owner":"u1"}},
		{"type":["Contacts"],"id":"x4","attributes":{"owner":"u1"}},
		{"type":null,"id":"x5","attributes":{"owner":"u1"}},
		{"attributes":{"owner":"u1"},"id":"c3","type":"Contacts"},
		{"type":"Contacts","type2":"Cases","id":"c4","attributes":{}},
		{"type":"Contact","id":"c5","attributes":{"owner":"u1"}},
		{"type":"Contact ","id":"x6","attributes":{"owner":"u1"}}
	]}`
	rule := allowAll()
	out, st, err := transform(t, Plan{Shape: shape, Record: rule, RecordTypes: []string{"Contacts", "Contact"}}, ModeList, in)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Data []struct {
			ID   string `json:"id"`
			Type any    `json:"type"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range doc.Data {
		got = append(got, r.ID)
	}
	if want := []string{"c1", "c2", "c3", "c4", "c5"}; !reflect.DeepEqual(got, want) {
		t.Errorf("kept %v, want %v: %s", got, want, out)
	}
	if st.Filtered != 6 || st.Returned != 5 {
		t.Errorf("filtered %d returned %d, want 6 and 5", st.Filtered, st.Returned)
	}
	// The record's own "type" field (inside attributes) still reaches the
	// rule; the record object's type member does not pose as a field.
	if len(rule.seen) == 0 || rule.seen[0]["type"] != "Customer" {
		t.Errorf("rule saw %v, want the attribute type Customer first", rule.seen)
	}
	for _, s := range rule.seen {
		if s["type"] == "Contacts" {
			t.Errorf("the record object's type reached the rule as a field: %v", s)
		}
	}

	t.Run("without RecordTypes every type passes", func(t *testing.T) {
		t.Parallel()
		_, st, err := transform(t, Plan{Shape: shape, Record: allowAll()}, ModeList, in)
		if err != nil || st.Returned != 11 {
			t.Fatalf("returned %d, %v; want all 11", st.Returned, err)
		}
	})
	t.Run("the type check holds without a record rule", func(t *testing.T) {
		t.Parallel()
		_, st, err := transform(t, Plan{Shape: shape, RecordTypes: []string{"Contacts", "Contact"}}, ModeList, in)
		if err != nil || st.Returned != 5 || st.Filtered != 6 {
			t.Fatalf("returned %d filtered %d, %v; want 5 and 6", st.Returned, st.Filtered, err)
		}
	})
	t.Run("a plan that cannot tell the type from a field does not compile", func(t *testing.T) {
		t.Parallel()
		for name, p := range map[string]Plan{
			"no type field":     {Shape: suiteShape(), RecordTypes: []string{"Contacts", "Contact"}},
			"fields at the top": {Shape: profile.Shape{ListPath: []string{"list"}, IDField: "id", TypeField: "type"}, RecordTypes: []string{"Contacts", "Contact"}},
		} {
			if _, err := p.Compile(); err == nil {
				t.Errorf("%s: compiled, want an error", name)
			}
		}
	})
}
