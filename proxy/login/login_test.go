package login

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crmgate/crmgate/proxy/issuer"
	"github.com/crmgate/crmgate/proxy/session"
)

func TestLoginFlow(t *testing.T) {
	t.Parallel()
	rg := newRig(t)
	b := newBrowser(t)
	toIdP := location(t, b.get(rg.srv.URL+"/Api/V8/module/Accounts?page=2"), http.StatusFound)
	u, _ := url.Parse(toIdP)
	aq := u.Query()
	if aq.Get("code_challenge_method") != "S256" || aq.Get("code_challenge") == "" || aq.Get("nonce") == "" ||
		aq.Get("state") == "" || aq.Get("client_id") != "crmgate" || aq.Get("redirect_uri") != rg.srv.URL+CallbackPath {
		t.Fatalf("authorization request = %v", aq)
	}
	if aq.Has("acr_values") {
		t.Errorf("plain login asked for acr_values")
	}
	back := location(t, b.get(toIdP), http.StatusFound)
	res := b.get(back)
	if got := location(t, res, http.StatusSeeOther); got != "/Api/V8/module/Accounts?page=2" {
		t.Fatalf("returned to %q", got)
	}
	var sc *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "crmgate_session" {
			sc = c
		}
	}
	if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Path != "/" || sc.MaxAge != 0 {
		t.Fatalf("session cookie = %+v", sc)
	}
	s := b.subject(rg)
	if s == nil || s.ID != "alice" || s.Auth != "session" || s.MFA || !slices.Equal(s.Roles, []string{"sales"}) {
		t.Fatalf("subject = %+v", s)
	}
	stored, err := rg.store.Store.Get(context.Background(), sc.Value)
	if err != nil {
		t.Fatal(err)
	}
	if stored.SID != "idp-sid-1" || len(stored.RefreshToken) == 0 || stored.IDToken == "" {
		t.Errorf("stored session = %+v", stored)
	}
	// Sealed: none of the refresh tokens the IdP issued appears in clear.
	rg.idp.mu.Lock()
	if len(rg.idp.refresh) == 0 {
		t.Error("the IdP issued no refresh token to compare with")
	}
	for rt := range rg.idp.refresh {
		if strings.Contains(string(stored.RefreshToken), rt) {
			t.Errorf("refresh token stored in clear")
		}
	}
	rg.idp.mu.Unlock()
	if len(stored.RefreshToken) < 28 {
		t.Errorf("refresh token too short to be sealed: %d bytes", len(stored.RefreshToken))
	}
}

func TestSecureCookies(t *testing.T) {
	t.Parallel()
	rg := newRig(t)
	o := rg.login.o
	o.PublicURL = "https://crm.example.com"
	l, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if l.cookie != "__Host-crmgate_session" || !strings.HasPrefix(l.loginCookieName("x"), "__Host-crmgate_login_") || !l.secure {
		t.Fatalf("cookie names %q %q secure %v", l.cookie, l.loginCookieName("x"), l.secure)
	}
	w := &headerRecorder{h: http.Header{}}
	l.setSessionCookie(w, "v")
	if c := w.h.Get("Set-Cookie"); !strings.Contains(c, "Secure") || !strings.Contains(c, "HttpOnly") ||
		!strings.Contains(c, "Path=/") || strings.Contains(c, "Domain") {
		t.Errorf("Set-Cookie = %q", c)
	}
}

type headerRecorder struct{ h http.Header }

func (r *headerRecorder) Header() http.Header         { return r.h }
func (r *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *headerRecorder) WriteHeader(int)             {}

