package app_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/proxy/app"
	"github.com/crmgate/crmgate/proxy/demo"
	"github.com/crmgate/crmgate/proxy/emulator"
	"github.com/crmgate/crmgate/proxy/session"
	"github.com/crmgate/crmgate/test/testredis"
)

// TOTP secrets of test/idp/users.json (test only).
const (
	samTOTP         = "Q2LNYG7GDO6RQ2QYCYJWQH7LA53O4T3H"
	morganTOTP      = "GHN6F4AANQ3STNAC2ZR3B5NP6KLAIHUG"
	loginAdminToken = "admin-token-0123456789"
	accounts        = "/Api/V8/module/Accounts"
	products        = "/Api/V8/module/AOS_Products"
)

// replica is one crmgate process-alike: its own App, listener and admin
// handler, sharing the Redis session store with the others.
type replica struct {
	URL  string
	App  *app.App
	dlog *syncBuffer
}

// loginEnv is crmgate (two replicas sharing Redis) in front of the SuiteCRM
// emulator, with the real node OpenID provider of test/idp.
type loginEnv struct {
	t        *testing.T
	idp      *nodeIdP
	replicas []*replica
	store    session.Store // a third client of the same Redis keys
}

func newLoginEnv(t *testing.T) *loginEnv {
	t.Helper()
	prefix := testredis.Prefix(t, testredis.Client(t))
	key := make([]byte, 32)
	_, _ = rand.Read(key)

	ds := emulator.DepartmentStore()
	up := httptest.NewServer(emulator.NewSuiteCRM(ds, emulator.SuiteOptions{ClientID: "crmgate", ClientSecret: "s3cret"}))
	t.Cleanup(up.Close)

	var lns []net.Listener
	var args []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		base := "http://" + ln.Addr().String()
		args = append(args, "--redirect-uri", base+"/.crmgate/callback", "--post-logout-redirect-uri", base+"/.crmgate/signed-out")
	}
	args = append(args, "--backchannel-logout-uri", "http://"+lns[0].Addr().String()+"/.crmgate/backchannel-logout")
	e := &loginEnv{t: t, idp: startIdP(t, args...)}

	for _, ln := range lns {
		cfg := demo.Config(ln.Addr().String(), "127.0.0.1:2", up.URL, e.idp.URL, loginAdminToken, "s3cret")
		cfg.Identity.Bearer = config.Bearer{}
		cfg.Identity.OIDC = config.OIDC{Issuer: e.idp.URL, ClientID: "crmgate", ClientSecret: "crmgate-test-secret",
			Scopes: []string{"openid", "profile", "email", "groups", "crm"}}
		cfg.Identity.MFA.AMR = []string{"otp", "mfa"}
		cfg.Identity.MFA.ACR = []string{"urn:crmgate:acr:mfa"}
		cfg.Session.Store = config.StoreRedis
		cfg.Session.Redis = config.Redis{Addrs: []string{testredis.Addr()}, KeyPrefix: prefix}
		cfg.Session.EncryptionKey = base64.StdEncoding.EncodeToString(key)
		config.ApplyDefaults(cfg)
		if err := cfg.Validate(); err != nil {
			t.Fatalf("config: %v", err)
		}
		dlog := &syncBuffer{}
		a, err := app.Build(context.Background(), cfg, app.Deps{PolicyFS: demoPolicy(t), DecisionLogWriter: dlog, Version: "test"})
		if err != nil {
			t.Fatalf("build: %v", err)
		}
		srv := &http.Server{Handler: a.Handler, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
			_ = a.Close(ctx)
		})
		e.replicas = append(e.replicas, &replica{URL: "http://" + ln.Addr().String(), App: a, dlog: dlog})
	}
	e.store = session.NewRedis(redis.NewClient(&redis.Options{Addr: testredis.Addr()}), prefix, nil)
	t.Cleanup(func() { _ = e.store.Close() })
	return e
}

