// Command targets starts, on loopback, everything the load harness
// (test/load/run.sh) and the soak (test/soak/run.sh) drive: the SuiteCRM
// emulator with department-store data and synthetic accounts, a bare Go
// reverse proxy with a tuned transport, and crmgate in several modes, each on
// its own port. It checks every target answers the request mix as expected,
// writes one wrk Lua script per target with that target's credentials baked
// in, prints the ports and credentials as JSON, and serves until interrupted.
//
// Loopback only: it is a measuring instrument, not a demo.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/proxy"
	"github.com/crmgate/crmgate/proxy/app"
	"github.com/crmgate/crmgate/proxy/demo"
	"github.com/crmgate/crmgate/proxy/emulator"
	"github.com/crmgate/crmgate/proxy/issuer"
	"github.com/crmgate/crmgate/proxy/session"
	refpolicy "github.com/crmgate/crmgate/rego"
)

const (
	crmClientID     = "crmgate"
	crmClientSecret = "load-s3cret"
	adminToken      = "load-admin-token"
	// record2K is an account owned by alice whose JSON:API document is
	// about 2 KB.
	record2K = "load-2k"
)

// mixEntry is one request of the persona mix: who asks, what, what crmgate
// must answer, and a string of the CRM's answer crmgate must not pass on.
type mixEntry struct {
	Persona string `json:"persona"`
	Path    string `json:"path"`
	Status  int    `json:"status"`
	Leak    string `json:"leak,omitempty"`
	Weight  int    `json:"weight"`
}

// mix is 20 requests: record reads and 50-record lists by sales (masked
// contact details, other stores' records filtered out), sales reading
// products (buy price hidden) and contacts (phone and email masked), a
// customer reading their own account, and 10% denials.
var mix = []mixEntry{
	{"alice", "/Api/V8/module/Accounts/" + record2K, 200, "orders@harrowfinch.example", 7},
	{"alice", "/Api/V8/module/Accounts?page[size]=50", 200, `"assigned_user_id":"u-sales3"`, 6},
	{"alice", "/Api/V8/module/AOS_Products?page[size]=20", 200, `"cost":`, 2},
	{"alice", "/Api/V8/module/Contacts/c-1", 200, "pat.customer@example.net", 2},
	{"pat", "/Api/V8/module/Accounts/acc-1", 200, "", 1},
	{"pat", "/Api/V8/module/Employees?page[size]=20", 403, "", 1},
	{"ivan", "/Api/V8/module/Accounts?page[size]=50", 403, "", 1},
}

// mode is one crmgate variant.
type mode struct {
	name  string
	log   bool   // decision log serialised (zap JSON) into io.Discard
	store string // "" for bearer JWTs, else the session store
}

var modes = []mode{
	{name: "crmgate-bearer", log: true},
	{name: "crmgate-bearer-nolog"},
	{name: "crmgate-session-memory", log: true, store: config.StoreMemory},
	{name: "crmgate-session-redis", log: true, store: config.StoreRedis},
}

// Target is one proxy the harness drives, as printed.
type Target struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// Admin serves /metrics (bearer AdminToken); empty for the bare proxy.
	Admin string `json:"admin,omitempty"`
	// Script is the wrk Lua script with this target's credentials.
	Script string `json:"script"`
	// Credentials are the Authorization or Cookie header per persona.
	Credentials map[string]string `json:"credentials,omitempty"`
}

// Output is what targets prints once everything serves.
type Output struct {
	CRM        string     `json:"crm"`
	CRMToken   string     `json:"crm_token"`
	AdminToken string     `json:"admin_token"`
	Mix        []mixEntry `json:"mix"`
	Targets    []Target   `json:"targets"`
}