func TestStepUp(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		claims  map[string]any
		wantMFA bool
	}{
		{"idp asserts the mfa acr", map[string]any{"acr": "urn:crmgate:acr:mfa", "amr": []string{"pwd", "otp"}}, true},
		// amr says otp, but the IdP did not assert the acr that was asked for.
		{"weaker acr with mfa amr", map[string]any{"acr": "urn:crmgate:acr:pwd", "amr": []string{"pwd", "otp"}}, false},
		{"no acr with mfa amr", map[string]any{"acr": nil, "amr": []string{"mfa"}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rg := newRig(t)
			b := newBrowser(t)
			rg.signIn(b, "/admin")
			if s := b.subject(rg); s == nil || s.MFA {
				t.Fatalf("password login: %+v", s)
			}
			toIdP := location(t, b.get(rg.srv.URL+"/admin"), http.StatusFound)
			u, _ := url.Parse(toIdP)
			if u.Query().Get("acr_values") != "urn:crmgate:acr:mfa" {
				t.Fatalf("step-up request = %v", u.Query())
			}
			old := rg.cookie(b, "crmgate_session").Value
			rg.idp.setClaims(c.claims)
			back := location(t, b.get(toIdP), http.StatusFound)
			if got := location(t, b.get(back), http.StatusSeeOther); got != "/admin" {
				t.Fatalf("returned to %q", got)
			}
			s := b.subject(rg)
			if s == nil || s.MFA != c.wantMFA {
				t.Fatalf("after step-up subject = %+v, want mfa %v", s, c.wantMFA)
			}
			if now := rg.cookie(b, "crmgate_session").Value; now == old {
				t.Error("step-up kept the session id")
			}
			if _, err := rg.store.Store.Get(context.Background(), old); err == nil {
				t.Error("the pre-step-up session still exists")
			}
		})
	}
}

func TestStepUpMaxAge(t *testing.T) {
	t.Parallel()
	rg := newRig(t, func(o *Options) { o.StepUpMaxAge = 5 * time.Minute })
	b := newBrowser(t)
	rg.idp.setClaims(map[string]any{"acr": "urn:crmgate:acr:mfa", "amr": []string{"otp"}})
	toIdP := location(t, b.get(rg.srv.URL+LoginPath+"?mfa=1&rd=/admin"), http.StatusFound)
	u, _ := url.Parse(toIdP)
	if u.Query().Get("max_age") != "300" {
		t.Fatalf("max_age not sent: %v", u.Query())
	}
	// The IdP answers with an authentication from long ago.
	rg.idp.idToken = func(g *grant, claims map[string]any) string {
		claims["auth_time"] = rg.clock.Now().Add(-time.Hour).Unix()
		tok, _ := rg.idp.iss.Mint(claims, 10*time.Minute)
		return tok
	}
	back := location(t, b.get(toIdP), http.StatusFound)
	location(t, b.get(back), http.StatusSeeOther)
	if s := b.subject(rg); s == nil || s.MFA {
		t.Fatalf("stale authentication counted as mfa: %+v", s)
	}
}

func TestRoleRequiresMFA(t *testing.T) {
	t.Parallel()
	rg := newRig(t)
	b := newBrowser(t)
	rg.idp.setClaims(map[string]any{"sub": "sam", "roles": []string{"admin"}})
	toIdP := location(t, b.get(rg.srv.URL+"/"), http.StatusFound)
	back := location(t, b.get(toIdP), http.StatusFound)
	// No session: straight back to the IdP, asking for MFA.
	res := b.get(back)
	again := location(t, res, http.StatusFound)
	u, _ := url.Parse(again)
	if !strings.HasPrefix(again, rg.idp.srv.URL) || u.Query().Get("acr_values") != "urn:crmgate:acr:mfa" {
		t.Fatalf("role needing mfa sent to %q", again)
	}
	if rg.cookie(b, "crmgate_session") != nil {
		t.Fatal("a session cookie was set without mfa")
	}
	if n, _ := rg.store.Count(context.Background()); n != 0 {
		t.Fatalf("%d sessions exist", n)
	}
	t.Run("step-up without mfa is refused", func(t *testing.T) {
		back := location(t, b.get(again), http.StatusFound)
		if res := b.get(back); res.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d", res.StatusCode)
		}
		if n, _ := rg.store.Count(context.Background()); n != 0 || rg.cookie(b, "crmgate_session") != nil {
			t.Fatal("a session was created")
		}
	})
	t.Run("step-up with mfa gets a session", func(t *testing.T) {
		rg.idp.setClaims(map[string]any{"acr": "urn:crmgate:acr:mfa", "amr": []string{"pwd", "otp"}})
		if got := rg.signIn(b, "/"); got != "/" {
			t.Fatalf("returned to %q", got)
		}
		if s := b.subject(rg); s == nil || !s.MFA || s.ID != "sam" {
			t.Fatalf("subject = %+v", s)
		}
	})
}

