package profile

import (
	"errors"
	"net/http"
	"testing"
)

func mustBuiltin(t testing.TB, name string) *Profile {
	t.Helper()
	p, err := Builtin(name)
	if err != nil {
		t.Fatalf("Builtin(%q): %v", name, err)
	}
	return p
}

type want struct {
	module, id, action string
	kind               Kind
	path               string
	needsBody          bool
	err                error
}

func checkMatch(t *testing.T, got Match, err error, w want) {
	t.Helper()
	if w.err != nil {
		if !errors.Is(err, w.err) {
			t.Fatalf("err = %v, want %v (match %+v)", err, w.err, got)
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected err: %v", err)
	}
	if got.Module != w.module || got.ID != w.id || got.Action != w.action || got.Kind != w.kind ||
		got.Path != w.path || got.NeedsBody != w.needsBody {
		t.Fatalf("got %+v, want %+v", got, w)
	}
}

func TestClassifySuiteCRM(t *testing.T) {
	t.Parallel()
	p := mustBuiltin(t, "suitecrm8")
	const id = "7f3c0a4e-1b2c-4d5e-8f90-123456789abc"
	tests := []struct {
		name, method, path string
		want               want
	}{
		{"list", "GET", "/Api/V8/module/Accounts", want{"Accounts", "", "list", KindList, "/Api/V8/module/Accounts", false, nil}},
		{"head is get", "HEAD", "/Api/V8/module/Accounts", want{"Accounts", "", "list", KindList, "/Api/V8/module/Accounts", false, nil}},
		{"read", "GET", "/Api/V8/module/Contacts/" + id, want{"Contacts", id, "read", KindRecord, "/Api/V8/module/Contacts/" + id, false, nil}},
		{"read readable id", "GET", "/Api/V8/module/Accounts/acc-1", want{"Accounts", "acc-1", "read", KindRecord, "/Api/V8/module/Accounts/acc-1", false, nil}},
		{"create", "POST", "/Api/V8/module", want{"", "", "create", KindRecord, "/Api/V8/module", true, nil}},
		{"update", "PATCH", "/Api/V8/module", want{"", "", "update", KindRecord, "/Api/V8/module", true, nil}},
		{"delete", "DELETE", "/Api/V8/module/Leads/l-1", want{"Leads", "l-1", "delete", KindRecord, "/Api/V8/module/Leads/l-1", false, nil}},
		{"related", "GET", "/Api/V8/module/Accounts/acc-1/relationships/contacts", want{"Accounts", "acc-1", "read", KindRelated, "/Api/V8/module/Accounts/acc-1/relationships/contacts", false, nil}},
		{"relate", "POST", "/Api/V8/module/Accounts/acc-1/relationships", want{"Accounts", "acc-1", "relate", KindOther, "/Api/V8/module/Accounts/acc-1/relationships", false, nil}},
		{"relate by link", "POST", "/Api/V8/module/Accounts/acc-1/relationships/contacts", want{"Accounts", "acc-1", "relate", KindOther, "/Api/V8/module/Accounts/acc-1/relationships/contacts", false, nil}},
		{"unrelate", "DELETE", "/Api/V8/module/Accounts/acc-1/relationships/contacts/c-1", want{"Accounts", "acc-1", "relate", KindOther, "/Api/V8/module/Accounts/acc-1/relationships/contacts/c-1", false, nil}},
		{"meta modules", "GET", "/Api/V8/meta/modules", want{"Meta", "", "read", KindOther, "/Api/V8/meta/modules", false, nil}},
		{"meta fields", "GET", "/Api/V8/meta/fields/Accounts", want{"Accounts", "", "read", KindOther, "/Api/V8/meta/fields/Accounts", false, nil}},
		{"logout", "POST", "/Api/V8/logout", want{"Session", "", "logout", KindOther, "/Api/V8/logout", false, nil}},
		{"custom module kept", "GET", "/Api/V8/module/my_Custom1", want{"my_Custom1", "", "list", KindList, "/Api/V8/module/my_Custom1", false, nil}},
		{"lower module canonicalised", "GET", "/Api/V8/module/accounts/acc-1", want{"Accounts", "acc-1", "read", KindRecord, "/Api/V8/module/Accounts/acc-1", false, nil}},
		{"mixed module canonicalised", "DELETE", "/Api/V8/module/aos_PRODUCTS/p-1", want{"AOS_Products", "p-1", "delete", KindRecord, "/Api/V8/module/AOS_Products/p-1", false, nil}},
		{"token endpoint not routed", "POST", "/Api/access_token", want{err: ErrUnknownRoute}},
		{"legacy prefix not routed", "GET", "/Api/index.php/V8/module/Accounts", want{err: ErrUnknownRoute}},
		{"swagger not routed", "GET", "/Api/V8/meta/swagger.json", want{err: ErrUnknownRoute}},
		{"custom routes not routed", "GET", "/Api/V8/custom/thing", want{err: ErrUnknownRoute}},
		{"put not routed", "PUT", "/Api/V8/module", want{err: ErrUnknownRoute}},
		{"get on create path", "GET", "/Api/V8/module", want{err: ErrUnknownRoute}},
		{"patch with id in path", "PATCH", "/Api/V8/module/Accounts/acc-1", want{err: ErrUnknownRoute}},
		{"options", "OPTIONS", "/Api/V8/module/Accounts", want{err: ErrUnknownRoute}},
		{"trace", "TRACE", "/Api/V8/module/Accounts", want{err: ErrUnknownRoute}},
		{"connect", "CONNECT", "/Api/V8/module/Accounts", want{err: ErrUnknownRoute}},
		{"lower-case method", "get", "/Api/V8/module/Accounts", want{err: ErrUnknownRoute}},
		{"case-changed literal", "GET", "/api/v8/module/Accounts", want{err: ErrUnknownRoute}},
		{"case-changed literal 2", "GET", "/Api/V8/Module/Accounts", want{err: ErrUnknownRoute}},
		{"case-changed relationships", "GET", "/Api/V8/module/Accounts/a/Relationships/x", want{err: ErrUnknownRoute}},
		{"too deep", "GET", "/Api/V8/module/Accounts/a/relationships/x/y", want{err: ErrUnknownRoute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := p.Classify(tt.method, tt.path, http.Header{})
			checkMatch(t, got, err, tt.want)
		})
	}
}

func TestClassifyEspoCRM(t *testing.T) {
	t.Parallel()
	p := mustBuiltin(t, "espocrm")
	const id = "5564764442a6d024c"
	tests := []struct {
		name, method, path string
		want               want
	}{
		{"list", "GET", "/api/v1/Account", want{"Account", "", "list", KindList, "/api/v1/Account", false, nil}},
		{"head", "HEAD", "/api/v1/Account/" + id, want{"Account", id, "read", KindRecord, "/api/v1/Account/" + id, false, nil}},
		{"create", "POST", "/api/v1/Contact", want{"Contact", "", "create", KindRecord, "/api/v1/Contact", false, nil}},
		{"read", "GET", "/api/v1/Contact/" + id, want{"Contact", id, "read", KindRecord, "/api/v1/Contact/" + id, false, nil}},
		{"put", "PUT", "/api/v1/Contact/c-1", want{"Contact", "c-1", "update", KindRecord, "/api/v1/Contact/c-1", false, nil}},
		{"patch", "PATCH", "/api/v1/Contact/c-1", want{"Contact", "c-1", "update", KindRecord, "/api/v1/Contact/c-1", false, nil}},
		{"delete", "DELETE", "/api/v1/Lead/l-1", want{"Lead", "l-1", "delete", KindRecord, "/api/v1/Lead/l-1", false, nil}},
		{"related", "GET", "/api/v1/Account/" + id + "/opportunities", want{"Account", id, "read", KindRelated, "/api/v1/Account/" + id + "/opportunities", false, nil}},
		{"link", "POST", "/api/v1/Account/acc-1/contacts", want{"Account", "acc-1", "relate", KindOther, "/api/v1/Account/acc-1/contacts", false, nil}},
		{"unlink", "DELETE", "/api/v1/Account/acc-1/contacts", want{"Account", "acc-1", "relate", KindOther, "/api/v1/Account/acc-1/contacts", false, nil}},
		{"module canonicalised", "GET", "/api/v1/aCCOUNT", want{"Account", "", "list", KindList, "/api/v1/Account", false, nil}},
		{"id named action is an id", "GET", "/api/v1/Account/action", want{"Account", "action", "read", KindRecord, "/api/v1/Account/action", false, nil}},
		{"action route refused", "POST", "/api/v1/Account/action/massDelete", want{err: ErrUnknownRoute}},
		{"export refused", "POST", "/api/v1/Account/action/export", want{err: ErrUnknownRoute}},
		{"get action refused", "GET", "/api/v1/Account/action/x", want{err: ErrUnknownRoute}},
		{"layout refused", "PUT", "/api/v1/Account/layout/detail", want{err: ErrUnknownRoute}},
		{"layout get refused", "GET", "/api/v1/Account/layout/detail", want{err: ErrUnknownRoute}},
		{"stream refused", "GET", "/api/v1/Account/acc-1/stream", want{err: ErrUnknownRoute}},
		{"subscription refused", "PUT", "/api/v1/Account/acc-1/subscription", want{err: ErrUnknownRoute}},
		{"subscription delete refused", "DELETE", "/api/v1/Account/acc-1/subscription", want{err: ErrUnknownRoute}},
		{"put on list", "PUT", "/api/v1/Account", want{err: ErrUnknownRoute}},
		{"patch related", "PATCH", "/api/v1/Account/a/contacts", want{err: ErrUnknownRoute}},
		{"case-changed base", "GET", "/API/v1/Account", want{err: ErrUnknownRoute}},
		{"no base", "GET", "/Account", want{err: ErrUnknownRoute}},
		{"deeper", "GET", "/api/v1/Account/a/b/c", want{err: ErrUnknownRoute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := p.Classify(tt.method, tt.path, nil)
			checkMatch(t, got, err, tt.want)
		})
	}
}

func TestPrecedenceLiteralWins(t *testing.T) {
	t.Parallel()
	routes := []Route{
		{Method: "GET", Pattern: "/x/{module}/{id}", Action: "read", Kind: KindRecord},
		{Method: "GET", Pattern: "/x/{module}/special", Action: "export", Kind: KindOther},
		{Method: "POST", Pattern: "/x/{module}/{id}", Action: "create", Kind: KindRecord},
		{Method: "GET", Pattern: "/x/Fixed/{id}", Action: "read", Kind: KindRecord, Module: "Fixed"},
	}
	p, err := New("generic", routes, Shape{IDField: "id"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path string
		want               want
	}{
		{"literal beats id", "GET", "/x/Accounts/special", want{"Accounts", "", "export", KindOther, "/x/Accounts/special", false, nil}},
		{"placeholder otherwise", "GET", "/x/Accounts/a1", want{"Accounts", "a1", "read", KindRecord, "/x/Accounts/a1", false, nil}},
		// The literal shape has no POST: the request must not fall back
		// to POST /x/{module}/{id} with id "special".
		{"no fallback across methods", "POST", "/x/Accounts/special", want{err: ErrUnknownRoute}},
		{"earlier literal wins", "GET", "/x/Fixed/special", want{"Fixed", "special", "read", KindRecord, "/x/Fixed/special", false, nil}},
		{"earlier literal no fallback", "POST", "/x/Fixed/a1", want{err: ErrUnknownRoute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := p.Classify(tt.method, tt.path, nil)
			checkMatch(t, got, err, tt.want)
		})
	}
}

func TestMethodOverrideHeaders(t *testing.T) {
	t.Parallel()
	p := mustBuiltin(t, "suitecrm8")
	tests := []struct {
		name string
		h    http.Header
		err  error
	}{
		{"x-http-method-override", http.Header{"X-Http-Method-Override": {"DELETE"}}, ErrMethodOverride},
		{"x-http-method", http.Header{"X-Http-Method": {"DELETE"}}, ErrMethodOverride},
		{"x-method-override", http.Header{"X-Method-Override": {"DELETE"}}, ErrMethodOverride},
		{"non-canonical key", http.Header{"x-http-method-override": {"DELETE"}}, ErrMethodOverride},
		{"empty value still refused", http.Header{"X-Http-Method-Override": {""}}, ErrMethodOverride},
		{"x-original-url", http.Header{"X-Original-Url": {"/Api/V8/module/Users"}}, ErrBadPath},
		{"x-rewrite-url", http.Header{"X-Rewrite-Url": {"/Api/V8/module/Users"}}, ErrBadPath},
		{"harmless header", http.Header{"X-Request-Id": {"1"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := p.Classify("GET", "/Api/V8/module/Accounts", tt.h)
			if tt.err == nil && err != nil || tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
		})
	}
}

func TestCheckQuery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw string
		err error
	}{
		{"", nil},
		{"page[size]=20&page[number]=2", nil},
		{"filter[name][eq]=x&sort=-name", nil},
		{"method=PUT", nil},
		{"x_method=PUT", nil},
		{"_method=DELETE", ErrMethodOverride},
		{"a=1&_method=DELETE", ErrMethodOverride},
		{"_METHOD=DELETE", ErrMethodOverride},
		{"_Method", ErrMethodOverride},
		{"%5Fmethod=DELETE", ErrMethodOverride},
		{"%5fmethod=DELETE", ErrMethodOverride},
		{".method=DELETE", ErrMethodOverride},
		{"+method=DELETE", nil}, // PHP drops leading spaces: "method"
		{"%20_method=DELETE", ErrMethodOverride},
		{"_method[]=DELETE", ErrMethodOverride},
		{"_method%5B0%5D=DELETE", ErrMethodOverride},
		{"_method%00x=DELETE", ErrMethodOverride},
		{"_m%65thod=DELETE", ErrMethodOverride},
		{"_method", ErrMethodOverride},
		{"%zz=1", ErrBadPath},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			t.Parallel()
			err := CheckQuery(tt.raw)
			if tt.err == nil && err != nil || tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("CheckQuery(%q) = %v, want %v", tt.raw, err, tt.err)
			}
		})
	}
}