// signIn navigates to path on replica r and signs in with the password
// (and TOTP when the IdP asks for it), returning the final page.
func (e *loginEnv) signIn(ua *userAgent, r int, path, user, totpSecret string) *page {
	e.t.Helper()
	p := ua.navigate(http.MethodGet, e.replicas[r].URL+path, nil)
	if !strings.Contains(p.Body, `id="login"`) {
		e.t.Fatalf("expected the IdP's login form at %s, got %d: %s", p.URL, p.Status, p.Body)
	}
	p = ua.password(p, user)
	if strings.Contains(p.Body, `id="otp"`) {
		if totpSecret == "" {
			e.t.Fatalf("IdP asked %s for a TOTP code", user)
		}
		p = ua.otp(p, totpSecret)
	}
	return p
}

// api sends an API request (no navigation) with the user agent's cookies.
func (e *loginEnv) api(ua *userAgent, r int, path string) int {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.replicas[r].URL+path, nil)
	req.Header.Set("Accept", "application/json")
	res, err := ua.c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

type adminSession struct {
	Hash string   `json:"hash"`
	User string   `json:"user"`
	AMR  []string `json:"amr"`
	MFA  bool     `json:"mfa"`
}

// admin calls the admin listener's handler of replica r.
func (e *loginEnv) admin(r int, method, target string) (int, []adminSession) {
	e.t.Helper()
	req := httptest.NewRequest(method, target, nil)
	req.Header.Set("Authorization", "Bearer "+loginAdminToken)
	w := httptest.NewRecorder()
	e.replicas[r].App.Admin.ServeHTTP(w, req)
	var body struct {
		Sessions []adminSession `json:"sessions"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	return w.Code, body.Sessions
}

func (e *loginEnv) sessionsOf(user string) []adminSession {
	e.t.Helper()
	code, list := e.admin(0, http.MethodGet, "/admin/sessions?user="+user)
	if code != 200 {
		e.t.Fatalf("admin list: %d", code)
	}
	return list
}

func wantCRMPage(t *testing.T, p *page, base, path string) {
	t.Helper()
	if p.Status != 200 || !strings.HasPrefix(p.URL, base+path) || !strings.Contains(p.Body, `"data"`) {
		t.Fatalf("expected the CRM's answer at %s%s, got %d at %s: %.300s", base, path, p.Status, p.URL, p.Body)
	}
}

// eventually polls cond for up to 5 s: the IdP's back-channel call runs
// alongside its answer to the browser.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting: %s", what)
}

// TestLoginRealIdP drives browser sign-in through the real pipeline, the
// real OpenID provider and a real Redis shared by two replicas.
func TestLoginRealIdP(t *testing.T) {
	e := newLoginEnv(t)
	r0, r1 := e.replicas[0].URL, e.replicas[1].URL

	t.Run("password login reaches the CRM on every replica", func(t *testing.T) {
		ua := newUserAgent(t)
		p := e.signIn(ua, 0, accounts+"?page[size]=5", "alice", "")
		wantCRMPage(t, p, r0, accounts)
		if got := ua.navigate(http.MethodGet, r1+accounts, nil); got.Status != 200 {
			t.Fatalf("replica 1 refused the session made on replica 0: %d", got.Status)
		}
		list := e.sessionsOf("alice")
		if len(list) != 1 || list[0].MFA || !slices.Equal(list[0].AMR, []string{"pwd"}) {
			t.Fatalf("alice's sessions = %+v", list)
		}
	})

	t.Run("mfa login", func(t *testing.T) {
		ua := newUserAgent(t)
		p := ua.navigate(http.MethodGet, r0+"/.crmgate/login?mfa=1&rd="+accounts, nil)
		p = ua.password(p, "morgan")
		if !strings.Contains(p.Body, `id="otp"`) {
			t.Fatalf("no TOTP prompt: %s", p.Body)
		}
		wantCRMPage(t, ua.otp(p, morganTOTP), r0, accounts)
		list := e.sessionsOf("morgan")
		if len(list) != 1 || !list[0].MFA || !slices.Contains(list[0].AMR, "otp") {
			t.Fatalf("morgan's sessions = %+v", list)
		}
	})

	t.Run("step-up from a password session on an admin route", func(t *testing.T) {
		ua := newUserAgent(t)
		// sam signs in with the password only, then opens a page whose
		// policy requires MFA: the IdP asks only for the second factor.
		p := ua.navigate(http.MethodGet, r0+"/.crmgate/login?rd=/", nil)
		p = ua.password(p, "sam")
		if strings.Contains(p.Body, `id="otp"`) || strings.Contains(p.Body, `id="login"`) {
			t.Fatalf("plain login asked for more than the password: %d %s", p.Status, p.Body)
		}
		before := e.sessionsOf("sam")
		if len(before) != 1 || before[0].MFA {
			t.Fatalf("sam's password session = %+v", before)
		}
		p = ua.navigate(http.MethodGet, r0+accounts, nil)
		if !strings.Contains(p.Body, `id="otp"`) || strings.Contains(p.Body, `id="password"`) {
			t.Fatalf("step-up did not ask for the TOTP only: %d %s", p.Status, p.Body)
		}
		wantCRMPage(t, ua.otp(p, samTOTP), r0, accounts)
		after := e.sessionsOf("sam")
		if len(after) != 1 || !after[0].MFA || after[0].Hash == before[0].Hash {
			t.Fatalf("after step-up sam's sessions = %+v (before %+v)", after, before)
		}
	})

	t.Run("logout ends the session here and at the IdP", func(t *testing.T) {
		ua := newUserAgent(t)
		wantCRMPage(t, e.signIn(ua, 0, accounts, "alice", ""), r0, accounts)
		form := ua.navigate(http.MethodGet, r0+"/.crmgate/logout", nil)
		p := ua.submit(form, "logout-form", nil)
		p = ua.confirmIdPLogout(p)
		if !strings.HasPrefix(p.URL, r0+"/.crmgate/signed-out") || !strings.Contains(p.Body, `id="signed-out"`) {
			t.Fatalf("after logout: %d at %s: %s", p.Status, p.URL, p.Body)
		}
		if st := e.api(ua, 1, accounts); st != http.StatusUnauthorized {
			t.Fatalf("API request after logout: %d", st)
		}
		// The IdP session ended too: signing in asks for the password again.
		p = ua.navigate(http.MethodGet, r0+accounts, nil)
		if !strings.Contains(p.Body, `id="login"`) {
			t.Fatalf("no password prompt after logout: %s", p.Body)
		}
	})

	t.Run("cross-site logout is refused", func(t *testing.T) {
		ua := newUserAgent(t)
		e.signIn(ua, 0, products, "ivan", "")
		p := ua.navigate(http.MethodPost, r0+"/.crmgate/logout", nil, "Origin", "https://evil.example")
		if p.Status != http.StatusForbidden || e.api(ua, 0, products) != 200 {
			t.Fatalf("cross-site logout: %d", p.Status)
		}
	})

	t.Run("back-channel logout from the IdP revokes the session", func(t *testing.T) {
		ua := newUserAgent(t)
		before := len(e.sessionsOf("ivan"))
		wantCRMPage(t, e.signIn(ua, 1, products, "ivan", ""), r1, products)
		if len(e.sessionsOf("ivan")) != before+1 {
			t.Fatal("no new session")
		}
		// Signing out at the IdP itself (not through crmgate): the IdP
		// tells crmgate over the back channel.
		p := ua.navigate(http.MethodGet, e.idp.URL+"/session/end?client_id=crmgate", nil)
		ua.confirmIdPLogout(p)
		// Only the IdP session that ended: ivan's other browser (the
		// cross-site test's) stays signed in.
		eventually(t, "ivan's session revoked", func() bool { return len(e.sessionsOf("ivan")) == before })
		if st := e.api(ua, 1, products); st != http.StatusUnauthorized {
			t.Fatalf("request after back-channel logout: %d", st)
		}
	})

	t.Run("revoked through the admin API, refused by the other replica", func(t *testing.T) {
		ua := newUserAgent(t)
		wantCRMPage(t, e.signIn(ua, 0, accounts, "pat", ""), r0, "/Api/V8/module/Accounts")
		if st := e.api(ua, 1, accounts); st != 200 {
			t.Fatalf("replica 1 before revocation: %d", st)
		}
		if code, _ := e.admin(0, http.MethodDelete, "/admin/sessions?user=pat"); code != 200 {
			t.Fatalf("admin revoke: %d", code)
		}
		if st := e.api(ua, 1, accounts); st != http.StatusUnauthorized {
			t.Fatalf("replica 1 after revocation: %d", st)
		}
		if len(e.sessionsOf("pat")) != 0 {
			t.Fatal("pat still has sessions")
		}
		// A browser navigation goes back through the IdP; pat's IdP
		// session still lives (locking out at the IdP is the IdP's part),
		// so a new session is made, under a new id.
		ua.navigate(http.MethodGet, r1+accounts, nil)
		if now := e.sessionsOf("pat"); len(now) != 1 {
			t.Fatalf("after re-login: %+v", now)
		}
	})

	t.Run("one session revoked by hash", func(t *testing.T) {
		ua1, ua2 := newUserAgent(t), newUserAgent(t)
		known := map[string]bool{}
		for _, s := range e.sessionsOf("alice") {
			known[s.Hash] = true
		}
		e.signIn(ua1, 0, accounts, "alice", "")
		e.signIn(ua2, 0, accounts, "alice", "")
		var fresh []string
		for _, s := range e.sessionsOf("alice") {
			if !known[s.Hash] {
				fresh = append(fresh, s.Hash)
			}
		}
		if len(fresh) != 2 {
			t.Fatalf("alice's new sessions = %v", fresh)
		}
		if code, _ := e.admin(1, http.MethodDelete, "/admin/sessions?id="+fresh[0]); code != 200 {
			t.Fatalf("revoke by hash: %d", code)
		}
		codes := []int{e.api(ua1, 0, accounts), e.api(ua2, 0, accounts)}
		slices.Sort(codes)
		if !slices.Equal(codes, []int{200, http.StatusUnauthorized}) {
			t.Fatalf("after revoking one of two sessions: %v", codes)
		}
	})

	t.Run("revoked in the store by another process", func(t *testing.T) {
		ua := newUserAgent(t)
		e.signIn(ua, 1, accounts, "alice", "")
		if st := e.api(ua, 0, accounts); st != 200 {
			t.Fatalf("before: %d", st)
		}
		// What `crmgate sessions revoke --user alice` does.
		if _, err := e.store.RevokeUser(context.Background(), "alice"); err != nil {
			t.Fatal(err)
		}
		for r := range e.replicas {
			if st := e.api(ua, r, accounts); st != http.StatusUnauthorized {
				t.Fatalf("replica %d after revocation: %d", r, st)
			}
		}
	})

	t.Run("forged session cookie", func(t *testing.T) {
		ua := newUserAgent(t)
		id, _ := session.NewID()
		req, _ := http.NewRequest(http.MethodGet, r0+accounts, nil)
		req.AddCookie(&http.Cookie{Name: "crmgate_session", Value: id})
		req.Header.Set("Accept", "application/json")
		res, err := ua.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("forged cookie: %d", res.StatusCode)
		}
	})

	t.Run("readiness pings the store", func(t *testing.T) {
		if code, _ := e.admin(0, http.MethodGet, "/readyz"); code != 200 {
			t.Fatalf("readyz: %d", code)
		}
	})
}