// TestCallbackAttacks sends callbacks a correct client must refuse; none
// may create a session.
func TestCallbackAttacks(t *testing.T) {
	t.Parallel()
	mint := func(rg *rig, mutate func(map[string]any), ttl time.Duration) func(*grant, map[string]any) string {
		return func(g *grant, claims map[string]any) string {
			mutate(claims)
			tok, err := rg.idp.iss.Mint(claims, ttl)
			if err != nil {
				t.Error(err)
			}
			return tok
		}
	}
	forge := func(rg *rig, kind string) func(*grant, map[string]any) string {
		return func(g *grant, claims map[string]any) string {
			tok, err := rg.idp.iss.Forge(kind, claims)
			if err != nil {
				t.Error(err)
			}
			return tok
		}
	}
	cases := []struct {
		name  string
		setup func(rg *rig)
	}{
		{"wrong nonce", func(rg *rig) {
			rg.idp.idToken = mint(rg, func(c map[string]any) { c["nonce"] = "attacker-nonce" }, time.Hour)
		}},
		{"no nonce", func(rg *rig) { rg.idp.idToken = mint(rg, func(c map[string]any) { delete(c, "nonce") }, time.Hour) }},
		{"wrong audience", func(rg *rig) { rg.idp.idToken = mint(rg, func(c map[string]any) { c["aud"] = "other-app" }, time.Hour) }},
		{"wrong issuer", func(rg *rig) {
			rg.idp.idToken = mint(rg, func(c map[string]any) { c["iss"] = "https://evil.example" }, time.Hour)
		}},
		{"expired", func(rg *rig) { rg.idp.idToken = mint(rg, func(map[string]any) {}, -time.Minute) }},
		{"alg none", func(rg *rig) { rg.idp.idToken = forge(rg, issuer.ForgeNone) }},
		{"hs256 keyed with the rsa public key", func(rg *rig) { rg.idp.idToken = forge(rg, issuer.ForgeHS256PublicKey) }},
		{"foreign key with the issuer's kid", func(rg *rig) { rg.idp.idToken = forge(rg, issuer.ForgeForeignKey) }},
		{"no id token", func(rg *rig) { rg.idp.idToken = func(*grant, map[string]any) string { return "" } }},
		{"claim of the wrong type", func(rg *rig) {
			rg.idp.idToken = mint(rg, func(c map[string]any) { c["roles"] = map[string]any{"admin": true} }, time.Hour)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rg := newRig(t)
			c.setup(rg)
			b := newBrowser(t)
			toIdP := location(t, b.get(rg.srv.URL+"/"), http.StatusFound)
			back := location(t, b.get(toIdP), http.StatusFound)
			assertRefused(t, rg, b, b.get(back), http.StatusBadRequest)
		})
	}
}

func assertRefused(t *testing.T, rg *rig, b *browser, res *http.Response, status int) {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("callback status %d, want %d", res.StatusCode, status)
	}
	if rg.cookie(b, "crmgate_session") != nil {
		t.Fatal("session cookie set")
	}
	if n, _ := rg.store.Count(context.Background()); n != rg.sessions {
		t.Fatalf("%d session(s) exist, want %d", n, rg.sessions)
	}
	if b.subject(rg) != nil {
		t.Fatal("signed in")
	}
}

