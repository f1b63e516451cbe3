package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/proxy/app"
	"github.com/crmgate/crmgate/proxy/demo"
	"github.com/crmgate/crmgate/proxy/emulator"
	"github.com/crmgate/crmgate/proxy/issuer"
)

// seen is one request as the CRM emulator received it.
type seen struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
}

// recorder wraps a CRM emulator and keeps what reached it, so tests can
// assert on what crmgate let through.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	reqs []seen
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, seen{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
	rc.mu.Unlock()
	rc.next.ServeHTTP(w, r)
}

// crmRequests returns the CRM requests other than OAuth token fetches.
func (rc *recorder) crmRequests() []seen {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []seen
	for _, s := range rc.reqs {
		if s.Path == "/Api/access_token" || strings.HasSuffix(s.Path, "/oauth2/v2.0/token") || s.Path == "/services/oauth2/token" {
			continue
		}
		out = append(out, s)
	}
	return out
}

func (rc *recorder) reset() {
	rc.mu.Lock()
	rc.reqs = nil
	rc.mu.Unlock()
}

// syncBuffer collects decision-log lines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Sync() error { return nil }

func (b *syncBuffer) lines() []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err == nil {
			out = append(out, m)
		}
	}
	return out
}

var _ zapcore.WriteSyncer = (*syncBuffer)(nil)

// env is crmgate assembled exactly as `serve` does it, in front of a CRM
// emulator, with a real (in-process) OpenID issuer.
type env struct {
	t        testing.TB
	crm      string
	app      *app.App
	proxy    *httptest.Server
	iss      *issuer.Issuer
	upstream *recorder
	dlog     *syncBuffer
	ds       *emulator.Dataset
	tokens   map[string]string
}

type envOption func(*config.Config)

