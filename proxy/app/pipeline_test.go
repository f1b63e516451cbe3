package app_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/proxy/app"
	"github.com/crmgate/crmgate/proxy/demo"
)

// internalLeaks are fragments of internal error strings that must never
// appear in a response body.
var internalLeaks = []string{"rego", "oidc", "x509", "json:", "eval_", "dial tcp", "goroutine", "runtime error", "panic", "127.0.0.1", "upstream credential"}

func assertProblem(t *testing.T, r response, status int, kind string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content-type = %q, want application/problem+json", ct)
	}
	p := r.json(t)
	if p["type"] != "urn:crmgate:problem:"+kind {
		t.Errorf("type = %v, want urn:crmgate:problem:%s", p["type"], kind)
	}
	if int(p["status"].(float64)) != status {
		t.Errorf("body status = %v", p["status"])
	}
	if id, _ := p["decision_id"].(string); len(id) < 16 {
		t.Errorf("decision_id missing: %v", p["decision_id"])
	}
	low := strings.ToLower(string(r.Body))
	for _, leak := range internalLeaks {
		if strings.Contains(low, leak) {
			t.Errorf("problem body leaks %q: %s", leak, r.Body)
		}
	}
}

func assertNothingUpstream(t *testing.T, e *env) {
	t.Helper()
	if got := e.upstream.crmRequests(); len(got) != 0 {
		t.Fatalf("%d request(s) reached the CRM, first %s %s", len(got), got[0].Method, got[0].Path)
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t, "suitecrm8")
	valid := map[string]any{"sub": "alice", "aud": demo.Audience, "roles": []string{"admin"}, "amr": []string{"otp"}}
	forge := func(kind string) string {
		tok, err := e.iss.Forge(kind, valid)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	mint := func(claims map[string]any, ttl time.Duration) string {
		tok, err := e.iss.Mint(claims, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	wrongAud := map[string]any{"sub": "alice", "aud": "another-app", "roles": []string{"admin"}}
	cases := []struct {
		name, auth string
		kind       string
	}{
		{"no credentials", "", "unauthenticated"},
		{"alg none", "Bearer " + forge("none"), "invalid-token"},
		{"hs256 with rsa public key", "Bearer " + forge("hs256-pubkey"), "invalid-token"},
		{"foreign key same kid", "Bearer " + forge("foreign-key"), "invalid-token"},
		{"expired", "Bearer " + mint(valid, -time.Minute), "invalid-token"},
		{"wrong audience", "Bearer " + mint(wrongAud, time.Hour), "invalid-token"},
		{"garbage", "Bearer not.a.jwt", "invalid-token"},
		{"basic scheme", "Basic YWRtaW46YWRtaW4=", "invalid-token"},
		{"empty bearer", "Bearer ", "invalid-token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.upstream.reset()
			var r response
			if c.auth == "" {
				r = e.do("GET", "/Api/V8/module/Accounts", "", "")
			} else {
				r = e.do("GET", "/Api/V8/module/Accounts", "", "", "Authorization", c.auth)
			}
			assertProblem(t, r, http.StatusUnauthorized, c.kind)
			if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", r.Header.Get("WWW-Authenticate"))
			}
			assertNothingUpstream(t, e)
		})
	}
}

func TestRoutesAndPathTricks(t *testing.T) {
	e := newEnv(t, "suitecrm8")
	cases := []struct {
		name, method, path string
		status             int
	}{
		{"unknown api", "GET", "/Api/V8/unknown", 404},
		{"crm token endpoint", "POST", "/Api/access_token", 404},
		{"dotfile", "GET", "/.env", 404},
		{"root", "GET", "/", 400},
		{"crm ui", "GET", "/index.php?module=Employees&action=index", 404},
		{"dot dot into personnel", "GET", "/Api/V8/module/Accounts/../Employees", 400},
		{"encoded dot dot", "GET", "/Api/V8/module/Accounts/%2e%2e/Employees", 400},
		{"encoded slash", "GET", "/Api/V8/module/Accounts%2f..%2fEmployees", 400},
		{"encoded backslash", "GET", "/Api/V8/module/Accounts%5c..%5cEmployees", 400},
		{"double slash", "GET", "/Api/V8//module/Employees", 400},
		{"dot segment", "GET", "/Api/V8/./module/Employees", 400},
		{"path params", "GET", "/Api/V8/module/Employees;x=1", 400},
		{"encoded letter", "GET", "/Api/V8/module/%45mployees", 400},
		{"literal case", "GET", "/api/v8/module/Employees", 404},
		{"trace", "TRACE", "/Api/V8/module/Accounts", 405},
		{"options", "OPTIONS", "/Api/V8/module/Accounts", 405},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.upstream.reset()
			r := e.do(c.method, c.path, "alice", "")
			if r.Status != c.status {
				t.Fatalf("status = %d, want %d: %s", r.Status, c.status, r.Body)
			}
			assertNothingUpstream(t, e)
		})
	}
	t.Run("module case game is classified as the real module", func(t *testing.T) {
		e.upstream.reset()
		// Sales may not read CRM user records; "users" must not be a way round it.
		r := e.do("GET", "/Api/V8/module/users", "alice", "")
		assertProblem(t, r, http.StatusForbidden, "forbidden")
		assertNothingUpstream(t, e)
	})
}