func TestCallbackStateAttacks(t *testing.T) {
	t.Parallel()
	t.Run("wrong state", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		b := newBrowser(t)
		toIdP := location(t, b.get(rg.srv.URL+"/"), http.StatusFound)
		back := location(t, b.get(toIdP), http.StatusFound)
		u, _ := url.Parse(back)
		q := u.Query()
		q.Set("state", "forged-state")
		u.RawQuery = q.Encode()
		assertRefused(t, rg, b, b.get(u.String()), http.StatusBadRequest)
	})
	t.Run("login state cookie from another browser", func(t *testing.T) {
		t.Parallel()
		// The attacker starts a login and lures the victim to the callback
		// with the attacker's code (login CSRF): the victim's browser has
		// no login cookie for that state.
		rg := newRig(t)
		attacker, victim := newBrowser(t), newBrowser(t)
		toIdP := location(t, attacker.get(rg.srv.URL+"/"), http.StatusFound)
		back := location(t, attacker.get(toIdP), http.StatusFound)
		location(t, victim.get(rg.srv.URL+"/"), http.StatusFound) // the victim has a login of its own going
		assertRefused(t, rg, victim, victim.get(back), http.StatusBadRequest)
	})
	t.Run("tampered login cookie", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		b := newBrowser(t)
		toIdP := location(t, b.get(rg.srv.URL+"/"), http.StatusFound)
		back := location(t, b.get(toIdP), http.StatusFound)
		u, _ := url.Parse(rg.srv.URL)
		for _, c := range b.jar.Cookies(u) {
			if strings.HasPrefix(c.Name, "crmgate_login_") {
				v := []byte(c.Value)
				v[len(v)/2] ^= 1
				if v[len(v)/2] == '_'+1 || v[len(v)/2] == '-'+1 {
					v[len(v)/2] = 'A'
				}
				b.jar.SetCookies(u, []*http.Cookie{{Name: c.Name, Value: string(v), Path: "/"}})
			}
		}
		assertRefused(t, rg, b, b.get(back), http.StatusBadRequest)
	})
	t.Run("expired login state", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		b := newBrowser(t)
		toIdP := location(t, b.get(rg.srv.URL+"/"), http.StatusFound)
		back := location(t, b.get(toIdP), http.StatusFound)
		rg.clock.Add(LoginStateTTL + time.Second)
		assertRefused(t, rg, b, b.get(back), http.StatusBadRequest)
	})
	t.Run("replayed authorization code", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		b := newBrowser(t)
		toIdP := location(t, b.get(rg.srv.URL+"/"), http.StatusFound)
		back := location(t, b.get(toIdP), http.StatusFound)
		location(t, b.get(back), http.StatusSeeOther)
		rg.sessions = 1
		// The same callback again is refused: its login cookie was used up.
		other := newBrowser(t)
		assertRefused(t, rg, other, other.get(back), http.StatusBadRequest)
		// A fresh login state with the old code: the IdP refuses the code.
		toIdP2 := location(t, other.get(rg.srv.URL+"/"), http.StatusFound)
		u2, _ := url.Parse(toIdP2)
		oldCode := mustQuery(t, back, "code")
		replay := rg.srv.URL + CallbackPath + "?code=" + oldCode + "&state=" + url.QueryEscape(u2.Query().Get("state"))
		assertRefused(t, rg, other, other.get(replay), http.StatusBadRequest)
	})
	t.Run("idp error", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		b := newBrowser(t)
		toIdP := location(t, b.get(rg.srv.URL+"/"), http.StatusFound)
		u, _ := url.Parse(toIdP)
		cb := rg.srv.URL + CallbackPath + "?error=access_denied&state=" + url.QueryEscape(u.Query().Get("state"))
		assertRefused(t, rg, b, b.get(cb), http.StatusUnauthorized)
	})
}

func mustQuery(t *testing.T, raw, key string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get(key)
}

func TestSessionFixation(t *testing.T) {
	t.Parallel()
	rg := newRig(t)
	// The attacker's own valid session id, planted in the victim's browser.
	attacker := newBrowser(t)
	rg.signIn(attacker, "/")
	planted := rg.cookie(attacker, "crmgate_session").Value
	forged, _ := session.NewID()
	for _, pre := range []string{planted, forged} {
		victim := newBrowser(t)
		u, _ := url.Parse(rg.srv.URL)
		victim.jar.SetCookies(u, []*http.Cookie{{Name: "crmgate_session", Value: pre, Path: "/"}})
		rg.idp.setClaims(map[string]any{"sub": "victim"})
		rg.signIn(victim, "/")
		got := rg.cookie(victim, "crmgate_session").Value
		if got == pre {
			t.Fatal("login adopted the pre-set session id")
		}
		if s := victim.subject(rg); s == nil || s.ID != "victim" {
			t.Fatalf("victim subject = %+v", s)
		}
		rg.idp.setClaims(map[string]any{"sub": "alice"})
	}
	// The planted id (the attacker's) was ended by the victim's login.
	if s := attacker.subject(rg); s != nil {
		t.Fatalf("planted session still valid: %+v", s)
	}
}

func TestForgedSessionCookie(t *testing.T) {
	t.Parallel()
	rg := newRig(t)
	b := newBrowser(t)
	rg.signIn(b, "/")
	real := rg.cookie(b, "crmgate_session").Value
	fresh, _ := session.NewID()
	flip := []byte(real)
	if flip[5] == 'A' {
		flip[5] = 'B'
	} else {
		flip[5] = 'A'
	}
	cases := map[string]string{
		"random well-formed id": fresh, "one character changed": string(flip), "truncated": real[:20],
		"extended": real + "A", "empty": "", "hash instead of id": session.HashID(real), "padding": real + "=",
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			other := newBrowser(t)
			u, _ := url.Parse(rg.srv.URL)
			other.jar.SetCookies(u, []*http.Cookie{{Name: "crmgate_session", Value: v, Path: "/"}})
			if s := other.subject(rg); s != nil {
				t.Fatalf("forged cookie accepted: %+v", s)
			}
		})
	}
}

