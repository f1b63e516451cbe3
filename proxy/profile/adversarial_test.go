package profile

import (
	"errors"
	"strings"
	"testing"
)

// TestAdversarialPaths tries to make a path mean one thing to crmgate and
// another to the CRM (or to a web server in front of it). Each case must be
// refused, or classified exactly as written in the table.
func TestAdversarialPaths(t *testing.T) {
	t.Parallel()
	suite := mustBuiltin(t, "suitecrm8")
	espo := mustBuiltin(t, "espocrm")
	long := strings.Repeat("a", 65)
	tests := []struct {
		name    string
		p       *Profile
		method  string
		path    string
		err     error
		module  string // when err is nil
		id      string
		outPath string
	}{
		// Dot segments, plain and encoded.
		{"dot", suite, "GET", "/Api/V8/module/./Accounts", ErrBadPath, "", "", ""},
		{"dotdot", suite, "GET", "/Api/V8/module/Users/../Accounts", ErrBadPath, "", "", ""},
		{"dotdot to token", suite, "GET", "/Api/V8/../access_token", ErrBadPath, "", "", ""},
		{"encoded dot lower", suite, "GET", "/Api/V8/module/%2e/Accounts", ErrBadPath, "", "", ""},
		{"encoded dot upper", suite, "GET", "/Api/V8/module/%2E/Accounts", ErrBadPath, "", "", ""},
		{"encoded dotdot", suite, "GET", "/Api/V8/module/%2e%2e/Accounts", ErrBadPath, "", "", ""},
		{"half encoded dotdot", suite, "GET", "/Api/V8/module/.%2e/Accounts", ErrBadPath, "", "", ""},
		{"half encoded dotdot 2", suite, "GET", "/Api/V8/module/%2e./Accounts", ErrBadPath, "", "", ""},
		{"trailing dot", suite, "GET", "/Api/V8/module/Accounts/.", ErrBadPath, "", "", ""},
		{"trailing dotdot", suite, "GET", "/Api/V8/module/Accounts/acc-1/..", ErrBadPath, "", "", ""},
		{"dot in id", suite, "GET", "/Api/V8/module/Accounts/acc.1", ErrBadPath, "", "", ""},
		{"dot in module", suite, "GET", "/Api/V8/module/Accounts.json", ErrBadPath, "", "", ""},
		{"triple dot id", suite, "GET", "/Api/V8/module/Accounts/...", ErrBadPath, "", "", ""},
		{"overlong utf8 dot", suite, "GET", "/Api/V8/module/%c0%ae%c0%ae/Accounts", ErrBadPath, "", "", ""},
		{"double encoded dot", suite, "GET", "/Api/V8/module/%252e%252e/Accounts", ErrBadPath, "", "", ""},
		// Encoded and literal separators.
		{"encoded slash", suite, "GET", "/Api/V8/module/Accounts%2facc-1", ErrBadPath, "", "", ""},
		{"encoded slash upper", suite, "GET", "/Api/V8/module/Accounts%2Facc-1", ErrBadPath, "", "", ""},
		{"encoded backslash", suite, "GET", "/Api/V8/module/Accounts%5cacc-1", ErrBadPath, "", "", ""},
		{"backslash", suite, "GET", "/Api/V8/module/Accounts\\acc-1", ErrBadPath, "", "", ""},
		{"backslash dotdot", suite, "GET", "/Api/V8/module/Users\\..\\Accounts", ErrBadPath, "", "", ""},
		{"double slash", suite, "GET", "/Api/V8//module/Accounts", ErrBadPath, "", "", ""},
		{"leading double slash", suite, "GET", "//Api/V8/module/Accounts", ErrBadPath, "", "", ""},
		{"trailing slash", suite, "GET", "/Api/V8/module/Accounts/", ErrBadPath, "", "", ""},
		{"trailing double slash", suite, "GET", "/Api/V8/module/Accounts//", ErrBadPath, "", "", ""},
		{"empty id segment", suite, "DELETE", "/Api/V8/module/Accounts//x", ErrBadPath, "", "", ""},
		{"no leading slash", suite, "GET", "Api/V8/module/Accounts", ErrBadPath, "", "", ""},
		{"empty path", suite, "GET", "", ErrBadPath, "", "", ""},
		{"asterisk", suite, "OPTIONS", "*", ErrUnknownRoute, "", "", ""},
		{"absolute form", suite, "GET", "http://crm/Api/V8/module/Accounts", ErrBadPath, "", "", ""},
		// Path parameters, queries and fragments smuggled into the path.
		{"semicolon param", suite, "GET", "/Api/V8/module/Accounts;x=1", ErrBadPath, "", "", ""},
		{"semicolon in id", suite, "GET", "/Api/V8/module/Accounts/acc-1;.json", ErrBadPath, "", "", ""},
		{"semicolon segment", suite, "GET", "/Api/V8/;/module/Accounts", ErrBadPath, "", "", ""},
		{"encoded semicolon", suite, "GET", "/Api/V8/module/Accounts%3bx", ErrBadPath, "", "", ""},
		{"encoded question", suite, "GET", "/Api/V8/module/Accounts%3f_method=DELETE", ErrBadPath, "", "", ""},
		{"raw question", suite, "GET", "/Api/V8/module/Accounts?x", ErrBadPath, "", "", ""},
		{"encoded hash", suite, "GET", "/Api/V8/module/Accounts/acc-1%23x", ErrBadPath, "", "", ""},
		{"raw hash", suite, "GET", "/Api/V8/module/Accounts#x", ErrBadPath, "", "", ""},
		// Control characters and NUL.
		{"nul", suite, "GET", "/Api/V8/module/Accounts\x00", ErrBadPath, "", "", ""},
		{"encoded nul", suite, "GET", "/Api/V8/module/Accounts%00", ErrBadPath, "", "", ""},
		{"tab", suite, "GET", "/Api/V8/module/Accounts\t", ErrBadPath, "", "", ""},
		{"newline", suite, "GET", "/Api/V8/module/Accounts\n", ErrBadPath, "", "", ""},
		{"cr", suite, "GET", "/Api/V8/module/Accounts\r", ErrBadPath, "", "", ""},
		{"del", suite, "GET", "/Api/V8/module/Accounts\x7f", ErrBadPath, "", "", ""},
		{"space", suite, "GET", "/Api/V8/module/Accounts /x", ErrBadPath, "", "", ""},
		{"encoded space", suite, "GET", "/Api/V8/module/Accounts%20", ErrBadPath, "", "", ""},
		{"plus in id", suite, "GET", "/Api/V8/module/Accounts/a+b", ErrBadPath, "", "", ""},
		// Percent-encoding of harmless characters is refused too.
		{"encoded letter module", suite, "GET", "/Api/V8/module/Acc%6Funts", ErrBadPath, "", "", ""},
		{"encoded letter literal", suite, "GET", "/Api/V8/%6Dodule/Accounts", ErrBadPath, "", "", ""},
		{"encoded id", suite, "GET", "/Api/V8/module/Accounts/%61cc-1", ErrBadPath, "", "", ""},
		{"bare percent", suite, "GET", "/Api/V8/module/Accounts/100%", ErrBadPath, "", "", ""},
		{"percent u", suite, "GET", "/Api/V8/module/%u0041ccounts", ErrBadPath, "", "", ""},
		// Non-ASCII look-alikes, raw and encoded.
		{"cyrillic a", suite, "GET", "/Api/V8/module/\u0410ccounts", ErrBadPath, "", "", ""},
		{"fullwidth A", suite, "GET", "/Api/V8/module/\uff21ccounts", ErrBadPath, "", "", ""},
		{"encoded utf8", suite, "GET", "/Api/V8/module/%D0%90ccounts", ErrBadPath, "", "", ""},
		{"kelvin sign", suite, "GET", "/Api/V8/module/\u212aaccounts", ErrBadPath, "", "", ""},
		{"raw latin1 byte", suite, "GET", "/Api/V8/module/Accounts\xe9", ErrBadPath, "", "", ""},
		// Module and id syntax.
		{"module leading digit", suite, "GET", "/Api/V8/module/1Accounts", ErrBadPath, "", "", ""},
		{"module leading underscore", suite, "GET", "/Api/V8/module/_Accounts", ErrBadPath, "", "", ""},
		{"module dash", suite, "GET", "/Api/V8/module/Acc-ounts", ErrBadPath, "", "", ""},
		{"module tilde", suite, "GET", "/Api/V8/module/Accounts~", ErrBadPath, "", "", ""},
		{"module too long", suite, "GET", "/Api/V8/module/A" + long, ErrBadPath, "", "", ""},
		{"id too long", suite, "GET", "/Api/V8/module/Accounts/" + long, ErrBadPath, "", "", ""},
		{"id tilde", suite, "GET", "/Api/V8/module/Accounts/acc~1", ErrBadPath, "", "", ""},
		{"link name dot", suite, "GET", "/Api/V8/module/Accounts/acc-1/relationships/a.b", ErrBadPath, "", "", ""},
		{"related id dot", suite, "DELETE", "/Api/V8/module/Accounts/a/relationships/contacts/..", ErrBadPath, "", "", ""},
		{"id 64 ok", suite, "GET", "/Api/V8/module/Accounts/" + long[:64], nil, "Accounts", long[:64], "/Api/V8/module/Accounts/" + long[:64]},
		// Case games: modules canonicalise, literals do not.
		{"upper module", suite, "GET", "/Api/V8/module/ACCOUNTS", nil, "Accounts", "", "/Api/V8/module/Accounts"},
		{"lower aos module", suite, "GET", "/Api/V8/module/aos_products/p-1", nil, "AOS_Products", "p-1", "/Api/V8/module/AOS_Products/p-1"},
		{"meta fields lower", suite, "GET", "/Api/V8/meta/fields/users", nil, "Users", "", "/Api/V8/meta/fields/Users"},
		{"upper literal api", suite, "GET", "/API/V8/module/Accounts", ErrUnknownRoute, "", "", ""},
		{"lower literal v8", suite, "GET", "/Api/v8/module/Accounts", ErrUnknownRoute, "", "", ""},
		{"upper META", suite, "GET", "/Api/V8/META/modules", ErrUnknownRoute, "", "", ""},
		{"unknown module kept", suite, "GET", "/Api/V8/module/Accountz", nil, "Accountz", "", "/Api/V8/module/Accountz"},
		// Too long, too deep.
		{"too many segments", suite, "GET", strings.Repeat("/a", 40), ErrBadPath, "", "", ""},
		{"too long", suite, "GET", "/" + strings.Repeat("a", 3000), ErrBadPath, "", "", ""},
		// EspoCRM specifics.
		{"espo action via case", espo, "POST", "/api/v1/Account/Action/massDelete", nil, "Account", "Action", "/api/v1/Account/Action/massDelete"},
		{"espo encoded action", espo, "POST", "/api/v1/Account/%61ction/massDelete", ErrBadPath, "", "", ""},
		{"espo action", espo, "POST", "/api/v1/Account/action/massDelete", ErrUnknownRoute, "", "", ""},
		{"espo stream", espo, "GET", "/api/v1/Case/c-1/stream", ErrUnknownRoute, "", "", ""},
		{"espo dotdot", espo, "GET", "/api/v1/Account/../User", ErrBadPath, "", "", ""},
		{"espo index.php", espo, "GET", "/api/v1/index.php/Account", ErrBadPath, "", "", ""},
		{"espo lower entity", espo, "DELETE", "/api/v1/user/u-1", nil, "User", "u-1", "/api/v1/User/u-1"},
		{"espo trailing slash", espo, "GET", "/api/v1/Account/", ErrBadPath, "", "", ""},
		{"espo bare base", espo, "GET", "/api/v1", ErrUnknownRoute, "", "", ""},
	}
	if len(tests) < 60 {
		t.Fatalf("adversarial table has %d cases, want at least 60", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := tt.p.Classify(tt.method, tt.path, nil)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Classify(%q) = %+v, %v; want %v", tt.path, m, err, tt.err)
				}
				if m != (Match{}) {
					t.Fatalf("refusal returned a non-zero match %+v", m)
				}
				return
			}
			if err != nil {
				t.Fatalf("Classify(%q): %v", tt.path, err)
			}
			if m.Module != tt.module || m.ID != tt.id || m.Path != tt.outPath {
				t.Fatalf("Classify(%q) = %+v; want module %q id %q path %q", tt.path, m, tt.module, tt.id, tt.outPath)
			}
		})
	}
}