func main() {
	dir := flag.String("dir", "", "directory for the wrk scripts, targets.json and targets.tsv (required)")
	synthetic := flag.Int("synthetic", 500, "synthetic accounts added to the department store")
	replayOn := flag.Bool("replay", true, "serve each GET's first emulator answer from memory, so the emulator's JSON rendering does not dominate the measurement")
	redisAddr := flag.String("redis", "127.0.0.1:6379", "Redis for the session-redis mode")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this loopback address (e.g. 127.0.0.1:6060), to profile a target while wrk drives it")
	flag.Parse()
	if *dir == "" {
		log.Fatal("targets: -dir is required")
	}
	if *pprofAddr != "" {
		go servePprof(*pprofAddr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dir, *synthetic, *replayOn, *redisAddr); err != nil {
		log.Fatalf("targets: %v", err)
	}
}

// servePprof serves the profiler on its own mux, so no target's handler
// gains the debug routes.
func servePprof(addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("targets: pprof: %v", srv.ListenAndServe())
}

func run(ctx context.Context, dir string, synthetic int, replayOn bool, redisAddr string) error {
	ds := emulator.DepartmentStore()
	ds.AddSynthetic("Accounts", synthetic, 1)
	if err := seed2K(ds); err != nil {
		return err
	}
	var crm http.Handler = emulator.NewSuiteCRM(ds, emulator.SuiteOptions{ClientID: crmClientID, ClientSecret: crmClientSecret})
	if replayOn {
		crm = newReplay(crm)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	serveCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	listen := func(h http.Handler) (string, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
		wg.Add(2)
		go func() { defer wg.Done(); _ = srv.Serve(ln) }()
		go func() { defer wg.Done(); <-serveCtx.Done(); _ = srv.Shutdown(context.Background()) }()
		return "http://" + ln.Addr().String(), nil
	}
	crmURL, err := listen(crm)
	if err != nil {
		return err
	}
	crmToken, err := fetchCRMToken(crmURL)
	if err != nil {
		return err
	}
	idpURL, iss, err := startIssuer(listen)
	if err != nil {
		return err
	}

	out := Output{CRM: crmURL, CRMToken: crmToken, AdminToken: adminToken, Mix: mix}
	plain := filepath.Join(dir, "plain.lua")
	if err := writeScript(plain, nil); err != nil {
		return err
	}
	bareURL, err := listen(bareProxy(crmURL, crmToken))
	if err != nil {
		return err
	}
	out.Targets = append(out.Targets, Target{Name: "bare-go", URL: bareURL, Script: plain})
	// The same proxy with crmgate's copy-buffer pool: what pooling alone is
	// worth, next to the stock proxy the targets are measured against.
	pooled := bareProxy(crmURL, crmToken)
	pooled.BufferPool = proxy.CopyBuffers
	pooledURL, err := listen(pooled)
	if err != nil {
		return err
	}
	out.Targets = append(out.Targets, Target{Name: "bare-go-pooled", URL: pooledURL, Script: plain})

	for _, m := range modes {
		t, a, err := startCrmgate(serveCtx, &wg, m, crmURL, idpURL, iss, redisAddr)
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		defer func() { _ = a.Close(context.Background()) }()
		t.Script = filepath.Join(dir, m.name+".lua")
		if err := writeScript(t.Script, t.Credentials); err != nil {
			return err
		}
		out.Targets = append(out.Targets, t)
	}
	for _, t := range out.Targets {
		if err := check(t); err != nil {
			return err
		}
	}
	if err := writeOutput(dir, out); err != nil {
		return err
	}
	<-ctx.Done()
	cancel()
	return nil
}

// seed2K adds the 2 KB account through the emulator's own create call.
func seed2K(ds *emulator.Dataset) error {
	doc := map[string]any{"data": map[string]any{"type": "Accounts", "id": record2K, "attributes": map[string]any{
		"name": "Harrow & Finch Interiors Ltd", "account_type": "Customer", "industry": "Retail",
		"assigned_user_id": "u-sales1", "phone_office": "+44 20 7946 0999", "email1": "orders@harrowfinch.example",
		"billing_address_street": "12 Market Row", "billing_address_city": "London", "billing_address_postalcode": "SE1 9XX",
		"description": strings.Repeat("Long-standing trade customer; quarterly review of the furniture and lighting order book. ", 16),
	}}}
	body, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("seed %s: %w", record2K, err)
	}
	rec := httptest.NewRecorder()
	emulator.NewSuiteCRM(ds, emulator.SuiteOptions{}).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/Api/V8/module", bytes.NewReader(body)))
	if rec.Code != http.StatusCreated {
		return fmt.Errorf("seed %s: status %d", record2K, rec.Code)
	}
	return nil
}

func fetchCRMToken(crmURL string) (string, error) {
	res, err := http.PostForm(crmURL+"/Api/access_token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {crmClientID}, "client_secret": {crmClientSecret}})
	if err != nil {
		return "", fmt.Errorf("crm token: %w", err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("crm token: status %d: %v", res.StatusCode, err)
	}
	return tok.AccessToken, nil
}

// startIssuer serves the in-process OpenID issuer that signs the bearer
// tokens; its URL must exist before the issuer can be built.
func startIssuer(listen func(http.Handler) (string, error)) (string, *issuer.Issuer, error) {
	var h atomicHandler
	idpURL, err := listen(&h)
	if err != nil {
		return "", nil, err
	}
	iss, err := issuer.New(idpURL)
	if err != nil {
		return "", nil, fmt.Errorf("issuer: %w", err)
	}
	h.set(iss.Handler())
	return idpURL, iss, nil
}

// atomicHandler lets a server start before its handler exists.
type atomicHandler struct {
	mu sync.RWMutex
	h  http.Handler
}

func (a *atomicHandler) set(h http.Handler) { a.mu.Lock(); a.h = h; a.mu.Unlock() }

func (a *atomicHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.RLock()
	h := a.h
	a.mu.RUnlock()
	if h == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	h.ServeHTTP(w, r)
}

// bareProxy is the ceiling: httputil.ReverseProxy with a keep-alive pool of
// 256 idle connections per host, adding the CRM credential and nothing else.
func bareProxy(crmURL, token string) *httputil.ReverseProxy {
	target, _ := url.Parse(crmURL)
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Set("Authorization", "Bearer "+token)
		},
		Transport: &http.Transport{Proxy: nil, DialContext: d.DialContext, MaxIdleConns: 512, MaxIdleConnsPerHost: 256,
			IdleConnTimeout: 90 * time.Second, DisableCompression: true},
	}
}

// startCrmgate builds crmgate as `serve` does and serves its main and admin
// listeners with App.Serve.
func startCrmgate(ctx context.Context, wg *sync.WaitGroup, m mode, crmURL, idpURL string, iss *issuer.Issuer, redisAddr string) (Target, *app.App, error) {
	mainLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Target{}, nil, err
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Target{}, nil, err
	}
	cfg := demo.Config(mainLn.Addr().String(), adminLn.Addr().String(), crmURL, idpURL, adminToken, crmClientSecret)
	deps := app.Deps{PolicyFS: refpolicy.FS, Version: "load"}
	if m.log {
		deps.DecisionLogWriter = zapcore.AddSync(io.Discard)
	} else {
		cfg.DecisionLog.Output = config.LogNone
	}
	if m.store != "" {
		cfg.Identity.Bearer = config.Bearer{}
		// Nothing listens here: sessions made below need no refresh, and
		// no discovery traffic joins the measurement.
		cfg.Identity.OIDC = config.OIDC{Issuer: "http://127.0.0.1:1", ClientID: "crmgate", ClientSecret: "x"}
	}
	if m.store == config.StoreRedis {
		key, prefix := make([]byte, 32), make([]byte, 6)
		_, _ = rand.Read(key)
		_, _ = rand.Read(prefix)
		cfg.Session.Store = config.StoreRedis
		cfg.Session.Redis = config.Redis{Addrs: []string{redisAddr}, KeyPrefix: "crmgate-load:" + hex.EncodeToString(prefix) + ":"}
		cfg.Session.EncryptionKey = base64.StdEncoding.EncodeToString(key)
	}
	config.ApplyDefaults(cfg)
	if err := cfg.Validate(); err != nil {
		return Target{}, nil, fmt.Errorf("config: %w", err)
	}
	a, err := app.Build(ctx, cfg, deps)
	if err != nil {
		return Target{}, nil, err
	}
	creds := map[string]string{}
	for _, p := range demo.Personas() {
		if !inMix(p.Name) {
			continue
		}
		if m.store == "" {
			claims := map[string]any{"aud": demo.Audience}
			for k, v := range p.Claims {
				claims[k] = v
			}
			tok, err := iss.Mint(claims, 24*time.Hour)
			if err != nil {
				return Target{}, nil, err
			}
			creds[p.Name] = "Authorization: Bearer " + tok
			continue
		}
		cookie, err := newSession(ctx, a, cfg, p.Claims)
		if err != nil {
			return Target{}, nil, err
		}
		creds[p.Name] = "Cookie: crmgate_session=" + cookie
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = a.Serve(ctx, mainLn, adminLn) }()
	return Target{Name: m.name, URL: "http://" + mainLn.Addr().String(), Admin: "http://" + adminLn.Addr().String(),
		Credentials: creds}, a, nil
}

