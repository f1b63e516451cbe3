package app_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/proxy/app"
	"github.com/crmgate/crmgate/proxy/demo"
	"github.com/crmgate/crmgate/proxy/emulator"
	"github.com/crmgate/crmgate/proxy/issuer"
	"github.com/crmgate/crmgate/proxy/login"
)

// goroutineMargin is how many goroutines above the baseline a fault test
// tolerates once load has stopped: a few idle keep-alive connections and
// runtime helpers, far below one leaked goroutine per request.
const goroutineMargin = 10

// noGoroutineLeak polls until the goroutine count is back within
// goroutineMargin of baseline, after closing idle client connections.
func noGoroutineLeak(t *testing.T, baseline int, clients ...*http.Client) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, c := range clients {
			c.CloseIdleConnections()
		}
		n := runtime.NumGoroutine()
		if n <= baseline+goroutineMargin {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines: %d, baseline %d (+%d allowed)\n%s", n, baseline, goroutineMargin, buf)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// settledGoroutines is the goroutine count once idle connections are closed
// and short-lived goroutines have ended.
func settledGoroutines(clients ...*http.Client) int {
	for _, c := range clients {
		c.CloseIdleConnections()
	}
	n := runtime.NumGoroutine()
	for range 20 {
		time.Sleep(20 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			break
		}
		n = m
	}
	return n
}

// rawResponse is what a client received, including a body cut short.
type rawResponse struct {
	Status  int
	Header  http.Header
	Body    []byte
	ReadErr error
}

// fetchRaw sends a request through crmgate and keeps whatever arrived, even
// when the body broke off.
func fetchRaw(e *env, path, persona string) (rawResponse, error) {
	req, err := http.NewRequest(http.MethodGet, e.proxy.URL+path, nil)
	if err != nil {
		return rawResponse{}, err
	}
	req.Header.Set("Authorization", "Bearer "+e.tokens[persona])
	res, err := e.proxy.Client().Do(req)
	if err != nil {
		return rawResponse{}, err
	}
	defer res.Body.Close()
	b, rerr := io.ReadAll(res.Body)
	return rawResponse{Status: res.StatusCode, Header: res.Header, Body: b, ReadErr: rerr}, nil
}

// espoProducts is the EspoCRM emulator's full product list (with buy
// prices) and the buy prices it holds.
func espoProducts(t *testing.T) ([]byte, []*regexp.Regexp) {
	t.Helper()
	h := emulator.NewEspoCRM(emulator.DepartmentStore(), emulator.EspoOptions{APIKey: "espo-key"})
	req := httptest.NewRequest(http.MethodGet, "/api/v1/Product", nil)
	req.Header.Set("X-Api-Key", "espo-key")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("emulator product list: %d %s", w.Code, w.Body)
	}
	var list struct {
		List []map[string]any `json:"list"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	// A buy price is only evidence of a leak when no other field holds the
	// same number.
	others := map[string]bool{}
	for _, r := range list.List {
		for k, v := range r {
			if k != "costPrice" {
				others[fmt.Sprint(v)] = true
			}
		}
	}
	var costs []*regexp.Regexp
	for _, r := range list.List {
		c, ok := r["costPrice"]
		if !ok || others[fmt.Sprint(c)] {
			continue
		}
		costs = append(costs, regexp.MustCompile(`[:\[]\s*`+regexp.QuoteMeta(fmt.Sprint(c))+`(\.0*)?\s*[,}\]]`))
	}
	if len(costs) == 0 || !bytes.Contains(w.Body.Bytes(), []byte(`"costPrice"`)) {
		t.Fatalf("the emulator's product list has no buy prices to leak: %s", w.Body)
	}
	return w.Body.Bytes(), costs
}

// hijack takes over the connection of a fault upstream's handler.
func hijack(t *testing.T, w http.ResponseWriter) net.Conn {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return nil
	}
	return conn
}

// reset closes conn with an RST rather than a FIN, as a crashed or
// firewalled peer does.
func reset(conn net.Conn) {
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// TestUpstreamFaults sends 50 requests for a list whose buy prices alice
// may not see to a CRM that misbehaves in one way each: every client gets a
// problem or a visibly broken body, never the hidden field, every request
// logs one error decision, and no goroutine outlives the load.
func TestUpstreamFaults(t *testing.T) {
	full, costs := espoProducts(t)
	half := full[:len(full)/2]
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(full)
	_ = zw.Close()
	gzHalf := gz.Bytes()[:gz.Len()/2]

	type fault struct {
		name    string
		handler func(t *testing.T, stop <-chan struct{}) http.HandlerFunc
		// kinds are the problem kinds allowed when crmgate answers before
		// sending any header; aborted says a 200 with a broken body is also
		// acceptable (headers already sent for a streamed list).
		kinds   map[int]string
		aborted bool
		timeout bool
	}
	faults := []fault{
		{name: "reset before answering", kinds: map[int]string{http.StatusBadGateway: "upstream-unavailable"},
			handler: func(t *testing.T, _ <-chan struct{}) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					if c := hijack(t, w); c != nil {
						reset(c)
					}
				}
			}},
		{name: "reset mid-body of a list", aborted: true,
			kinds: map[int]string{http.StatusBadGateway: "upstream-response"},
			handler: func(t *testing.T, _ <-chan struct{}) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					c := hijack(t, w)
					if c == nil {
						return
					}
					defer reset(c)
					_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(full))
					_, _ = c.Write(half)
				}
			}},
		{name: "garbage with a json content type", kinds: map[int]string{http.StatusBadGateway: "upstream-response"},
			handler: func(t *testing.T, _ <-chan struct{}) http.HandlerFunc {
				garbage := make([]byte, 4096)
				_, _ = rand.Read(garbage)
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write(garbage)
				}
			}},
		{name: "truncated gzip body", aborted: true, kinds: map[int]string{http.StatusBadGateway: "upstream-response"},
			handler: func(t *testing.T, _ <-chan struct{}) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					w.Header().Set("Content-Encoding", "gzip")
					w.Header().Set("Content-Length", strconv.Itoa(len(gzHalf)))
					_, _ = w.Write(gzHalf)
				}
			}},
		{name: "hang after headers", timeout: true, kinds: map[int]string{http.StatusGatewayTimeout: "upstream-timeout"},
			handler: func(t *testing.T, stop <-chan struct{}) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusOK)
					_ = http.NewResponseController(w).Flush()
					select {
					case <-stop:
					case <-r.Context().Done():
					}
				}
			}},
		{name: "hang mid-body of a list", timeout: true, aborted: true,
			kinds: map[int]string{http.StatusGatewayTimeout: "upstream-timeout"},
			handler: func(t *testing.T, stop <-chan struct{}) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write(half)
					_ = http.NewResponseController(w).Flush()
					select {
					case <-stop:
					case <-r.Context().Done():
					}
				}
			}},
	}

	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			stop := make(chan struct{})
			up := httptest.NewServer(f.handler(t, stop))
			t.Cleanup(up.Close)
			t.Cleanup(func() { close(stop) })
			e := newEnv(t, "espocrm", func(c *config.Config) {
				c.Upstream.URL = up.URL
				// Idle upstream connections are reaped quickly, so what
				// remains after the load is a leak, not a pool.
				c.Upstream.IdleConnTimeout = 200 * time.Millisecond
				if f.timeout {
					c.Upstream.Timeout = 300 * time.Millisecond
				}
			})
			client := e.proxy.Client()

			check := func(r rawResponse) error {
				if bytes.Contains(r.Body, []byte("costPrice")) {
					return fmt.Errorf("status %d: the client received the hidden field: %.300s", r.Status, r.Body)
				}
				for _, re := range costs {
					if re.Match(r.Body) {
						return fmt.Errorf("status %d: the client received a hidden buy price (%s): %.300s", r.Status, re, r.Body)
					}
				}
				if r.Status == http.StatusOK {
					if !f.aborted {
						return fmt.Errorf("status 200 (body error %v): %.300s", r.ReadErr, r.Body)
					}
					if r.ReadErr == nil || json.Valid(r.Body) {
						return fmt.Errorf("a 200 that looks complete (body error %v): %.300s", r.ReadErr, r.Body)
					}
					return nil
				}
				kind, ok := f.kinds[r.Status]
				if !ok {
					return fmt.Errorf("status %d, want one of %v: %.300s", r.Status, f.kinds, r.Body)
				}
				mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
				var p struct {
					Type string `json:"type"`
				}
				if mt != "application/problem+json" || json.Unmarshal(r.Body, &p) != nil || !strings.HasSuffix(p.Type, ":"+kind) {
					return fmt.Errorf("status %d, want problem %q: %s %s", r.Status, kind, r.Header.Get("Content-Type"), r.Body)
				}
				return nil
			}

			// The first request warms up what is built lazily, so the
			// baseline holds everything that may rightly stay.
			first, err := fetchRaw(e, "/api/v1/Product", "alice")
			if err != nil {
				t.Fatal(err)
			}
			if err := check(first); err != nil {
				t.Fatal(err)
			}
			baseline := settledGoroutines(client)

			const workers, each = 5, 10
			var wg sync.WaitGroup
			errs := make(chan error, workers*each)
			var statuses sync.Map
			for range workers {
				wg.Go(func() {
					for range each {
						r, err := fetchRaw(e, "/api/v1/Product", "alice")
						if err == nil {
							err = check(r)
						}
						if err != nil {
							errs <- err
							continue
						}
						n, _ := statuses.LoadOrStore(r.Status, new(atomic.Int64))
						n.(*atomic.Int64).Add(1)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			statuses.Range(func(k, v any) bool {
				t.Logf("status %v: %d", k, v.(*atomic.Int64).Load())
				return true
			})
			noGoroutineLeak(t, baseline, client)

			lines := e.flushLog()
			if len(lines) != 1+workers*each {
				t.Fatalf("%d decision-log lines for %d requests", len(lines), 1+workers*each)
			}
			for _, l := range lines {
				if l["outcome"] != "error" {
					t.Fatalf("decision-log line with outcome %v: %v", l["outcome"], l)
				}
			}
		})
	}
}

// loginFault is crmgate with browser sign-in through the in-process
// issuer's persona page, whose IdP can be stopped.
type loginFault struct {
	*loginCorpus
	idp *httptest.Server
	app *app.App
}

func newLoginFault(t *testing.T, mut func(*config.Config)) *loginFault {
	t.Helper()
	idp := httptest.NewUnstartedServer(nil)
	idp.Start()
	t.Cleanup(idp.Close)
	px := httptest.NewUnstartedServer(nil)
	px.Start()
	t.Cleanup(px.Close)

	var personas []issuer.Persona
	for _, p := range demo.Personas() {
		if p.Name == "alice" {
			personas = append(personas, issuer.Persona{Name: p.Name, Description: p.Who, Claims: p.Claims, MFA: true})
		}
	}
	client := issuer.Client{ID: "crmgate-faults", Secret: randomString(t),
		RedirectURIs: []string{px.URL + login.CallbackPath}, PostLogoutRedirectURIs: []string{px.URL + login.SignedOutPath}}
	iss, err := issuer.New(idp.URL, issuer.WithPersonas(personas...), issuer.WithClient(client))
	if err != nil {
		t.Fatal(err)
	}
	idp.Config.Handler = iss.Handler()

	rec := &recorder{next: emulator.NewSuiteCRM(emulator.DepartmentStore(), emulator.SuiteOptions{ClientID: "crmgate", ClientSecret: "s3cret"})}
	up := httptest.NewServer(rec)
	t.Cleanup(up.Close)

	cfg := demo.Config("127.0.0.1:1", "127.0.0.1:2", up.URL, idp.URL, "admin-token", "s3cret")
	cfg.PublicURL = px.URL
	cfg.Identity.OIDC = config.OIDC{Issuer: idp.URL, ClientID: client.ID, ClientSecret: client.Secret}
	cfg.Identity.MFA.ACR = []string{issuer.ACRMFA}
	key := make([]byte, config.EncryptionKeySize)
	_, _ = rand.Read(key)
	cfg.Session.EncryptionKey = base64.StdEncoding.EncodeToString(key)
	if mut != nil {
		mut(cfg)
	}
	config.ApplyDefaults(cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	a, err := app.Build(context.Background(), cfg, app.Deps{PolicyFS: demoPolicy(t), DecisionLogWriter: &syncBuffer{}, Version: "test"})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	px.Config.Handler = a.Handler
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.Close(ctx)
	})
	return &loginFault{loginCorpus: &loginCorpus{t: t, proxyURL: px.URL, upstream: rec}, idp: idp, app: a}
}

// signedIn is a browser signed in as alice.
func (lf *loginFault) signedIn() *http.Client {
	lf.t.Helper()
	c := browser(lf.t)
	if to := lf.signIn(c, accounts); to != accounts {
		lf.t.Fatalf("sign-in sent the browser to %q", to)
	}
	if s := lf.apiStatus(c); s != http.StatusOK {
		lf.t.Fatalf("signed-in API call: %d", s)
	}
	return c
}

// TestIdPUnreachable: once signed in, a user keeps working while the IdP is
// down (nothing asks it until a refresh); a new sign-in is told the IdP is
// unavailable instead of being sent to a dead address.
func TestIdPUnreachable(t *testing.T) {
	lf := newLoginFault(t, nil)
	c := lf.signedIn()
	lf.idp.Close()

	for i := range 20 {
		if s := lf.apiStatus(c); s != http.StatusOK {
			t.Fatalf("request %d of a live session with the IdP down: %d", i, s)
		}
	}
	start := lf.proxyURL + login.LoginPath + "?rd=" + url.QueryEscape(accounts)
	var res *http.Response
	var body string
	waitFor(t, "the login page to notice the IdP is down", func() bool {
		res, body = fetch(t, browser(t), http.MethodGet, start, nil, "Accept", "text/html")
		return res.StatusCode != http.StatusFound
	})
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `id="idp-unavailable"`) {
		t.Fatalf("browser login with the IdP down: %d %s: %.500s", res.StatusCode, res.Header.Get("Location"), body)
	}
	res, body = fetch(t, browser(t), http.MethodGet, start, nil, "Accept", "application/json")
	var p struct {
		Type string `json:"type"`
	}
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Content-Type") != "application/problem+json" ||
		json.Unmarshal([]byte(body), &p) != nil || !strings.HasSuffix(p.Type, ":idp-unavailable") {
		t.Fatalf("API login with the IdP down: %d %s: %s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	if s := lf.apiStatus(c); s != http.StatusOK {
		t.Fatalf("the live session after failed logins: %d", s)
	}
}

// TestDecisionLogSinkDown: a decision-log collector that is gone or
// failing never slows or fails requests; the lost events are counted.
func TestDecisionLogSinkDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/logs"
	ln.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(failing.Close)

	for _, tc := range []struct{ name, url string }{
		{"closed port", closed},
		{"collector answers 503", failing.URL + "/logs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A small queue: events that overflow it are dropped, the rest
			// fail in the sink; either way each one is counted.
			e := newEnv(t, "suitecrm8", func(c *config.Config) {
				c.DecisionLog.Output = "http"
				c.DecisionLog.URL = tc.url
				c.DecisionLog.BufferSize = 64
			})
			const n, workers = 200, 8
			var wg sync.WaitGroup
			var slowest atomic.Int64
			errs := make(chan error, n)
			jobs := make(chan int, n)
			for i := range n {
				jobs <- i
			}
			close(jobs)
			for range workers {
				wg.Go(func() {
					for range jobs {
						t0 := time.Now()
						s, err := e.status(http.MethodGet, "/Api/V8/module/Accounts", "alice")
						d := time.Since(t0)
						if d.Nanoseconds() > slowest.Load() {
							slowest.Store(d.Nanoseconds())
						}
						if err == nil && s != http.StatusOK {
							err = fmt.Errorf("status %d", s)
						}
						if err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			// The sink retries for seconds; a request must never wait on it.
			if d := time.Duration(slowest.Load()); d > time.Second {
				t.Errorf("slowest request took %v with the collector down", d)
			}
			lost := func() float64 {
				return metricValue(t, e, "crmgate_decision_log_events_total", map[string]string{"result": "failed"}) +
					metricValue(t, e, "crmgate_decision_log_events_total", map[string]string{"result": "dropped"})
			}
			waitUntil(t, "every event counted as failed or dropped", func() bool { return lost() >= n })
			t.Logf("failed %v dropped %v written %v",
				metricValue(t, e, "crmgate_decision_log_events_total", map[string]string{"result": "failed"}),
				metricValue(t, e, "crmgate_decision_log_events_total", map[string]string{"result": "dropped"}),
				metricValue(t, e, "crmgate_decision_log_events_total", map[string]string{"result": "written"}))
			if got := lost(); got != n {
				t.Errorf("failed+dropped = %v, want %d", got, n)
			}
			if w := metricValue(t, e, "crmgate_decision_log_events_total", map[string]string{"result": "written"}); w != 0 {
				t.Errorf("written = %v with the collector down", w)
			}
		})
	}
}

// TestRedisKilledUnderLoad kills the session store while signed-in clients
// keep asking: every answer during the outage is a 503 problem, none a
// 200 with data; after Redis returns a new sign-in works, and no goroutine
// is left behind.
func TestRedisKilledUnderLoad(t *testing.T) {
	port := freePort(t)
	rds := startPrivateRedis(t, port)
	lf := newLoginFault(t, func(c *config.Config) {
		c.Session.Store = config.StoreRedis
		c.Session.Redis = config.Redis{Addrs: []string{fmt.Sprintf("127.0.0.1:%d", port)}, KeyPrefix: "crmgate-faults:"}
		// Idle connections to the CRM are reaped quickly, so what remains
		// after the load is a leak, not a pool.
		c.Upstream.IdleConnTimeout = 200 * time.Millisecond
	})
	c := lf.signedIn()
	baseline := settledGoroutines(c)

	type result struct {
		start, end time.Time
		status     int
		ctype      string
		body       string
		err        error
	}
	var (
		mu        sync.Mutex
		results   []result
		stopLoad  = make(chan struct{})
		wg        sync.WaitGroup
		killedAt  atomic.Int64
		restartAt atomic.Int64
	)
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stopLoad:
					return
				default:
				}
				r := result{start: time.Now()}
				req, _ := http.NewRequest(http.MethodGet, lf.proxyURL+accounts, nil)
				req.Header.Set("Accept", "application/json")
				res, err := c.Do(req)
				if err != nil {
					r.err = err
				} else {
					b, rerr := io.ReadAll(res.Body)
					res.Body.Close()
					r.status, r.ctype, r.body, r.err = res.StatusCode, res.Header.Get("Content-Type"), string(b), rerr
				}
				r.end = time.Now()
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}
		})
	}
	// The replica's session cache stops serving when its tracking
	// connection drops, at the latest after one second of silence
	// (proxy/session/rediscache.go); requests in that grace may still be
	// answered from it, which is safe since no revocation can succeed
	// without Redis. Every request after it must be refused.
	const cacheGrace = 1100 * time.Millisecond
	inOutage := func(r result) bool {
		k, s := killedAt.Load(), restartAt.Load()
		return k != 0 && r.start.UnixNano() > k+int64(cacheGrace) && (s == 0 || r.end.UnixNano() < s)
	}
	count := func(pred func(result) bool) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, r := range results {
			if pred(r) {
				n++
			}
		}
		return n
	}
	waitFor(t, "load before the outage", func() bool {
		return count(func(r result) bool { return r.status == http.StatusOK }) >= 50
	})
	rds.kill(t)
	killedAt.Store(time.Now().UnixNano())
	waitFor(t, "load during the outage", func() bool { return count(inOutage) >= 100 })
	restartAt.Store(time.Now().UnixNano())
	startPrivateRedis(t, port)
	// The old session died with Redis (no persistence): the load now gets
	// 401s, which shows the store answers again.
	waitFor(t, "load after the restart", func() bool {
		return count(func(r result) bool {
			return r.start.UnixNano() > restartAt.Load() && r.status == http.StatusUnauthorized
		}) >= 10
	})
	close(stopLoad)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	var outage int
	for _, r := range results {
		if r.err != nil {
			t.Fatalf("request failed at transport level: %v", r.err)
		}
		switch r.status {
		case http.StatusOK, http.StatusServiceUnavailable, http.StatusUnauthorized:
		default:
			t.Fatalf("status %d during the Redis fault test: %.300s", r.status, r.body)
		}
		if r.status == http.StatusUnauthorized && r.start.UnixNano() < killedAt.Load() {
			t.Fatalf("401 before Redis was killed: %.300s", r.body)
		}
		if !inOutage(r) {
			continue
		}
		outage++
		if r.status != http.StatusServiceUnavailable || r.ctype != "application/problem+json" ||
			!strings.Contains(r.body, "session-store-unavailable") {
			t.Fatalf("during the outage: %d %s: %.300s", r.status, r.ctype, r.body)
		}
	}
	t.Logf("%d requests in all, %d during the outage", len(results), outage)

	if s := lf.apiStatus(lf.signedIn()); s != http.StatusOK {
		t.Fatalf("after a new sign-in: %d", s)
	}
	noGoroutineLeak(t, baseline, c)
}
