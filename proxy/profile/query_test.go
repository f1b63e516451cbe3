package profile

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestQueryFields reads each CRM's list parameters the way PHP would, so a
// field named in a filter or a sort cannot hide behind a spelling crmgate
// reads differently from the CRM.
func TestQueryFields(t *testing.T) {
	t.Parallel()
	suite := mustBuiltin(t, "suitecrm8")
	espo := mustBuiltin(t, "espocrm")
	generic, err := New("generic", nil, Shape{IDField: "id"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		p     *Profile
		query string
		want  []string // "use:name"
		err   bool
	}{
		{"suite filter", suite, "filter[cost][gt]=0", []string{"filter:cost"}, false},
		{"suite filter operator is no field", suite, "filter[operator]=or&filter[name][eq]=x", []string{"filter:name"}, false},
		{"suite encoded brackets", suite, "filter%5Bcost%5D%5Bgt%5D=0", []string{"filter:cost"}, false},
		{"suite encoded field letters", suite, "filter[%63ost][gt]=0", []string{"filter:cost"}, false},
		{"suite leading space and plus", suite, "+filter[cost][gt]=0", []string{"filter:cost"}, false},
		{"suite base name case", suite, "FILTER[cost][gt]=0", []string{"filter:cost"}, false},
		{"suite nul ends the name", suite, "filter[cost][gt]%00x=0", []string{"filter:cost"}, false},
		{"suite sort descending list", suite, "sort=-cost,name", []string{"sort:cost", "sort:name"}, false},
		{"suite sort plus", suite, "sort=%2Bcost", []string{"sort:cost"}, false},
		{"suite sparse fieldset", suite, "fields[AOS_Products]=cost,name", []string{"select:cost", "select:name"}, false},
		{"suite paging only", suite, "page[size]=1&page[number]=2", nil, false},
		{"suite expression field refused", suite, "filter[cost)][gt]=0", nil, true},
		{"suite bad escape in value", suite, "sort=%zz", nil, true},
		{"suite bad escape in name", suite, "filt%zzer=1", nil, true},
		{"espo where attribute", espo, "where[0][type]=greaterThan&where[0][attribute]=costPrice&where[0][value]=1", []string{"filter:costPrice"}, false},
		{"espo nested or", espo, "where[0][type]=or&where[0][value][0][type]=equals&where[0][value][0][attribute]=costPrice", []string{"filter:costPrice"}, false},
		{"espo legacy field", espo, "where[0][field]=costPrice", []string{"filter:costPrice"}, false},
		{"espo attribute array", espo, "where[0][attribute][]=costPrice", []string{"filter:costPrice"}, false},
		{"espo whereGroup", espo, "whereGroup[0][attribute]=costPrice", []string{"filter:costPrice"}, false},
		{"espo link attribute", espo, "where[0][attribute]=product.costPrice", []string{"filter:product.costPrice"}, false},
		{"espo expression attribute", espo, "where[0][type]=expression&where[0][attribute]=MUL:(costPrice,2)", nil, true},
		{"espo orderBy and sortBy", espo, "orderBy=costPrice&sortBy=name", []string{"sort:costPrice", "sort:name"}, false},
		{"espo select", espo, "select=costPrice,name", []string{"select:costPrice", "select:name"}, false},
		{"espo textFilter", espo, "textFilter=0001", []string{"text:"}, false},
		{"espo empty textFilter", espo, "textFilter=", nil, false},
		{"espo searchParams json", espo, `searchParams={"where":[{"type":"or","value":[{"type":"equals","attribute":"costPrice","value":1}]}],"orderBy":"salary"}`,
			[]string{"filter:costPrice", "sort:salary"}, false},
		{"espo searchParams duplicate", espo, `searchParams={"orderBy":"name","orderBy":"costPrice"}`, nil, true},
		{"espo searchParams not json", espo, `searchParams={where`, nil, true},
		{"espo searchParams text", espo, `searchParams={"textFilter":"x"}`, []string{"text:"}, false},
		{"espo where without index", espo, "where=costPrice", nil, true},
		{"generic knows nothing", generic, "filter[cost][gt]=0", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.p.QueryFields(tt.query)
			if tt.err {
				if !errors.Is(err, ErrBadQuery) {
					t.Fatalf("err = %v, want ErrBadQuery", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range got {
				names = append(names, string(f.Use)+":"+f.Name)
			}
			if !slices.Equal(names, tt.want) {
				t.Fatalf("fields = %v, want %v", names, tt.want)
			}
		})
	}
}

func TestPHPKey(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, base, keys string }{
		{"filter[cost][gt]", "filter", "cost|gt"},
		{"  filter[cost]", "filter", "cost"},
		{"a.b c[x]", "a_b_c", "x"},
		{"filter[cost", "filter_cost", ""},
		{"filter[cost]x[gt]", "filter", "cost"},
		{"where[0][value][]", "where", "0|value|"},
	} {
		base, keys := phpKey(tt.in)
		if base != tt.base || strings.Join(keys, "|") != tt.keys {
			t.Errorf("phpKey(%q) = %q %q, want %q %q", tt.in, base, keys, tt.base, tt.keys)
		}
	}
}

func TestFieldRefParts(t *testing.T) {
	t.Parallel()
	if got := FieldRefParts("product.costPrice"); !slices.Equal(got, []string{"product", "costPrice", "product.costPrice"}) {
		t.Fatalf("parts = %v", got)
	}
	if got := FieldRefParts("cost"); !slices.Equal(got, []string{"cost"}) {
		t.Fatalf("parts = %v", got)
	}
}

func BenchmarkQueryFields(b *testing.B) {
	espo := mustBuiltin(b, "espocrm")
	q := "maxSize=20&offset=40&orderBy=name&order=asc&where[0][type]=equals&where[0][attribute]=status&where[0][value]=Active&select=id,name,status"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := espo.QueryFields(q); err != nil {
			b.Fatal(err)
		}
	}
}