func TestTimeouts(t *testing.T) {
	t.Parallel()
	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t, func(o *Options) { o.IdleTimeout = 10 * time.Minute })
		b := newBrowser(t)
		rg.signIn(b, "/")
		rg.clock.Add(9 * time.Minute)
		if b.subject(rg) == nil {
			t.Fatal("session ended before its idle timeout")
		}
		rg.clock.Add(9 * time.Minute) // used 9 min ago: still fine
		if b.subject(rg) == nil {
			t.Fatal("activity did not extend the session")
		}
		rg.clock.Add(11 * time.Minute)
		if b.subject(rg) != nil {
			t.Fatal("session outlived its idle timeout")
		}
	})
	t.Run("absolute", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t, func(o *Options) { o.IdleTimeout = 30 * time.Minute; o.MaxLifetime = time.Hour })
		rg.idp.idTTL = 2 * time.Hour
		b := newBrowser(t)
		rg.signIn(b, "/")
		for range 3 {
			rg.clock.Add(19 * time.Minute)
			if b.subject(rg) == nil {
				t.Fatal("active session ended early")
			}
		}
		rg.clock.Add(4 * time.Minute)
		if b.subject(rg) != nil {
			t.Fatal("session outlived its maximum lifetime")
		}
	})
}

func TestHotPathIsOneRead(t *testing.T) {
	t.Parallel()
	rg := newRig(t)
	b := newBrowser(t)
	rg.signIn(b, "/")
	rg.store.gets.Store(0)
	rg.store.touches.Store(0)
	for range 20 {
		if b.subject(rg) == nil {
			t.Fatal("not signed in")
		}
	}
	if g, tc := rg.store.gets.Load(), rg.store.touches.Load(); g != 20 || tc != 0 {
		t.Fatalf("20 requests: %d gets, %d touches; want 20 and 0", g, tc)
	}
	rg.clock.Add(DefaultTouchInterval)
	b.subject(rg)
	b.subject(rg)
	if tc := rg.store.touches.Load(); tc != 1 {
		t.Fatalf("touches after the interval = %d, want 1", tc)
	}
	seen, err := rg.store.LastSeen(context.Background())
	if err != nil || !seen["alice"].Equal(rg.clock.Now()) {
		t.Fatalf("last seen = %v, %v", seen, err)
	}
}