func inMix(persona string) bool {
	for _, e := range mix {
		if e.Persona == persona {
			return true
		}
	}
	return false
}

// newSession stores a signed-in browser session for a persona, its subject
// mapped from the persona's claims exactly as a login would map them.
func newSession(ctx context.Context, a *app.App, cfg *config.Config, claims map[string]any) (string, error) {
	subj, err := app.Mapper(cfg.Identity).Subject(claims, "session")
	if err != nil {
		return "", err
	}
	id, err := session.NewID()
	if err != nil {
		return "", err
	}
	now := time.Now()
	s := &session.Session{ID: id, Subject: subj, TokenExpiry: now.Add(24 * time.Hour), CreatedAt: now, LastSeen: now}
	if err := a.SessionStore().Create(ctx, s, 24*time.Hour); err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	return id, nil
}

// check sends the whole mix once: crmgate must answer each request with its
// expected status and without what the policy removes; the bare proxy must
// answer 200 and pass the CRM's answer unchanged. A harness that measured a
// misconfigured target would print meaningless numbers.
func check(t Target) error {
	client := &http.Client{Timeout: 10 * time.Second}
	for _, e := range mix {
		req, err := http.NewRequest(http.MethodGet, t.URL+e.Path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/vnd.api+json")
		if c, ok := t.Credentials[e.Persona]; ok {
			name, value, _ := strings.Cut(c, ": ")
			req.Header.Set(name, value)
		}
		res, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("check %s %s: %w", t.Name, e.Path, err)
		}
		body, err := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if err != nil {
			return fmt.Errorf("check %s %s: %w", t.Name, e.Path, err)
		}
		want, enforced := e.Status, t.Credentials != nil
		if !enforced {
			want = http.StatusOK
		}
		if res.StatusCode != want {
			return fmt.Errorf("check %s %s as %s: status %d, want %d: %.300s", t.Name, e.Path, e.Persona, res.StatusCode, want, body)
		}
		if e.Leak != "" && bytes.Contains(body, []byte(e.Leak)) == enforced {
			return fmt.Errorf("check %s %s as %s: %q in the answer = %v", t.Name, e.Path, e.Persona, e.Leak, enforced)
		}
	}
	return nil
}

