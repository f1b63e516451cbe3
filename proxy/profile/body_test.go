package profile

import (
	"errors"
	"testing"
)

func TestClassifyBodySuiteCRM(t *testing.T) {
	t.Parallel()
	p := mustBuiltin(t, "suitecrm8")
	tests := []struct {
		name, method, path, body string
		err                      error
		module, id, action       string
	}{
		{"create", "POST", "/Api/V8/module", `{"data":{"type":"Accounts","attributes":{"name":"x"}}}`, nil, "Accounts", "", "create"},
		{"create lower type canonicalised", "POST", "/Api/V8/module", `{"data":{"type":"accounts","attributes":{}}}`, nil, "Accounts", "", "create"},
		{"create unknown module kept", "POST", "/Api/V8/module", `{"data":{"type":"MyMod","attributes":{}}}`, nil, "MyMod", "", "create"},
		{"update", "PATCH", "/Api/V8/module", `{"data":{"type":"Contacts","id":"c-1","attributes":{"phone_work":"1"}}}`, nil, "Contacts", "c-1", "update"},
		{"update same id in attributes", "PATCH", "/Api/V8/module", `{"data":{"type":"Contacts","id":"c-1","attributes":{"id":"c-1"}}}`, nil, "Contacts", "c-1", "update"},
		{"update escaped names", "PATCH", "/Api/V8/module", `{"d\u0061ta":{"typ\u0065":"Contacts","\u0069d":"c-1"}}`, nil, "Contacts", "c-1", "update"},
		{"update other id in attributes", "PATCH", "/Api/V8/module", `{"data":{"type":"Contacts","id":"c-1","attributes":{"id":"c-2"}}}`, ErrBadBody, "", "", ""},
		{"update numeric id in attributes", "PATCH", "/Api/V8/module", `{"data":{"type":"Contacts","id":"c-1","attributes":{"id":1}}}`, ErrBadBody, "", "", ""},
		{"missing type", "PATCH", "/Api/V8/module", `{"data":{"id":"c-1"}}`, ErrBadBody, "", "", ""},
		{"missing id", "PATCH", "/Api/V8/module", `{"data":{"type":"Contacts"}}`, ErrBadBody, "", "", ""},
		{"missing data", "POST", "/Api/V8/module", `{"type":"Contacts"}`, ErrBadBody, "", "", ""},
		{"data not object", "POST", "/Api/V8/module", `{"data":["Contacts"]}`, ErrBadBody, "", "", ""},
		{"type number", "POST", "/Api/V8/module", `{"data":{"type":7}}`, ErrBadBody, "", "", ""},
		{"type null", "POST", "/Api/V8/module", `{"data":{"type":null}}`, ErrBadBody, "", "", ""},
		{"type array", "POST", "/Api/V8/module", `{"data":{"type":["Accounts"]}}`, ErrBadBody, "", "", ""},
		{"type object", "POST", "/Api/V8/module", `{"data":{"type":{"a":1}}}`, ErrBadBody, "", "", ""},
		{"id number", "PATCH", "/Api/V8/module", `{"data":{"type":"Contacts","id":12}}`, ErrBadBody, "", "", ""},
		{"id bad charset", "PATCH", "/Api/V8/module", `{"data":{"type":"Contacts","id":"c-1/../c-2"}}`, ErrBadBody, "", "", ""},
		{"id empty", "PATCH", "/Api/V8/module", `{"data":{"type":"Contacts","id":""}}`, ErrBadBody, "", "", ""},
		{"type bad name", "POST", "/Api/V8/module", `{"data":{"type":"../Users"}}`, ErrBadBody, "", "", ""},
		{"type lookalike", "POST", "/Api/V8/module", `{"data":{"type":"\u0410ccounts"}}`, ErrBadBody, "", "", ""},
		{"duplicate type", "POST", "/Api/V8/module", `{"data":{"type":"Notes","type":"Users"}}`, ErrBadBody, "", "", ""},
		{"duplicate escaped type", "POST", "/Api/V8/module", `{"data":{"type":"Notes","typ\u0065":"Users"}}`, ErrBadBody, "", "", ""},
		{"duplicate fully escaped", "PATCH", "/Api/V8/module", `{"data":{"type":"Notes","id":"n","\u0074\u0079\u0070\u0065":"Users"}}`, ErrBadBody, "", "", ""},
		{"duplicate id", "PATCH", "/Api/V8/module", `{"data":{"type":"Notes","id":"n-1","id":"n-2"}}`, ErrBadBody, "", "", ""},
		{"duplicate data", "PATCH", "/Api/V8/module", `{"data":{"type":"Notes","id":"n-1"},"data":{"type":"Users","id":"u-1"}}`, ErrBadBody, "", "", ""},
		{"duplicate deep", "POST", "/Api/V8/module", `{"data":{"type":"Notes","attributes":{"a":1,"a":2}}}`, ErrBadBody, "", "", ""},
		{"invalid utf8", "POST", "/Api/V8/module", "{\"data\":{\"type\":\"Notes\",\"attributes\":{\"n\":\"\xff\"}}}", ErrBadBody, "", "", ""},
		{"trailing value", "POST", "/Api/V8/module", `{"data":{"type":"Notes"}} {"data":{"type":"Users"}}`, ErrBadBody, "", "", ""},
		{"not json", "POST", "/Api/V8/module", `data[type]=Notes`, ErrBadBody, "", "", ""},
		{"form override", "POST", "/Api/V8/module", `_METHOD=DELETE`, ErrBadBody, "", "", ""},
		{"empty", "POST", "/Api/V8/module", ``, ErrBadBody, "", "", ""},
		{"whitespace", "PATCH", "/Api/V8/module", " \n", ErrBadBody, "", "", ""},
		{"top-level array", "POST", "/Api/V8/module", `[{"data":{"type":"Notes"}}]`, ErrBadBody, "", "", ""},
		{"slim override", "POST", "/Api/V8/module", `{"_METHOD":"DELETE","data":{"type":"Notes"}}`, ErrMethodOverride, "", "", ""},
		{"slim override lower", "POST", "/Api/V8/module", `{"_method":"PATCH","data":{"type":"Notes"}}`, ErrMethodOverride, "", "", ""},
		{"slim override escaped", "POST", "/Api/V8/module", `{"_METHO\u0044":"DELETE","data":{"type":"Notes"}}`, ErrMethodOverride, "", "", ""},
		// Routes that do not need the body still have it checked.
		{"relate body ok", "POST", "/Api/V8/module/Accounts/acc-1/relationships", `{"data":{"type":"Contacts","id":"c-1"}}`, nil, "Accounts", "acc-1", "relate"},
		{"relate body duplicate", "POST", "/Api/V8/module/Accounts/acc-1/relationships", `{"data":{"type":"Contacts","id":"c-1","id":"c-9"}}`, ErrBadBody, "", "", ""},
		{"relate override", "POST", "/Api/V8/module/Accounts/acc-1/relationships", `{"_method":"DELETE"}`, ErrMethodOverride, "", "", ""},
		{"delete empty body ok", "DELETE", "/Api/V8/module/Accounts/acc-1", ``, nil, "Accounts", "acc-1", "delete"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := p.Classify(tt.method, tt.path, nil)
			if err != nil {
				t.Fatalf("Classify: %v", err)
			}
			got, err := p.ClassifyBody(m, []byte(tt.body))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("ClassifyBody = %+v, %v; want %v", got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ClassifyBody: %v", err)
			}
			if got.Module != tt.module || got.ID != tt.id || got.Action != tt.action || got.NeedsBody {
				t.Fatalf("got %+v, want module %q id %q action %q", got, tt.module, tt.id, tt.action)
			}
		})
	}
}