// demoPolicy is the reference policy in the demo's context: the harness's
// clients connect over loopback, which is the office there, and working
// hours are all day, every day (demo.OfficeNetworks, demo.WorkingHours), so
// the context rules let every persona act whenever the tests run. Tests of
// the context rules themselves use contextPolicy with the reference hours
// and a fixed clock.
func demoPolicy(t testing.TB) fs.FS {
	t.Helper()
	p, err := demo.PolicyFS()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// unbudgetedPolicy is demoPolicy without its read budgets, for tests
// that read far more than one person's hourly budget on purpose (paging
// differentials, load during reloads); the budgets have their own tests.
func unbudgetedPolicy(t testing.TB) fs.FS {
	t.Helper()
	m := fstest.MapFS{}
	p := demoPolicy(t)
	err := fs.WalkDir(p, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || name == "budget.rego" {
			return err
		}
		b, err := fs.ReadFile(p, name)
		m[name] = &fstest.MapFile{Data: b, Mode: 0o444}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stat(p, "budget.rego"); err != nil {
		t.Fatal("the reference policy has no budget.rego any more: update unbudgetedPolicy")
	}
	return m
}

func newEnv(t testing.TB, crm string, opts ...envOption) *env {
	t.Helper()
	return newEnvWithPolicy(t, crm, demoPolicy(t), opts...)
}

// newEnvWithPolicy is newEnv with another policy source: policyFS replaces
// policy.paths, and nil leaves the configured source (files or a bundle
// server) in charge.
func newEnvWithPolicy(t testing.TB, crm string, policyFS fs.FS, opts ...envOption) *env {
	t.Helper()
	return newEnvAt(t, crm, policyFS, nil, opts...)
}

// newEnvAt is newEnvWithPolicy with the proxy's clock (input.request.time)
// fixed by now; nil is the real clock.
func newEnvAt(t testing.TB, crm string, policyFS fs.FS, now func() time.Time, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, crm: crm, dlog: &syncBuffer{}, tokens: map[string]string{}, ds: emulator.DepartmentStore()}

	idp := httptest.NewUnstartedServer(nil)
	idp.Start()
	t.Cleanup(idp.Close)
	iss, err := issuer.New(idp.URL)
	if err != nil {
		t.Fatal(err)
	}
	idp.Config.Handler = iss.Handler()
	e.iss = iss

	var crmHandler http.Handler
	switch crm {
	case "suitecrm8":
		crmHandler = emulator.NewSuiteCRM(e.ds, emulator.SuiteOptions{ClientID: "crmgate", ClientSecret: "s3cret"})
	case "espocrm":
		crmHandler = emulator.NewEspoCRM(e.ds, emulator.EspoOptions{APIKey: "espo-key"})
	case "dynamics":
		crmHandler = emulator.NewDynamics(e.ds, emulator.DynamicsOptions{Tenant: "contoso-tenant", ClientID: "crmgate", ClientSecret: "s3cret"})
	case "hubspot":
		crmHandler = emulator.NewHubSpot(e.ds, emulator.HubSpotOptions{Token: hubspotToken})
	case "salesforce":
		crmHandler = emulator.NewSalesforce(e.ds, emulator.SalesforceOptions{ClientID: "crmgate", ClientSecret: "s3cret"})
	default:
		t.Fatalf("unknown crm %q", crm)
	}
	e.upstream = &recorder{next: crmHandler}
	up := httptest.NewServer(e.upstream)
	t.Cleanup(up.Close)

	cfg := demo.Config("127.0.0.1:1", "127.0.0.1:2", up.URL, idp.URL, "admin-token", "s3cret")
	cfg.CRM.Profile = crm
	if crm == "espocrm" {
		cfg.Upstream.Auth = config.UpstreamAuth{Type: "header", Header: "X-Api-Key", Value: "espo-key"}
	}
	if crm == "dynamics" {
		cfg.Upstream.Auth = demo.DynamicsAuth(up.URL, "s3cret")
	}
	if crm == "hubspot" {
		cfg.Upstream.Auth = config.UpstreamAuth{Type: "header", Header: "Authorization", Value: "Bearer " + hubspotToken}
	}
	if crm == "salesforce" {
		cfg.Upstream.Auth = demo.SalesforceAuth(up.URL, "s3cret")
	}
	for _, o := range opts {
		o(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	a, err := app.Build(context.Background(), cfg, app.Deps{PolicyFS: policyFS, DecisionLogWriter: e.dlog, Version: "test", Now: now})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	e.app = a
	e.proxy = httptest.NewServer(a.Handler)
	t.Cleanup(func() {
		e.proxy.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.Close(ctx)
	})
	for _, p := range demo.Personas() {
		claims := map[string]any{"aud": demo.Audience}
		for k, v := range p.Claims {
			claims[k] = v
		}
		tok, err := iss.Mint(claims, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[p.Name] = tok
	}
	return e
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// do sends a request through crmgate. persona "" sends no credentials.
func (e *env) do(method, path, persona, body string, hdr ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.proxy.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if persona != "" {
		tok, ok := e.tokens[persona]
		if !ok {
			e.t.Fatalf("unknown persona %q", persona)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	res, err := e.proxy.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("read body: %v", err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// flushLog waits for every in-flight request (a handler records its
// decision after the client may already have its answer), then closes the
// app so every queued decision-log line is written.
func (e *env) flushLog() []map[string]any {
	e.t.Helper()
	e.proxy.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.app.Close(ctx); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	return e.dlog.lines()
}

// newEnvGzip is a SuiteCRM env whose emulator compresses its answers.
func newEnvGzip(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, "suitecrm8")
	e.upstream.next = emulator.NewSuiteCRM(e.ds, emulator.SuiteOptions{ClientID: "crmgate", ClientSecret: "s3cret", Gzip: true})
	return e
}

// newStatic serves one fixed body for every request: a CRM that answers
// something crmgate must not pass on unread.
func newStatic(t *testing.T, contentType, body string) string {
	return newStaticEncoded(t, contentType, "", body)
}

func newStaticEncoded(t *testing.T, contentType, encoding, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		if encoding != "" {
			w.Header().Set("Content-Encoding", encoding)
		}
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
