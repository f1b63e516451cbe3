package profile

import (
	"errors"
	"strings"
	"testing"
)

// FuzzClassify checks the classifier's invariants on arbitrary input: it
// never panics; it returns one of the sentinels when it refuses; and when it
// classifies, the canonical Path it hands upstream contains nothing that
// could be read two ways and classifies again to the very same Match.
func FuzzClassify(f *testing.F) {
	seeds := []string{
		"/Api/V8/module/Accounts", "/Api/V8/module/accounts/acc-1",
		"/Api/V8/module/Accounts/a/relationships/contacts/c", "/Api/V8/meta/fields/users",
		"/api/v1/Account/action/export", "/api/v1/account/a1/contacts", "/api/v1/Account/%2e%2e",
		"/Api/V8//module", "/Api/V8/module/Accounts/", "/Api/V8/module/.%2e/Users",
		"/crm/v3/objects/0-1/51001", "/crm/v3/objects/Contact/search", "/crm/v3/objects/deals/batch/read",
		"/crm/v4/objects/0-2/52001/associations/0-1", "/crm/v3/objects/contacts/batch/upsert",
	}
	for _, s := range seeds {
		for _, m := range []string{"GET", "POST", "PATCH", "DELETE", "HEAD", "PUT"} {
			f.Add(m, s)
		}
	}
	for _, s := range []string{"/api/data/v9.2/accounts(3fa85f64-5717-4562-b3fc-2c963f66afa6)/contact_customer_accounts",
		"/api/data/v9.2/Accounts", "/api/data/v9.2/accounts(x='1')", "/api/data/v9.2/$batch"} {
		f.Add("GET", s)
	}
	profiles := []*Profile{mustBuiltin(f, "suitecrm8"), mustBuiltin(f, "espocrm"), mustBuiltin(f, "dynamics"), mustBuiltin(f, "hubspot")}
	f.Fuzz(func(t *testing.T, method, path string) {
		for _, p := range profiles {
			m, err := p.Classify(method, path, nil)
			if err != nil {
				if !errors.Is(err, ErrBadPath) && !errors.Is(err, ErrUnknownRoute) {
					t.Fatalf("%s: Classify(%q, %q): unexpected error kind %v", p.Name, method, path, err)
				}
				if m != (Match{}) {
					t.Fatalf("%s: refusal with non-zero match %+v", p.Name, m)
				}
				continue
			}
			if strings.Contains(m.Path, "//") || strings.ContainsAny(m.Path, "%\\;?#") ||
				strings.HasSuffix(m.Path, "/") || !strings.HasPrefix(m.Path, "/") {
				t.Fatalf("%s: canonical path %q is not canonical", p.Name, m.Path)
			}
			for _, seg := range strings.Split(m.Path[1:], "/") {
				if seg == "." || seg == ".." {
					t.Fatalf("%s: canonical path %q has a dot segment", p.Name, m.Path)
				}
			}
			for i := 0; i < len(m.Path); i++ {
				if c := m.Path[i]; c < 0x21 || c > 0x7e {
					t.Fatalf("%s: canonical path %q has byte %#x", p.Name, m.Path, c)
				}
			}
			again, err := p.Classify(method, m.Path, nil)
			if err != nil || again != m {
				t.Fatalf("%s: canonical path %q re-classifies to %+v, %v; first %+v", p.Name, m.Path, again, err, m)
			}
			if m.Module != "" && strings.EqualFold(m.Module, "accounts") && m.Module != "Accounts" && p.Name == "suitecrm8" {
				t.Fatalf("module %q not canonicalised", m.Module)
			}
			if p.Name == "hubspot" && m.Module != "" && !p.KnownModule(m.Module) && !validModuleName(m.Module) {
				t.Fatalf("hubspot module %q is neither known nor a plain name", m.Module)
			}
		}
	})
}