func TestClassifyBodyEspoCRM(t *testing.T) {
	t.Parallel()
	p := mustBuiltin(t, "espocrm")
	tests := []struct {
		name, method, path, body string
		err                      error
	}{
		{"update", "PUT", "/api/v1/Contact/c-1", `{"phoneNumber":"1"}`, nil},
		{"update same id", "PATCH", "/api/v1/Contact/c-1", `{"id":"c-1","phoneNumber":"1"}`, nil},
		{"update other id", "PUT", "/api/v1/Contact/c-1", `{"id":"c-2","phoneNumber":"1"}`, ErrBadBody},
		{"update escaped other id", "PUT", "/api/v1/Contact/c-1", `{"\u0069d":"c-2"}`, ErrBadBody},
		{"update duplicate", "PUT", "/api/v1/Contact/c-1", `{"assignedUserId":"u-1","assignedUserId":"u-2"}`, ErrBadBody},
		{"create", "POST", "/api/v1/Contact", `{"firstName":"A"}`, nil},
		{"link", "POST", "/api/v1/Account/acc-1/contacts", `{"id":"c-9"}`, nil},
		{"link ids duplicate", "POST", "/api/v1/Account/acc-1/contacts", `{"id":"c-9","id":"c-8"}`, ErrBadBody},
		{"override", "PUT", "/api/v1/Contact/c-1", `{"_Method":"DELETE"}`, ErrMethodOverride},
		{"not json", "PUT", "/api/v1/Contact/c-1", `phoneNumber=1`, ErrBadBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := p.Classify(tt.method, tt.path, nil)
			if err != nil {
				t.Fatalf("Classify: %v", err)
			}
			got, err := p.ClassifyBody(m, []byte(tt.body))
			if tt.err == nil {
				if err != nil || got != m {
					t.Fatalf("ClassifyBody = %+v, %v; want the match unchanged", got, err)
				}
				return
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("ClassifyBody err = %v, want %v", err, tt.err)
			}
		})
	}
}

func TestClassifyBodyForgedMatch(t *testing.T) {
	t.Parallel()
	p := mustBuiltin(t, "suitecrm8")
	// A Match built by hand has no body spec: it must not be completed
	// from whatever the body says.
	_, err := p.ClassifyBody(Match{NeedsBody: true, Action: "update"}, []byte(`{"data":{"type":"Notes","id":"n"}}`))
	if !errors.Is(err, ErrBadBody) {
		t.Fatalf("err = %v, want ErrBadBody", err)
	}
}