func TestMethodOverrideRefused(t *testing.T) {
	e := newEnv(t, "suitecrm8")
	for _, h := range []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"} {
		t.Run(h, func(t *testing.T) {
			e.upstream.reset()
			r := e.do("GET", "/Api/V8/module/Accounts/acc-1", "sam", "", h, "DELETE")
			assertProblem(t, r, http.StatusBadRequest, "bad-request")
			assertNothingUpstream(t, e)
		})
	}
	t.Run("_method query", func(t *testing.T) {
		e.upstream.reset()
		r := e.do("GET", "/Api/V8/module/Accounts/acc-1?_method=DELETE", "sam", "")
		assertProblem(t, r, http.StatusBadRequest, "bad-request")
		assertNothingUpstream(t, e)
	})
}

func TestSpoofedHeadersNeverReachCRM(t *testing.T) {
	e := newEnv(t, "suitecrm8")
	spoof := []string{
		"X-Forwarded-User", "sam", "X-Forwarded-Email", "sam@shop.example", "X-Forwarded-Groups", "admin",
		"X-Auth-Request-User", "sam", "X-Remote-User", "sam", "Remote-User", "sam", "X-User", "sam",
		"X-WEBAUTH-USER", "sam", "X-Api-Key", "stolen", "Espo-Authorization", "c2FtOnNhbQ==",
		"Cookie", "PHPSESSID=admin-session", "Forwarded", "for=10.0.0.1;by=trusted",
		"X-Forwarded-For", "10.9.9.9", "X-Forwarded-Host", "crm.internal", "X-Real-IP", "10.9.9.9",
		"Proxy-Authorization", "Basic c2FtOnNhbQ==",
	}
	r := e.do("GET", "/Api/V8/module/Accounts", "alice", "", spoof...)
	if r.Status != http.StatusOK {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	got := e.upstream.crmRequests()
	if len(got) != 1 {
		t.Fatalf("%d upstream requests", len(got))
	}
	h := got[0].Header
	for i := 0; i < len(spoof); i += 2 {
		name, val := spoof[i], spoof[i+1]
		for _, v := range h.Values(name) {
			if strings.Contains(v, val) {
				t.Errorf("spoofed %s: %q reached the CRM", name, v)
			}
		}
	}
	if auth := h.Get("Authorization"); !strings.HasPrefix(auth, "Bearer ") || strings.Contains(auth, e.tokens["alice"]) {
		t.Errorf("upstream Authorization is not crmgate's own credential: %q", auth)
	}
	if got[0].Path != "/Api/V8/module/Accounts" {
		t.Errorf("upstream path %q", got[0].Path)
	}
}

func TestPathOverrideHeadersRefused(t *testing.T) {
	e := newEnv(t, "suitecrm8")
	for _, h := range []string{"X-Original-URL", "X-Rewrite-URL"} {
		t.Run(h, func(t *testing.T) {
			e.upstream.reset()
			r := e.do("GET", "/Api/V8/module/Accounts", "alice", "", h, "/Api/V8/module/Users")
			assertProblem(t, r, http.StatusBadRequest, "bad-request")
			assertNothingUpstream(t, e)
		})
	}
}

func TestUpstreamCredentialEspo(t *testing.T) {
	e := newEnv(t, "espocrm")
	r := e.do("GET", "/api/v1/Account", "alice", "", "X-Api-Key", "client-guess")
	if r.Status != http.StatusOK {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	got := e.upstream.crmRequests()
	if len(got) != 1 || got[0].Header.Get("X-Api-Key") != "espo-key" {
		t.Fatalf("upstream did not get crmgate's api key: %+v", got)
	}
}

func TestDecisionLogAndCounterPerRequest(t *testing.T) {
	e := newEnv(t, "suitecrm8")
	reqs := []struct{ method, path, persona string }{
		{"GET", "/Api/V8/module/Accounts", "alice"},        // allow
		{"GET", "/Api/V8/module/Users", "alice"},           // deny
		{"GET", "/Api/V8/module/Employees", "sam-nomfa"},   // step-up
		{"GET", "/Api/V8/module/Accounts", ""},             // unauthenticated
		{"GET", "/Api/V8/nope", "alice"},                   // unknown route
		{"GET", "/Api/V8/module/Accounts/../x", "alice"},   // bad path
		{"GET", "/Api/V8/module/AOS_Products/p-1", "ivan"}, // allow
	}
	for _, q := range reqs {
		e.do(q.method, q.path, q.persona, "")
	}
	lines := e.flushLog()
	total := sumMetric(t, e, "crmgate_decisions_total")
	if int(total) != len(reqs) {
		t.Errorf("crmgate_decisions_total = %v, want %d", total, len(reqs))
	}
	if len(lines) != len(reqs) {
		t.Fatalf("%d decision-log lines for %d requests", len(lines), len(reqs))
	}
	ids := map[string]bool{}
	wantOutcomes := []string{"allow", "deny", "step_up", "deny", "deny", "deny", "allow"}
	for i, l := range lines {
		id, _ := l["decision_id"].(string)
		if id == "" || ids[id] {
			t.Errorf("line %d: missing or repeated decision_id %q", i, id)
		}
		ids[id] = true
		if l["outcome"] != wantOutcomes[i] {
			t.Errorf("line %d (%s %s): outcome %v, want %s", i, reqs[i].method, reqs[i].path, l["outcome"], wantOutcomes[i])
		}
		for _, k := range []string{"timestamp", "path", "request_id", "status", "latency_ns"} {
			if _, ok := l[k]; !ok {
				t.Errorf("line %d lacks %q: %v", i, k, l)
			}
		}
	}
	if lines[0]["module"] != "Accounts" || lines[0]["action"] != "list" {
		t.Errorf("first line module/action = %v/%v", lines[0]["module"], lines[0]["action"])
	}
	if in, ok := lines[0]["input"].(map[string]any); !ok || in["subject"] == nil {
		t.Errorf("first line has no input.subject: %v", lines[0]["input"])
	}
	for _, l := range lines {
		if strings.Contains(mustJSON(t, l), e.tokens["alice"]) {
			t.Fatal("a bearer token reached the decision log")
		}
	}
}

func TestPolicyReturningWrongTypeFailsClosed(t *testing.T) {
	bad := fstest.MapFS{"bad.rego": {Data: []byte("package crmgate\n\nallow := \"yes\"\n")}}
	e := newEnvFS(t, bad)
	r := e.do("GET", "/Api/V8/module/Accounts", "sam", "")
	assertProblem(t, r, http.StatusInternalServerError, "policy-error")
	assertNothingUpstream(t, e)
	lines := e.flushLog()
	if len(lines) != 1 || lines[0]["outcome"] != "error" {
		t.Fatalf("decision log = %v", lines)
	}
	// The operator learns which rule was wrong; the client did not.
	if msg, _ := lines[0]["error"].(string); !strings.Contains(msg, "allow") || !strings.Contains(msg, "boolean") {
		t.Errorf("decision log error = %q, want it to name the rule and the expected type", msg)
	}
}

func TestUpstreamFailures(t *testing.T) {
	t.Run("unreachable is 502", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		e := newEnv(t, "espocrm", func(c *config.Config) { c.Upstream.URL = "http://" + addr })
		assertProblem(t, e.do("GET", "/api/v1/Account", "alice", ""), http.StatusBadGateway, "upstream-unavailable")
	})
	t.Run("hanging is 504", func(t *testing.T) {
		stop := make(chan struct{})
		hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-stop:
			case <-r.Context().Done():
			}
		}))
		defer hang.Close()
		defer close(stop)
		e := newEnv(t, "espocrm", func(c *config.Config) {
			c.Upstream.URL = hang.URL
			c.Upstream.ResponseHeaderTimeout = 200 * time.Millisecond
		})
		assertProblem(t, e.do("GET", "/api/v1/Account", "alice", ""), http.StatusGatewayTimeout, "upstream-timeout")
	})
}

