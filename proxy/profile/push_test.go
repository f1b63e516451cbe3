package profile

import (
	"errors"
	"testing"

	"github.com/crmgate/crmgate/policy/cond"
)

func eq(f, v string) cond.Cond { return cond.Cond{Op: cond.Eq, Field: f, Values: []any{v}} }

func inSet(f string, vs ...string) cond.Cond {
	c := cond.Cond{Op: cond.In, Field: f}
	for _, v := range vs {
		c.Values = append(c.Values, v)
	}
	return c
}

func TestPushSuite(t *testing.T) {
	t.Parallel()
	p, err := Builtin("suitecrm8")
	if err != nil {
		t.Fatal(err)
	}
	owner := eq("assigned_user_id", "u-1")
	tests := []struct {
		name, module, query string
		c                   cond.Cond
		want                string
		ok                  bool
		bad                 bool
	}{
		{"true pushes nothing", "Accounts", "page[size]=5", cond.Cond{Op: cond.True}, "page[size]=5", true, false},
		{"owner", "Accounts", "page[size]=20&page[number]=2", owner, "filter[assigned_user_id][eq]=u-1&filter[operator]=and&page[size]=20&page[number]=2", true, false},
		{"client filter kept after the rule", "Accounts", "filter[name][eq]=Shop&filter[operator]=AND", owner, "filter[assigned_user_id][eq]=u-1&filter[name][eq]=Shop&filter[operator]=and", true, false},
		{"client asks for the same owner", "Accounts", "filter[assigned_user_id][eq]=u-1", owner, "filter[assigned_user_id][eq]=u-1&filter[operator]=and", true, false},
		{"client asks for another owner: filter after", "Accounts", "filter[assigned_user_id][eq]=u-2", owner, "filter[assigned_user_id][eq]=u-2", false, false},
		{"client neq on the pushed field is ANDed", "Accounts", "filter[assigned_user_id][neq]=u-2", owner, "filter[assigned_user_id][eq]=u-1&filter[assigned_user_id][neq]=u-2&filter[operator]=and", true, false},
		{"encoded brackets are read as PHP reads them", "Accounts", "filter%5Bassigned_user_id%5D%5Beq%5D=u-2", owner, "filter%5Bassigned_user_id%5D%5Beq%5D=u-2", false, false},
		{"value is re-encoded", "Accounts", "filter[name][eq]=a%26filter%5Boperator%5D%3Dor", owner, "filter[assigned_user_id][eq]=u-1&filter[name][eq]=a%26filter%5Boperator%5D%3Dor&filter[operator]=and", true, false},
		{"a set is not SuiteCRM filter syntax", "Accounts", "", inSet("assigned_user_id", "u-1", "u-2"), "", false, false},
		{"or is not SuiteCRM filter syntax", "Accounts", "", cond.Cond{Op: cond.Or, Args: []cond.Cond{owner, eq("id", "x")}}, "", false, false},
		{"relate field is not a column", "Contacts", "", eq("account_id", "acc-1"), "", false, false},
		{"case account is a column", "Cases", "", eq("account_id", "acc-1"), "filter[account_id][eq]=acc-1&filter[operator]=and", true, false},
		{"false is not pushed", "Accounts", "", cond.Cond{Op: cond.False}, "", false, false},

		{"operator or", "Accounts", "filter[operator]=or", owner, "", false, true},
		{"operator OR padded", "Accounts", "filter[operator]=%20OR", owner, "", false, true},
		{"operator twice", "Accounts", "filter[operator]=and&filter[operator]=and", owner, "", false, true},
		{"duplicate key", "Accounts", "filter[name][eq]=a&filter[name][eq]=b", owner, "", false, true},
		{"duplicate key, one encoded", "Accounts", "filter[assigned_user_id][eq]=u-1&filter%5Bassigned_user_id%5D[eq]=u-2", owner, "", false, true},
		{"scalar filter", "Accounts", "filter=x", owner, "", false, true},
		{"filter without op", "Accounts", "filter[name]=x", owner, "", false, true},
		{"op or as a field operator", "Accounts", "filter[assigned_user_id][or]=1", owner, "", false, true},
		{"op and as a field operator", "Accounts", "filter[assigned_user_id][and]=1", owner, "", false, true},
		{"upper-case op", "Accounts", "filter[name][EQ]=x", owner, "", false, true},
		{"array value", "Accounts", "filter[name][eq][]=x", owner, "", false, true},
		{"dotted field", "Accounts", "filter[accounts.name][eq]=x", owner, "", false, true},
		{"spaced field", "Accounts", "filter[assigned%20user%20id][eq]=x", owner, "", false, true},
		{"capitalised base", "Accounts", "Filter[name][eq]=x", owner, "", false, true},
		{"leading space base", "Accounts", "%20filter[operator]=or", owner, "", false, true},
		{"nul in name", "Accounts", "filter[operator]%00x=or", owner, "", false, true},
		{"bad escape", "Accounts", "filter[name][eq]=%zz", owner, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, _, ok, err := p.Dialect.Push(Match{Module: tt.module, Action: "list"}, tt.query, nil, tt.c)
			if tt.bad {
				if !errors.Is(err, ErrBadQuery) {
					t.Fatalf("Push = %q, %v, %v; want ErrBadQuery", got, ok, err)
				}
				return
			}
			if err != nil || ok != tt.ok || (tt.ok && got != tt.want) || (!tt.ok && got != tt.query) {
				t.Fatalf("Push = %q, %v, %v; want %q, %v", got, ok, err, tt.want, tt.ok)
			}
		})
	}
}

