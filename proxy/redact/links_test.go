package redact

import (
	"strings"
	"testing"

	"github.com/crmgate/crmgate/proxy/profile"
)

func odataShape() profile.Shape {
	return profile.Shape{ListPath: []string{"value"}, RecordPath: []string{}, FieldsPath: []string{}, IDField: "accountid",
		TotalPaths: [][]string{{"@odata.count"}}, LinkPaths: [][]string{{"@odata.nextLink"}, {"@odata.context"}}}
}

// TestTransformLinks: URLs at Shape.LinkPaths go through Plan.Links
// (rewritten or dropped), never out as the CRM wrote them; a single
// record's own @odata.context is dropped; a link-named member elsewhere
// in a record is not a link.
func TestTransformLinks(t *testing.T) {
	t.Parallel()
	rewrite := func(s string) (string, bool) {
		if rest, ok := strings.CutPrefix(s, "https://crm/"); ok {
			return "https://gw/" + rest, true
		}
		return "", false
	}
	list := `{"@odata.context":"https://crm/$metadata#accounts","@odata.count":2,"value":[` +
		`{"accountid":"a1","owner":"u1","name":"x"},{"accountid":"a2","owner":"u2","name":"y"}],` +
		`"@odata.nextLink":"https://crm/accounts?$skiptoken=2"}`
	cases := []struct {
		name  string
		plan  Plan
		mode  Mode
		in    string
		want  string
		wantN int
	}{
		{"rewritten, count removed when filtered", Plan{Shape: odataShape(), Record: ownedBy("owner"), Links: rewrite}, ModeList, list,
			`{"@odata.context":"https://gw/$metadata#accounts","value":[{"accountid":"a1","owner":"u1","name":"x"}],"@odata.nextLink":"https://gw/accounts?$skiptoken=2"}`, 1},
		{"count kept when pushed down", Plan{Shape: odataShape(), Record: ownedBy("owner"), Links: rewrite, KeepTotals: true}, ModeList, list,
			`{"@odata.context":"https://gw/$metadata#accounts","@odata.count":2,"value":[{"accountid":"a1","owner":"u1","name":"x"}],"@odata.nextLink":"https://gw/accounts?$skiptoken=2"}`, 1},
		{"elsewhere dropped", Plan{Shape: odataShape(), Links: rewrite}, ModeList,
			`{"@odata.context":"https://evil/$metadata","value":[],"@odata.nextLink":"https://evil/next"}`, `{"value":[]}`, 0},
		{"no rewriter drops", Plan{Shape: odataShape()}, ModeList,
			`{"value":[],"@odata.nextLink":"https://crm/next"}`, `{"value":[]}`, 0},
		{"not a string dropped", Plan{Shape: odataShape(), Links: rewrite}, ModeList,
			`{"value":[],"@odata.nextLink":{"href":"https://crm/x"}}`, `{"value":[]}`, 0},
		{"escaped link unescaped first", Plan{Shape: odataShape(), Links: rewrite}, ModeList,
			`{"value":[],"@odata.nextLink":"https:\/\/crm\/next"}`, `{"value":[],"@odata.nextLink":"https://gw/next"}`, 0},
		{"single record drops its context", Plan{Shape: odataShape(), Record: ownedBy("owner"), Links: rewrite}, ModeRecord,
			`{"@odata.context":"https://crm/$metadata#accounts/$entity","accountid":"a1","owner":"u1"}`, `{"accountid":"a1","owner":"u1"}`, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, st, err := transform(t, c.plan, c.mode, c.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want || st.Returned != c.wantN {
				t.Errorf("got %s (%d returned)\nwant %s (%d)", got, st.Returned, c.want, c.wantN)
			}
			if strings.Contains(got, "https://crm/") || strings.Contains(got, "evil") {
				t.Errorf("a CRM or foreign URL passed: %s", got)
			}
		})
	}
}