// writeScript writes a wrk script that cycles through the weighted mix,
// each thread from its own offset, with creds' headers (none: the plain
// proxies add the CRM credential themselves). done prints one RESULT line:
// req/s, p50 ms, p99 ms, 200s, 403s, other statuses, socket errors.
func writeScript(path string, creds map[string]string) error {
	var b strings.Builder
	b.WriteString("-- generated by test/load/targets; do not edit\nlocal reqs = {\n")
	for _, e := range mix {
		hdr := `["Accept"]="application/vnd.api+json"`
		if c, ok := creds[e.Persona]; ok {
			name, value, _ := strings.Cut(c, ": ")
			hdr += fmt.Sprintf(", [%s]=%s", strconv.Quote(name), strconv.Quote(value))
		}
		for range e.Weight {
			fmt.Fprintf(&b, "  {path=%s, headers={%s}},\n", strconv.Quote(e.Path), hdr)
		}
	}
	b.WriteString(luaBody)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

const luaBody = `}
local built = {}
local threads = {}
local counter = 0
local i = 0

function setup(thread)
  counter = counter + 1
  thread:set("offset", counter * 7)
  table.insert(threads, thread)
end

function init(args)
  for k, r in ipairs(reqs) do built[k] = wrk.format("GET", r.path, r.headers) end
  i = offset or 0
  -- WRK_SEED tells apart wrk processes running at the same time, whose
  -- think times would otherwise be the same sequence, in step.
  math.randomseed(i + 1000 * (tonumber(os.getenv("WRK_SEED") or "0") or 0))
  ok, denied, other = 0, 0, 0
end

-- WRK_PACE_MS makes each connection wait on average that long between an
-- answer and its next request: every target then gets the same offered
-- load, below what any of them can serve, and latency shows each request's
-- own cost instead of the queue of a saturated machine. The wait is drawn
-- uniformly from 0 to twice the pace, or the connections would stay in step
-- and arrive in bursts of 32. Unset or 0, wrk runs flat out.
local pace = tonumber(os.getenv("WRK_PACE_MS") or "0") or 0
if pace > 0 then
  function delay() return math.random(0, 2 * pace) end
end

function request()
  i = i % #built + 1
  return built[i]
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1
  elseif status == 403 then denied = denied + 1
  else other = other + 1 end
end

function done(summary, latency, requests)
  local o, d, x = 0, 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok"); d = d + t:get("denied"); x = x + t:get("other")
  end
  local e = summary.errors
  io.write(string.format("RESULT %.1f %.3f %.3f %d %d %d %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    o, d, x, e.connect + e.read + e.write + e.timeout))
end
`

// writeOutput prints the JSON and leaves it, and a tab-separated list of the
// targets for the shell scripts, in dir; targets.tsv is written last, so its
// presence means everything is up.
func writeOutput(dir string, out Output) error {
	js, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(js))
	if err := os.WriteFile(filepath.Join(dir, "targets.json"), js, 0o600); err != nil {
		return err
	}
	env := fmt.Sprintf("CRM_URL=%s\nCRM_TOKEN=%s\nADMIN_TOKEN=%s\n", out.CRM, out.CRMToken, out.AdminToken)
	if err := os.WriteFile(filepath.Join(dir, "crm.env"), []byte(env), 0o600); err != nil {
		return err
	}
	var tsv strings.Builder
	for _, t := range out.Targets {
		fmt.Fprintf(&tsv, "%s\t%s\t%s\t%s\n", t.Name, t.URL, t.Script, cmp(t.Admin, "-"))
	}
	tmp := filepath.Join(dir, "targets.tsv.tmp")
	if err := os.WriteFile(tmp, []byte(tsv.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "targets.tsv"))
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// replay serves each GET's first successful answer again from memory; the
// emulator renders JSON:API documents from maps, which on a two-core machine
// would cost as much CPU as the proxies under test and flatten every ratio.
// Everything else goes to the emulator each time. A cached answer is served
// without checking the caller's CRM token again: only the proxies under test
// can reach this loopback port, and each was checked against the emulator's
// OAuth before the cache could matter (the token endpoint is never cached).
type replay struct {
	next  http.Handler
	mu    sync.RWMutex
	cache map[string]replayed
}

type replayed struct {
	contentType string
	body        []byte
}

func newReplay(next http.Handler) *replay { return &replay{next: next, cache: map[string]replayed{}} }

func (rp *replay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		rp.next.ServeHTTP(w, r)
		return
	}
	key := r.URL.RequestURI()
	rp.mu.RLock()
	c, ok := rp.cache[key]
	rp.mu.RUnlock()
	if !ok {
		rec := httptest.NewRecorder()
		rp.next.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return
		}
		c = replayed{contentType: rec.Header().Get("Content-Type"), body: rec.Body.Bytes()}
		rp.mu.Lock()
		rp.cache[key] = c
		rp.mu.Unlock()
	}
	w.Header().Set("Content-Type", c.contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(c.body)))
	_, _ = w.Write(c.body)
}