func TestPushEspo(t *testing.T) {
	t.Parallel()
	p, err := Builtin("espocrm")
	if err != nil {
		t.Fatal(err)
	}
	team := inSet("assignedUserId", "u-1", "u-2")
	tests := []struct {
		name, query string
		c           cond.Cond
		want        string
		ok, bad     bool
	}{
		{"set", "maxSize=20&offset=40", team, "where[0][type]=in&where[0][attribute]=assignedUserId&where[0][value][0]=u-1&where[0][value][1]=u-2&maxSize=20&offset=40", true, false},
		{"or group", "", cond.Cond{Op: cond.Or, Args: []cond.Cond{eq("accountId", "a"), eq("id", "c")}},
			"where[0][type]=or&where[0][value][0][type]=equals&where[0][value][0][attribute]=accountId&where[0][value][0][value]=a&where[0][value][1][type]=equals&where[0][value][1][attribute]=id&where[0][value][1][value]=c", true, false},
		{"client items renumbered after the rule", "where[0][type]=equals&where[0][attribute]=name&where[0][value]=x", team,
			"where[0][type]=in&where[0][attribute]=assignedUserId&where[0][value][0]=u-1&where[0][value][1]=u-2&where[1][type]=equals&where[1][attribute]=name&where[1][value]=x", true, false},
		{"client append form", "where[][type]=isNotNull&where[][attribute]=name", eq("id", "x"),
			"where[0][type]=equals&where[0][attribute]=id&where[0][value]=x&where[1][type]=isNotNull&where[2][attribute]=name", true, false},
		{"client or group stays one item", "where[7][type]=or&where[7][value][0][type]=isNull&where[7][value][0][attribute]=assignedUserId", eq("id", "x"),
			"where[0][type]=equals&where[0][attribute]=id&where[0][value]=x&where[1][type]=or&where[1][value][0][type]=isNull&where[1][value][0][attribute]=assignedUserId", true, false},
		{"searchParams: filter after", "searchParams=%7B%7D", team, "searchParams=%7B%7D", false, false},
		{"whereGroup: filter after", "whereGroup[0][type]=isNull", team, "whereGroup[0][type]=isNull", false, false},
		{"bool is not pushed", "", cond.Cond{Op: cond.Eq, Field: "deleted", Values: []any{false}}, "", false, false},

		{"duplicate item field", "where[0][type]=equals&where[0][type]=or", team, "", false, true},
		{"encoded duplicate", "where[0][type]=equals&where%5B0%5D%5Btype%5D=or", team, "", false, true},
		{"scalar and array", "where[0][value]=x&where[0][value][]=y", team, "", false, true},
		{"scalar where", "where=x", team, "", false, true},
		{"item without member", "where[0]=x", team, "", false, true},
		{"capitalised base", "Where[0][type]=or", team, "", false, true},
		{"odd key", "where[0][ty.pe]=or", team, "", false, true},
		{"too many parameters", manyParams(201), team, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, _, ok, err := p.Dialect.Push(Match{Module: "Account", Action: "list"}, tt.query, nil, tt.c)
			if tt.bad {
				if !errors.Is(err, ErrBadQuery) {
					t.Fatalf("Push = %q, %v, %v; want ErrBadQuery", got, ok, err)
				}
				return
			}
			if err != nil || ok != tt.ok || (tt.ok && got != tt.want) || (!tt.ok && got != tt.query) {
				t.Fatalf("Push =\n %q, %v, %v; want\n %q, %v", got, ok, err, tt.want, tt.ok)
			}
		})
	}
}

func manyParams(n int) string {
	s := "a=1"
	for i := 1; i < n; i++ {
		s += "&a=1"
	}
	return s
}