func TestBuiltinUnknown(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "generic", "SuiteCRM8", "zoho", "Salesforce"} {
		if _, err := Builtin(name); err == nil {
			t.Errorf("Builtin(%q): want error", name)
		}
	}
}

func TestNewValidation(t *testing.T) {
	t.Parallel()
	ok := Route{Method: "GET", Pattern: "/a/{module}", Action: "list", Kind: KindList}
	tests := []struct {
		name    string
		routes  []Route
		modules []string
		shape   Shape
	}{
		{"no id field", []Route{ok}, nil, Shape{}},
		{"head route", []Route{{Method: "HEAD", Pattern: "/a/{module}", Action: "list", Kind: KindList}}, nil, Shape{IDField: "id"}},
		{"lower method", []Route{{Method: "get", Pattern: "/a/{module}", Action: "list", Kind: KindList}}, nil, Shape{IDField: "id"}},
		{"star without refuse", []Route{{Method: "*", Pattern: "/a/{module}", Action: "list", Kind: KindList}}, nil, Shape{IDField: "id"}},
		{"no module source", []Route{{Method: "GET", Pattern: "/a/{id}", Action: "read", Kind: KindRecord}}, nil, Shape{IDField: "id"}},
		{"two module sources", []Route{{Method: "GET", Pattern: "/a/{module}", Module: "X", Action: "list", Kind: KindList}}, nil, Shape{IDField: "id"}},
		{"path and body id", []Route{{Method: "GET", Pattern: "/a/{module}/{id}", IDFromBody: []string{"id"}, Action: "read", Kind: KindRecord}}, nil, Shape{IDField: "id"}},
		{"bad kind", []Route{{Method: "GET", Pattern: "/a/{module}", Action: "list", Kind: "rows"}}, nil, Shape{IDField: "id"}},
		{"bad action", []Route{{Method: "GET", Pattern: "/a/{module}", Action: "List!", Kind: KindList}}, nil, Shape{IDField: "id"}},
		{"dot literal", []Route{{Method: "GET", Pattern: "/a/../{module}", Action: "list", Kind: KindList}}, nil, Shape{IDField: "id"}},
		{"empty segment", []Route{{Method: "GET", Pattern: "/a//{module}", Action: "list", Kind: KindList}}, nil, Shape{IDField: "id"}},
		{"unknown placeholder", []Route{{Method: "GET", Pattern: "/a/{module}/{ID}", Action: "read", Kind: KindRecord}}, nil, Shape{IDField: "id"}},
		{"two modules", []Route{{Method: "GET", Pattern: "/a/{module}/{module}", Action: "read", Kind: KindRecord}}, nil, Shape{IDField: "id"}},
		{"duplicate shape", []Route{ok, {Method: "GET", Pattern: "/a/{id}", Module: "X", Action: "read", Kind: KindRecord}}, nil, Shape{IDField: "id"}},
		{"star overlaps", []Route{ok, {Method: "*", Pattern: "/a/{any}", Refuse: true}}, nil, Shape{IDField: "id"}},
		{"bad module name", []Route{ok}, []string{"1abc"}, Shape{IDField: "id"}},
		{"case duplicate modules", []Route{ok}, []string{"Accounts", "accounts"}, Shape{IDField: "id"}},
		{"empty body key", []Route{{Method: "POST", Pattern: "/a", ModuleFromBody: []string{"data", ""}, Action: "create", Kind: KindRecord}}, nil, Shape{IDField: "id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := New("generic", tt.routes, tt.shape, tt.modules); err == nil {
				t.Fatal("want error")
			}
		})
	}
	if _, err := New("generic", []Route{ok}, Shape{IDField: "id"}, []string{"Accounts"}); err != nil {
		t.Fatalf("valid profile: %v", err)
	}
}

