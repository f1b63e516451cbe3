package profile

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/policy/cond"
)

// FuzzSOQL holds the salesforce dialect to "nothing the rule hides is
// selectable": for any query, either crmgate refuses it, or the query it
// forwards (classification by FROM, canonical rewrite, the pushed record
// rule and the rule's fields, as the proxy chains them) is one q that
// parses, reads the object it was classified as, names no hidden field in
// SELECT, WHERE or ORDER BY, has a WHERE whose root is the rule or (rule)
// AND (client), and reads back to itself. Classification, QueryFields and
// the rewrite must agree on what they accept. soql is the query text
// (sent as q=) unless raw is set, when it is the whole query string.
func FuzzSOQL(f *testing.F) {
	for _, s := range []string{
		"SELECT Name FROM Product2", "select name, cost__c from product2", "SELECT Name FROM Product2 WHERE Cost__c > 1",
		"SELECT Name FROM Account WHERE Name = 'x\\' OR Name != \\'y' AND Type = 'z'",
		"SELECT Name FROM Account WHERE (Name = 'a' OR Name = 'b') AND NOT (Type IN ('x', 'y'))",
		"SELECT Name FROM Account -- x", "SELECT FIELDS(ALL) FROM Account", "SELECT Account.Name FROM Contact",
		"SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact)", "SELECT Name FROM Account ORDER BY Name DESC NULLS LAST LIMIT 5 OFFSET 10",
		"SELECT Name FROM Employee__c WHERE CreatedDate = LAST_N_DAYS:30 AND Salary__c = null",
		"SELECT Name FROM Account WHERE Name LIKE '%\\_x' AND CreatedDate > 2026-01-01T00:00:00Z",
		"SELECT Name FROM Account WHERE Amount >= -1.5 OR IsActive = true", "SELECT Name FROM account WHERE name <> null",
	} {
		f.Add(s, false)
	}
	f.Add("q=SELECT+Name+FROM+Product2&q=SELECT+Cost__c+FROM+Product2", true)
	f.Add("q=SELECT%20Name%20FROM%20Product2%20WHERE%20%43ost__c%20%3E%201", true)
	f.Add("%71=SELECT+Name+FROM+Account", true)
	f.Add("q=SELECT+Name+FROM+Account&_HttpMethod=DELETE", true)
	p, err := Builtin("salesforce")
	if err != nil {
		f.Fatal(err)
	}
	d := p.Dialect.(soqlQuery)
	hidden := []string{"Cost__c", "Salary__c", "NextStep"}
	isHidden := func(name string) bool {
		for _, part := range FieldRefParts(name) {
			for _, h := range hidden {
				if strings.EqualFold(part, h) {
					return true
				}
			}
		}
		return false
	}
	owners := []any{"005D000000IqhSLIAZ"[:15] + SalesforceIDSuffix("005D000000IqhSL"), "0015000000L6lMZAAZ"}
	rule := cond.Cond{Op: cond.Or, Args: []cond.Cond{
		{Op: cond.In, Field: "OwnerId", Values: owners},
		{Op: cond.Eq, Field: "AccountId", Values: []any{"001D000000IqhSLIAZ"}},
	}}
	ruleExpr, ok := soqlCond(rule)
	if !ok {
		f.Fatal("rule does not translate")
	}
	want := ruleExpr.String()
	f.Fuzz(func(t *testing.T, soql string, raw bool) {
		query := "q=" + url.QueryEscape(soql)
		if raw {
			query = soql
		}
		m, merr := p.ClassifyQuery(Match{Kind: KindList, Action: "list", ModuleFromQuery: true}, query)
		if merr == nil {
			merr = p.CheckQuery(query)
		}
		var cerr error
		if merr == nil {
			_, _, cerr = d.Canonical(m, query, nil)
		}
		fields, ferr := d.QueryFields(query, nil)
		if !raw && (merr == nil && cerr == nil) != (ferr == nil) {
			t.Fatalf("classification, Canonical and QueryFields disagree on %q: %v / %v / %v", soql, merr, cerr, ferr)
		}
		if merr != nil || cerr != nil || ferr != nil {
			for _, err := range []error{merr, cerr} {
				if err != nil && !errors.Is(err, ErrBadQuery) && !errors.Is(err, ErrMethodOverride) && !errors.Is(err, ErrBadPath) {
					t.Fatalf("refusal of %q is not a bad query: %v", query, err)
				}
			}
			return
		}
		for _, qf := range fields {
			if isHidden(qf.Name) {
				return // the proxy refuses it (guardQuery)
			}
		}
		up, _, ok, err := d.Push(m, query, nil, rule)
		if err != nil || !ok {
			t.Fatalf("accepted query %q not pushed: %v %v", query, ok, err)
		}
		if up, _, err = d.WithFields(m, up, nil, []string{"AccountId", "Id", "OwnerId"}); err != nil {
			t.Fatalf("WithFields(%q): %v", up, err)
		}
		vals, err := url.ParseQuery(up)
		if err != nil || len(vals) != 1 || len(vals["q"]) != 1 {
			t.Fatalf("forwarded query %q is not one q: %v", up, err)
		}
		fwd, err := ParseSOQL(vals.Get("q"))
		if err != nil {
			t.Fatalf("forwarded SOQL %q does not parse: %v", vals.Get("q"), err)
		}
		if fwd.From != m.Module {
			t.Fatalf("forwarded SOQL %q reads %s, classified as %s", fwd, fwd.From, m.Module)
		}
		w := fwd.Where
		if w == nil || w.String() != want && !(w.Op == SOQLAnd && len(w.Args) == 2 && w.Args[0].String() == want) {
			t.Fatalf("forwarded WHERE %v is not the rule %q ANDed with the client's (from %q)", w, want, soql)
		}
		names := append(w.Fields(nil), fwd.Fields...)
		for _, o := range fwd.OrderBy {
			names = append(names, o.Field)
		}
		for _, n := range names {
			if isHidden(n) {
				t.Fatalf("forwarded SOQL %q names hidden field %q (from %q)", fwd, n, soql)
			}
		}
		again, _, err := d.Canonical(m, up, nil)
		if err != nil || again != up {
			t.Fatalf("forwarded query %q does not read back to itself: %q %v", up, again, err)
		}
	})
}