func newEnvFS(t *testing.T, fsys fstest.MapFS) *env {
	t.Helper()
	e := newEnv(t, "suitecrm8")
	cfg := e.app.Config
	a, err := app.Build(context.Background(), cfg, app.Deps{PolicyFS: fsys, DecisionLogWriter: e.dlog, Version: "test"})
	if err != nil {
		t.Fatalf("build with test policy: %v", err)
	}
	old := e.app
	e.app = a
	e.proxy.Config.Handler = a.Handler
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = old.Close(ctx)
	e.dlog.mu.Lock()
	e.dlog.buf.Reset()
	e.dlog.mu.Unlock()
	return e
}

// sumMetric adds up every series of one metric family in the app's registry.
func sumMetric(t *testing.T, e *env, name string) float64 {
	t.Helper()
	mfs, err := e.app.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDecisionLogOff: with output none nothing is built or written, and
// requests are served as usual (the benchmark of logging on vs off relies
// on "off" really being off).
func TestDecisionLogOff(t *testing.T) {
	e := newEnv(t, "suitecrm8", func(c *config.Config) { c.DecisionLog.Output = "none" })
	if r := e.do("GET", "/Api/V8/module/Accounts", "alice", ""); r.Status != http.StatusOK {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	if lines := e.flushLog(); len(lines) != 0 {
		t.Fatalf("output none wrote %d decision-log lines", len(lines))
	}
	if sumMetric(t, e, "crmgate_decisions_total") != 1 {
		t.Error("the decision is still counted in metrics")
	}
}