func TestWithRoutes(t *testing.T) {
	t.Parallel()
	base := mustBuiltin(t, "espocrm")
	ext, err := base.WithRoutes([]Route{
		{Method: "GET", Pattern: "/api/v1/{module}/{id}/report", Action: "export", Kind: KindOther},
	}, []string{"CInvoiceRun"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := ext.Classify("GET", "/api/v1/Account/a1/report", nil)
	if err != nil || m.Action != "export" {
		t.Fatalf("extended route: %+v %v", m, err)
	}
	if !ext.KnownModule("CInvoiceRun") || base.KnownModule("CInvoiceRun") {
		t.Fatal("modules: extension must add to the copy only")
	}
	if m, err := ext.Classify("GET", "/api/v1/cinvoicerun", nil); err != nil || m.Module != "CInvoiceRun" {
		t.Fatalf("custom module canonicalised: %+v %v", m, err)
	}
	if m, _ := base.Classify("GET", "/api/v1/Account/a1/report", nil); m.Action != "read" {
		t.Fatalf("base changed: %+v", m)
	}
	if _, err := base.WithRoutes([]Route{{Method: "GET", Pattern: "/api/v1/{module}", Action: "list", Kind: KindList}}, nil); err == nil {
		t.Fatal("duplicate of a built-in route must be refused")
	}
}

func TestKnownModule(t *testing.T) {
	t.Parallel()
	p := mustBuiltin(t, "suitecrm8")
	for name, want := range map[string]bool{
		"Accounts": true, "AOS_Products": true, "accounts": false, "Account": false, "": false, "Nope": false,
	} {
		if got := p.KnownModule(name); got != want {
			t.Errorf("KnownModule(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestCheckQueryMethod(t *testing.T) {
	t.Parallel()
	p := mustBuiltin(t, "espocrm")
	if err := p.CheckQuery("maxSize=5&_method=DELETE"); !errors.Is(err, ErrMethodOverride) {
		t.Fatalf("err = %v, want ErrMethodOverride", err)
	}
	if err := p.CheckQuery("maxSize=5"); err != nil {
		t.Fatalf("err = %v", err)
	}
}

func TestReadPath(t *testing.T) {
	cases := []struct{ profile, module, id, want string }{
		{"suitecrm8", "Accounts", "acc-1", "/Api/V8/module/Accounts/acc-1"},
		{"espocrm", "Account", "acc-1", "/api/v1/Account/acc-1"},
	}
	for _, c := range cases {
		p, err := Builtin(c.profile)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.ReadPath(c.module, c.id)
		if err != nil || got != c.want {
			t.Errorf("%s ReadPath = %q, %v; want %q", c.profile, got, err, c.want)
		}
		// The path must classify back to a read of the same record.
		m, err := p.Classify("GET", got, nil)
		if err != nil || m.Module != c.module || m.ID != c.id || m.Action != "read" {
			t.Errorf("%s: %q classifies as %+v, %v", c.profile, got, m, err)
		}
		for _, bad := range []string{"../x", "a/b", "%2e", ""} {
			if _, err := p.ReadPath(c.module, bad); err == nil {
				t.Errorf("%s ReadPath accepted id %q", c.profile, bad)
			}
		}
	}
}
