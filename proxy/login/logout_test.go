package login

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/issuer"
	"github.com/crmgate/crmgate/proxy/session"
)

func TestSafeReturn(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, want string
	}{
		{"/Api/V8/module/Accounts?page=2", "/Api/V8/module/Accounts?page=2"},
		{"/", "/"},
		{"/a%20b", "/a%20b"},
		{"/search?q=a%2Fb", "/search?q=a%2Fb"},
		// Open redirects, each refused.
		{"//evil.example", "/"},
		{"//evil.example/path", "/"},
		{"/\\evil.example", "/"},
		{"\\\\evil.example", "/"},
		{"https://evil.example", "/"},
		{"http:evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.example", "/"},
		{"/%2F%2Fevil.example", "/"},
		{"/%2fevil.example", "/"},
		{"%2F%2Fevil.example", "/"},
		{"/%5Cevil.example", "/"},
		{"/%252F%252Fevil.example", "/"},
		{"/%25252F%25252Fevil.example", "/"},
		{"/%2525252F%2525252Fevil.example", "/"},
		{"/\t/evil.example", "/"},
		{"/\n/evil.example", "/"},
		{"/%09/evil.example", "/"},
		{"/%0d%0aSet-Cookie:x=1", "/"},
		{"/ /evil.example", "/"},
		{"/\x00", "/"},
		{"/x#//evil.example", "/"},
		{"/\u2215\u2215evil.example", "/"},
		{"/.crmgate/logout", "/"},
		{"/.crmgate/login?rd=//evil", "/"},
		{"", "/"},
		{"/%zz", "/"},
		{"/" + strings.Repeat("a", maxReturnURL), "/"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			t.Parallel()
			if got := SafeReturn(c.in); got != c.want {
				t.Errorf("SafeReturn(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func FuzzSafeReturn(f *testing.F) {
	for _, s := range []string{"/", "//evil", "/\\evil", "/%2F%2Fx", "/a?b=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := SafeReturn(in)
		if got == "/" {
			return
		}
		// Whatever passes resolves to the same origin.
		base, _ := url.Parse("https://crm.example.com/x/y")
		ref, err := url.Parse(got)
		if err != nil {
			t.Fatalf("SafeReturn(%q) = %q does not parse", in, got)
		}
		if u := base.ResolveReference(ref); u.Host != "crm.example.com" || u.Scheme != "https" {
			t.Fatalf("SafeReturn(%q) = %q resolves to %s", in, got, u)
		}
		if strings.ContainsAny(got, "\\\t\r\n ") || strings.HasPrefix(got, "//") {
			t.Fatalf("SafeReturn(%q) = %q", in, got)
		}
	})
}

// TestOpenRedirectThroughLogin checks the return URL end to end: whatever
// rd says, the browser lands on this origin.
func TestOpenRedirectThroughLogin(t *testing.T) {
	t.Parallel()
	rg := newRig(t)
	for _, rd := range []string{"//evil.example", "https://evil.example/", "/\\evil.example", "/%2F%2Fevil.example", "/%5Cevil.example"} {
		t.Run(rd, func(t *testing.T) {
			b := newBrowser(t)
			if got := rg.signIn(b, rd); got != "/" {
				t.Fatalf("rd %q returned to %q", rd, got)
			}
		})
	}
}

func TestLogout(t *testing.T) {
	t.Parallel()
	rg := newRig(t)
	b := newBrowser(t)
	rg.signIn(b, "/")
	id := rg.cookie(b, "crmgate_session").Value
	res := b.post(rg.srv.URL+LogoutPath, nil, "Origin", rg.srv.URL)
	next := location(t, res, http.StatusSeeOther)
	u, _ := url.Parse(next)
	q := u.Query()
	if !strings.HasPrefix(next, rg.idp.srv.URL+"/session/end?") || q.Get("id_token_hint") == "" ||
		q.Get("post_logout_redirect_uri") != rg.srv.URL+SignedOutPath || q.Get("client_id") != "crmgate" {
		t.Fatalf("logout continues to %q", next)
	}
	if _, err := rg.store.Store.Get(context.Background(), id); err == nil {
		t.Fatal("session survived logout")
	}
	if b.subject(rg) != nil || rg.cookie(b, "crmgate_session") != nil {
		t.Fatal("still signed in")
	}
	if res := b.get(rg.srv.URL + SignedOutPath); res.StatusCode != 200 {
		t.Fatalf("signed-out page: %d", res.StatusCode)
	}
}

func TestLogoutCSRF(t *testing.T) {
	t.Parallel()
	rg := newRig(t)
	formToken := func(b *browser) string {
		req, _ := http.NewRequest(http.MethodGet, rg.srv.URL+LogoutPath, nil)
		res, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		_, after, ok := strings.Cut(string(body), `name="csrf" value="`)
		if !ok {
			t.Fatalf("no csrf token in %s", body)
		}
		tok, _, _ := strings.Cut(after, `"`)
		return tok
	}
	cases := []struct {
		name    string
		hdr     []string
		form    func(own, other string) url.Values
		allowed bool
	}{
		{"cross-site origin", []string{"Origin", "https://evil.example"}, nil, false},
		{"cross-site origin with a valid token", []string{"Origin", "https://evil.example"},
			func(own, _ string) url.Values { return url.Values{"csrf": {own}} }, false},
		{"null origin", []string{"Origin", "null"}, nil, false},
		{"sec-fetch-site cross-site", []string{"Sec-Fetch-Site", "cross-site"}, nil, false},
		{"sec-fetch-site same-site", []string{"Sec-Fetch-Site", "same-site"}, nil, false},
		{"no headers, no token", nil, nil, false},
		{"no headers, another session's token", nil, func(_, other string) url.Values { return url.Values{"csrf": {other}} }, false},
		{"no headers, garbage token", nil, func(string, string) url.Values { return url.Values{"csrf": {"x"}} }, false},
		{"same origin", []string{"Origin", ""}, nil, true},
		{"sec-fetch-site same-origin", []string{"Sec-Fetch-Site", "same-origin"}, nil, true},
		{"no headers, own token", nil, func(own, _ string) url.Values { return url.Values{"csrf": {own}} }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, other := newBrowser(t), newBrowser(t)
			rg.signIn(b, "/")
			rg.signIn(other, "/")
			var form url.Values
			if c.form != nil {
				form = c.form(formToken(b), formToken(other))
			}
			hdr := c.hdr
			if len(hdr) == 2 && hdr[0] == "Origin" && hdr[1] == "" {
				hdr = []string{"Origin", rg.srv.URL}
			}
			res := b.post(rg.srv.URL+LogoutPath, form, hdr...)
			signedIn := b.subject(rg) != nil
			if c.allowed {
				if res.StatusCode != http.StatusSeeOther || signedIn {
					t.Fatalf("logout refused: %d, still signed in %v", res.StatusCode, signedIn)
				}
				return
			}
			if res.StatusCode != http.StatusForbidden || !signedIn {
				t.Fatalf("forged logout: status %d, still signed in %v", res.StatusCode, signedIn)
			}
		})
	}
	t.Run("get does not sign out", func(t *testing.T) {
		b := newBrowser(t)
		rg.signIn(b, "/")
		if res := b.get(rg.srv.URL + LogoutPath); res.StatusCode != 200 || b.subject(rg) == nil {
			t.Fatalf("GET logout: %d", res.StatusCode)
		}
	})
}

// logoutToken mints a back-channel logout token; mutate adjusts claims.
func logoutToken(t *testing.T, rg *rig, mutate func(map[string]any)) string {
	t.Helper()
	claims := map[string]any{
		"aud": "crmgate", "sub": "alice", "sid": "idp-sid-1", "jti": randomString(),
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}
	if mutate != nil {
		mutate(claims)
	}
	tok, err := rg.idp.iss.Mint(claims, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func postLogoutToken(t *testing.T, rg *rig, tok string) int {
	t.Helper()
	res, err := http.PostForm(rg.srv.URL+BackchannelPath, url.Values{"logout_token": {tok}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Error("back-channel answer is cacheable")
	}
	return res.StatusCode
}

func TestBackchannelLogout(t *testing.T) {
	t.Parallel()
	t.Run("by sid ends that idp session only", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		b1, b2 := newBrowser(t), newBrowser(t)
		rg.signIn(b1, "/")
		rg.idp.setClaims(map[string]any{"sid": "idp-sid-2"})
		rg.signIn(b2, "/")
		if st := postLogoutToken(t, rg, logoutToken(t, rg, nil)); st != 200 {
			t.Fatalf("status %d", st)
		}
		if b1.subject(rg) != nil {
			t.Error("session of the logged-out idp session survived")
		}
		if b2.subject(rg) == nil {
			t.Error("the user's other idp session was ended too")
		}
	})
	t.Run("by sub ends every session of the user", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		b1, b2, bob := newBrowser(t), newBrowser(t), newBrowser(t)
		rg.signIn(b1, "/")
		rg.idp.setClaims(map[string]any{"sid": "idp-sid-2"})
		rg.signIn(b2, "/")
		rg.idp.setClaims(map[string]any{"sub": "bob"})
		rg.signIn(bob, "/")
		if st := postLogoutToken(t, rg, logoutToken(t, rg, func(c map[string]any) { delete(c, "sid") })); st != 200 {
			t.Fatalf("status %d", st)
		}
		if b1.subject(rg) != nil || b2.subject(rg) != nil {
			t.Error("a session of the user survived")
		}
		if bob.subject(rg) == nil {
			t.Error("another user's session ended")
		}
	})
	t.Run("sid alone", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		b := newBrowser(t)
		rg.signIn(b, "/")
		if st := postLogoutToken(t, rg, logoutToken(t, rg, func(c map[string]any) { delete(c, "sub") })); st != 200 {
			t.Fatalf("status %d", st)
		}
		if b.subject(rg) != nil {
			t.Error("session survived")
		}
	})
	t.Run("sid alone ends exactly that idp session without scanning the store", func(t *testing.T) {
		t.Parallel()
		var scan *noScanStore
		rg := newRig(t, func(o *Options) {
			scan = &noScanStore{Store: o.Store}
			o.Store = scan
		})
		ctx := context.Background()
		named, other := newBrowser(t), newBrowser(t)
		rg.signIn(named, "/")
		rg.idp.setClaims(map[string]any{"sid": "idp-sid-2"})
		rg.signIn(other, "/")
		// Sessions created after the named one expire later, so a scan in
		// List's order (latest expiry first) reaches them before it.
		rg.clock.Add(time.Second)
		for i := range 50 {
			id, err := session.NewID()
			if err != nil {
				t.Fatal(err)
			}
			sid := []string{"idp-sid-1x", "IDP-SID-1", "idp-sid-3", ""}[i%4]
			if err := rg.store.Create(ctx, &session.Session{ID: id, Subject: &policy.Subject{ID: "user-" + strconv.Itoa(i%7)}, SID: sid}, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		before, err := rg.store.Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st := postLogoutToken(t, rg, logoutToken(t, rg, func(c map[string]any) { delete(c, "sub") })); st != 200 {
			t.Fatalf("status %d", st)
		}
		if named.subject(rg) != nil {
			t.Error("the named idp session's session survived")
		}
		if other.subject(rg) == nil {
			t.Error("the user's other idp session was ended too")
		}
		if after, err := rg.store.Count(ctx); err != nil || after != before-1 {
			t.Errorf("sessions after logout = %d, %v; want %d (only the named one gone)", after, err, before-1)
		}
		if n := scan.lists.Load(); n != 0 {
			t.Errorf("back-channel logout listed the store %d times", n)
		}
	})
	bad := []struct {
		name   string
		mutate func(map[string]any)
		forge  string
	}{
		{"nonce present (an id token replayed as logout token)", func(c map[string]any) { c["nonce"] = "n" }, ""},
		{"no logout event", func(c map[string]any) { delete(c, "events") }, ""},
		{"other event", func(c map[string]any) { c["events"] = map[string]any{"urn:other": map[string]any{}} }, ""},
		{"no sub and no sid", func(c map[string]any) { delete(c, "sub"); delete(c, "sid") }, ""},
		{"wrong audience", func(c map[string]any) { c["aud"] = "other-app" }, ""},
		{"wrong issuer", func(c map[string]any) { c["iss"] = "https://evil.example" }, ""},
		{"expired", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }, ""},
		{"no jti", func(c map[string]any) { delete(c, "jti") }, ""},
		{"alg none", nil, issuer.ForgeNone},
		{"hs256 keyed with the rsa public key", nil, issuer.ForgeHS256PublicKey},
		{"foreign key", nil, issuer.ForgeForeignKey},
		{"garbage", nil, "garbage"},
		{"empty", nil, "empty"},
	}
	for _, c := range bad {
		t.Run("refused: "+c.name, func(t *testing.T) {
			t.Parallel()
			rg := newRig(t)
			b := newBrowser(t)
			rg.signIn(b, "/")
			var tok string
			switch c.forge {
			case "":
				tok = logoutToken(t, rg, c.mutate)
			case "garbage":
				tok = "a.b.c"
			case "empty":
				tok = ""
			default:
				var err error
				tok, err = rg.idp.iss.Forge(c.forge, map[string]any{"aud": "crmgate", "sub": "alice", "jti": "j",
					"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}})
				if err != nil {
					t.Fatal(err)
				}
			}
			if st := postLogoutToken(t, rg, tok); st != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", st)
			}
			if b.subject(rg) == nil {
				t.Fatal("an invalid logout token ended the session")
			}
		})
	}
	t.Run("replayed token is refused", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		tok := logoutToken(t, rg, func(c map[string]any) { delete(c, "sid") })
		b := newBrowser(t)
		rg.signIn(b, "/")
		if st := postLogoutToken(t, rg, tok); st != 200 {
			t.Fatalf("status %d", st)
		}
		rg.clock.Add(time.Second)
		rg.signIn(b, "/")
		if st := postLogoutToken(t, rg, tok); st != http.StatusBadRequest {
			t.Fatalf("replay status %d, want 400", st)
		}
		if b.subject(rg) == nil {
			t.Fatal("a replayed logout token ended the new session")
		}
	})
}

func TestAdmin(t *testing.T) {
	t.Parallel()
	st := session.NewMemory(nil)
	ctx := context.Background()
	mk := func(user string) string {
		id, _ := session.NewID()
		if err := st.Create(ctx, &session.Session{ID: id, Subject: &policy.Subject{ID: user, MFA: true}, IDToken: "secret-id-token",
			RefreshToken: []byte("secret-refresh"), AMR: []string{"pwd", "otp"}}, time.Hour); err != nil {
			t.Fatal(err)
		}
		return id
	}
	a1, a2, b1 := mk("alice"), mk("alice"), mk("bob")
	h := Admin(st, zap.NewNop())
	do := func(method, target string) (int, map[string]any, string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, target, nil))
		var m map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &m)
		return w.Code, m, w.Body.String()
	}
	code, m, body := do("GET", "/admin/sessions?user=alice")
	if code != 200 || len(m["sessions"].([]any)) != 2 {
		t.Fatalf("list: %d %s", code, body)
	}
	for _, secret := range []string{a1, a2, b1, "secret-id-token", "secret-refresh", "c2VjcmV0"} {
		if strings.Contains(body, secret) {
			t.Fatalf("listing leaks %q: %s", secret, body)
		}
	}
	first := m["sessions"].([]any)[0].(map[string]any)
	if first["user"] != "alice" || first["mfa"] != true || len(first["hash"].(string)) != 64 {
		t.Errorf("entry = %v", first)
	}
	if code, m, _ := do("GET", "/admin/sessions"); code != 200 || len(m["sessions"].([]any)) != 3 {
		t.Fatalf("list all: %d %v", code, m)
	}
	for _, bad := range []string{"/admin/sessions", "/admin/sessions?id=xyz", "/admin/sessions?user=a&id=" + session.HashID(b1),
		"/admin/sessions?id=" + strings.ToUpper(session.HashID(b1)), "/admin/sessions?id=" + b1} {
		if code, _, _ := do("DELETE", bad); code != 400 {
			t.Errorf("DELETE %s: %d, want 400", bad, code)
		}
	}
	if code, m, _ := do("DELETE", "/admin/sessions?user=alice"); code != 200 || m["revoked"] != float64(2) {
		t.Fatalf("revoke user: %d %v", code, m)
	}
	for _, id := range []string{a1, a2} {
		if _, err := st.Get(ctx, id); err == nil {
			t.Error("revoked session still loads")
		}
	}
	if code, _, _ := do("DELETE", "/admin/sessions?id="+session.HashID(b1)); code != 200 {
		t.Fatalf("revoke one: %d", code)
	}
	if _, err := st.Get(ctx, b1); err == nil {
		t.Error("revoked session still loads")
	}
	if code, _, _ := do("POST", "/admin/sessions"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", code)
	}
	_ = st.Close()
	if code, _, _ := do("GET", "/admin/sessions"); code != http.StatusServiceUnavailable {
		t.Errorf("store closed: %d, want 503", code)
	}
}