func TestRefresh(t *testing.T) {
	t.Parallel()
	t.Run("roles changed at the idp reach crmgate", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		b := newBrowser(t)
		rg.signIn(b, "/")
		rg.idp.setClaims(map[string]any{"roles": []string{"sales", "line_manager"}})
		rg.clock.Add(9*time.Minute + time.Second) // within the refresh margin
		s := b.subject(rg)
		if s == nil || !slices.Equal(s.Roles, []string{"line_manager", "sales"}) {
			t.Fatalf("after refresh subject = %+v", s)
		}
		if rg.idp.refreshes.Load() != 1 {
			t.Fatalf("%d refreshes", rg.idp.refreshes.Load())
		}
		b.subject(rg)
		if rg.idp.refreshes.Load() != 1 {
			t.Fatal("refreshed again although the new token is fresh")
		}
	})
	t.Run("refresh never grants mfa", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		b := newBrowser(t)
		rg.signIn(b, "/")
		rg.idp.setClaims(map[string]any{"acr": "urn:crmgate:acr:mfa", "amr": []string{"otp"}})
		rg.clock.Add(10 * time.Minute)
		if s := b.subject(rg); s == nil || s.MFA {
			t.Fatalf("subject = %+v", s)
		}
	})
	t.Run("refused refresh ends the session", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		b := newBrowser(t)
		rg.signIn(b, "/")
		rg.idp.refreshStatus = http.StatusBadRequest
		rg.clock.Add(10 * time.Minute)
		if s := b.subject(rg); s != nil {
			t.Fatalf("session survived a refused refresh: %+v", s)
		}
		if n, _ := rg.store.Count(context.Background()); n != 0 {
			t.Fatal("session not deleted")
		}
	})
	t.Run("new role needing mfa ends a password session", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		b := newBrowser(t)
		rg.signIn(b, "/")
		rg.idp.setClaims(map[string]any{"roles": []string{"admin"}})
		rg.clock.Add(10 * time.Minute)
		if s := b.subject(rg); s != nil {
			t.Fatalf("password session got admin: %+v", s)
		}
	})
	t.Run("idp down fails closed", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		b := newBrowser(t)
		rg.signIn(b, "/")
		rg.idp.refreshStatus = http.StatusBadGateway
		rg.clock.Add(10 * time.Minute)
		res := b.get(rg.srv.URL + "/")
		if res.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503", res.StatusCode)
		}
		rg.idp.refreshStatus = 0
		if s := b.subject(rg); s == nil {
			t.Fatal("session did not recover once the idp was back")
		}
	})
	t.Run("concurrent requests share one refresh", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		b := newBrowser(t)
		rg.signIn(b, "/")
		rg.clock.Add(10 * time.Minute)
		done := make(chan bool, 8)
		for range 8 {
			go func() { done <- b.subject(rg) != nil }()
		}
		for range 8 {
			if !<-done {
				t.Error("a concurrent request lost the session")
			}
		}
		if n := rg.idp.refreshes.Load(); n != 1 {
			t.Fatalf("%d refreshes for one session, want 1 (rotation would revoke the grant)", n)
		}
	})
	t.Run("concurrent requests through two replicas share one refresh", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		other := rg.replica()
		b := newBrowser(t)
		rg.signIn(b, "/")
		// Wide enough that, without a lease across replicas, each would
		// read the stale tokens before the other stored new ones.
		rg.idp.refreshDelay.Store(int64(200 * time.Millisecond))
		rg.clock.Add(10 * time.Minute)
		done := make(chan bool, 8)
		for i := range 8 {
			base := rg.srv.URL
			if i%2 == 1 {
				base = other
			}
			go func() { done <- b.subjectAt(base) != nil }()
		}
		for range 8 {
			if !<-done {
				t.Error("a concurrent request lost the session")
			}
		}
		if n := rg.idp.refreshes.Load(); n != 1 {
			t.Fatalf("%d refreshes for one session across two replicas, want 1 (rotation would revoke the grant)", n)
		}
		for _, base := range []string{rg.srv.URL, other} {
			if b.subjectAt(base) == nil {
				t.Fatalf("session lost at %s after the refresh", base)
			}
		}
	})
	t.Run("a replica waits for the lease holder and takes over when it gives up", func(t *testing.T) {
		t.Parallel()
		rg := newRig(t)
		b := newBrowser(t)
		rg.signIn(b, "/")
		rg.clock.Add(10 * time.Minute)
		hash := session.HashID(rg.cookie(b, rg.login.cookie).Value)
		// Another replica holds the lease and will not finish its refresh.
		unlock, ok, err := rg.store.Lock(context.Background(), hash, time.Minute)
		if err != nil || !ok {
			t.Fatalf("Lock = %v, %v", ok, err)
		}
		done := make(chan bool, 1)
		go func() { done <- b.subject(rg) != nil }()
		select {
		case <-done:
			t.Fatal("request did not wait for the replica holding the lease")
		case <-time.After(300 * time.Millisecond):
		}
		if n := rg.idp.refreshes.Load(); n != 0 {
			t.Fatalf("%d refreshes while another replica held the lease", n)
		}
		unlock()
		select {
		case ok := <-done:
			if !ok {
				t.Fatal("the waiting request lost the session")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the waiting request did not take over the released lease")
		}
		if n := rg.idp.refreshes.Load(); n != 1 {
			t.Fatalf("%d refreshes, want 1", n)
		}
	})
}

func TestIdPUnavailableAtStart(t *testing.T) {
	t.Parallel()
	rg := newRig(t)
	o := rg.login.o
	o.Issuer = "http://127.0.0.1:1"
	l, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.Start(ctx); err == nil {
		t.Fatal("discovery of a dead issuer succeeded")
	}
	for _, accept := range []string{"text/html", "application/json"} {
		r := httptest.NewRequest(http.MethodGet, LoginPath+"?rd=/x", nil)
		r.Header.Set("Accept", accept)
		w := httptest.NewRecorder()
		l.Routes().ServeHTTP(w, r)
		if w.Code != http.StatusServiceUnavailable {
			t.Fatalf("login while idp down (%s): %d", accept, w.Code)
		}
	}
	if l.Ready() {
		t.Fatal("ready without discovery")
	}
}
