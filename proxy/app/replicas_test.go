package app_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/proxy/demo"
	"github.com/crmgate/crmgate/proxy/emulator"
	"github.com/crmgate/crmgate/proxy/issuer"
	"github.com/crmgate/crmgate/proxy/login"
)

// process is a child process of the test whose output is kept and logged
// if the test fails.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// startProcess runs bin with args, stopping it (SIGTERM, then SIGKILL)
// when the test ends.
func startProcess(t *testing.T, name, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(bin, args...), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.output())
		}
	})
	return p
}

func (p *process) output() string {
	p.out.mu.Lock()
	defer p.out.mu.Unlock()
	return p.out.buf.String()
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// kill ends the process at once, as a crash or an OOM kill would.
func (p *process) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not die", p.name)
	}
}

// startPrivateRedis runs a redis-server of the test's own on port, with no
// persistence, so that killing it loses every session and leaves the shared
// Redis of the other tests alone.
func startPrivateRedis(t *testing.T, port int) *process {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is required (apt-get install redis-server): %v", err)
	}
	p := startProcess(t, "redis-server", bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	rc := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer rc.Close()
	waitFor(t, "redis-server on port "+strconv.Itoa(port), func() bool {
		return !p.exited() && rc.Ping(context.Background()).Err() == nil
	})
	return p
}

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// buildBinary builds the crmgate binary from the module root, as an
// operator's build does.
func buildBinary(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go toolchain not on PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "crmgate")
	cmd := exec.Command(gobin, "build", "-o", bin, ".")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// crmgateProcess is one `crmgate serve` replica.
type crmgateProcess struct {
	*process
	URL, Admin string
}

// replicaConfig is a configuration file as an operator writes it: one per
// replica, alike except for the addresses.
const replicaConfig = `listen: %[1]q
admin_listen: %[2]q
public_url: %[3]q
upstream:
  url: %[4]q
  auth:
    type: oauth2_client_credentials
    token_url: %[5]q
    client_id: crmgate
    client_secret: s3cret
crm:
  profile: suitecrm8
identity:
  oidc:
    issuer: %[6]q
    client_id: %[7]q
    client_secret: %[8]q
  claims:
    attributes:
      crm_user_id: crm_user_id
      account_id: account_id
      contact_id: contact_id
  mfa:
    amr: [otp, mfa]
    acr: [%[9]q]
session:
  store: redis
  redis:
    addrs: [%[10]q]
    key_prefix: "crmgate-replicas:"
  encryption_key: %[11]q
policy:
  paths: [%[12]q]
decision_log:
  output: none
admin:
  token: %[13]q
`

// replicaSet is three `crmgate serve` processes sharing a private Redis,
// in front of the SuiteCRM emulator, with the in-process issuer's persona
// page as their IdP.
type replicaSet struct {
	replicas   []*crmgateProcess
	redis      *process
	redisPort  int
	adminToken string
}

func newReplicaSet(t *testing.T) *replicaSet {
	t.Helper()
	bin := buildBinary(t)
	rs := &replicaSet{redisPort: freePort(t), adminToken: randomString(t)}
	rs.redis = startPrivateRedis(t, rs.redisPort)

	up := httptest.NewServer(emulator.NewSuiteCRM(emulator.DepartmentStore(), emulator.SuiteOptions{ClientID: "crmgate", ClientSecret: "s3cret"}))
	t.Cleanup(up.Close)

	type addrs struct{ main, admin string }
	var ports []addrs
	client := issuer.Client{ID: "crmgate-replicas", Secret: randomString(t)}
	for range 3 {
		a := addrs{fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))}
		ports = append(ports, a)
		client.RedirectURIs = append(client.RedirectURIs, "http://"+a.main+login.CallbackPath)
		client.PostLogoutRedirectURIs = append(client.PostLogoutRedirectURIs, "http://"+a.main+login.SignedOutPath)
	}
	var personas []issuer.Persona
	for _, p := range demo.Personas() {
		personas = append(personas, issuer.Persona{Name: p.Name, Description: p.Who, Claims: p.Claims, MFA: true})
	}
	idp := httptest.NewUnstartedServer(nil)
	idp.Start()
	t.Cleanup(idp.Close)
	iss, err := issuer.New(idp.URL, issuer.WithPersonas(personas...), issuer.WithClient(client))
	if err != nil {
		t.Fatal(err)
	}
	idp.Config.Handler = iss.Handler()

	key := make([]byte, config.EncryptionKeySize)
	_, _ = rand.Read(key)
	dir := t.TempDir()
	// The replicas' clients connect over loopback at any hour: the demo's
	// context (demo.PolicyFS) lets the admin and staff act.
	policyDir := copyReferencePolicy(t)
	for i, a := range ports {
		cfg := fmt.Sprintf(replicaConfig, a.main, a.admin, "http://"+a.main, up.URL, up.URL+"/Api/access_token",
			idp.URL, client.ID, client.Secret, issuer.ACRMFA, fmt.Sprintf("127.0.0.1:%d", rs.redisPort),
			base64.StdEncoding.EncodeToString(key), policyDir, rs.adminToken)
		path := filepath.Join(dir, fmt.Sprintf("replica%d.yaml", i+1))
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("crmgate replica %d", i+1)
		r := &crmgateProcess{process: startProcess(t, name, bin, "serve", "--config", path),
			URL: "http://" + a.main, Admin: "http://" + a.admin}
		rs.replicas = append(rs.replicas, r)
	}
	for _, r := range rs.replicas {
		waitFor(t, r.name+" ready", func() bool {
			if r.exited() {
				t.Fatalf("%s exited:\n%s", r.name, r.output())
			}
			return rs.readyz(r) == http.StatusOK
		})
	}
	return rs
}

func randomString(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (rs *replicaSet) readyz(r *crmgateProcess) int {
	res, err := http.Get(r.Admin + "/readyz")
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// signIn signs persona in through replica i with a cookie-keeping client
// and checks that the sign-in lands on the account list.
func (rs *replicaSet) signIn(t *testing.T, i int, persona string) *userAgent {
	t.Helper()
	ua := newUserAgent(t)
	lc := &loginCorpus{t: t, proxyURL: rs.replicas[i].URL}
	p := ua.navigate(http.MethodGet, lc.toCallback(ua.c, accounts, persona), nil)
	wantCRMPage(t, p, rs.replicas[i].URL, accounts)
	return ua
}

// metric scrapes replica r's admin /metrics for the sample named series
// (name plus labels, as exposed); a missing series fails the test.
func (rs *replicaSet) metric(t *testing.T, r *crmgateProcess, series string) float64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.Admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+rs.adminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("%s /metrics: %d %v", r.name, res.StatusCode, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", r.name, line, err)
			}
			return f
		}
	}
	t.Fatalf("%s /metrics has no %s", r.name, series)
	return 0
}

// get requests the account list from replica i with ua's cookies and the
// given Accept header.
func (rs *replicaSet) get(t *testing.T, ua *userAgent, i int, accept string) (*http.Response, string) {
	t.Helper()
	return fetch(t, ua.c, http.MethodGet, rs.replicas[i].URL+accounts, nil, "Accept", accept)
}

func (rs *replicaSet) wantStatus(t *testing.T, ua *userAgent, i, want int) {
	t.Helper()
	if res, body := rs.get(t, ua, i, "application/json"); res.StatusCode != want {
		t.Fatalf("%s: status %d, want %d: %.300s", rs.replicas[i].name, res.StatusCode, want, body)
	}
}

// TestReplicasShareSessions runs three `crmgate serve` processes on one
// Redis: a session made on one is honoured by the others, a revocation on
// one is refused by the others at once, and losing Redis fails every
// replica closed until it returns.
func TestReplicasShareSessions(t *testing.T) {
	rs := newReplicaSet(t)

	t.Run("a session made on replica 1 works on replicas 2 and 3", func(t *testing.T) {
		ua := rs.signIn(t, 0, "alice")
		for i := range rs.replicas {
			rs.wantStatus(t, ua, i, http.StatusOK)
		}
		// Repeated requests are answered from each replica's session
		// cache, and ops can see that it serves.
		for i, r := range rs.replicas {
			before := rs.metric(t, r, `crmgate_session_cache_lookups_total{result="hit"}`)
			for range 3 {
				rs.wantStatus(t, ua, i, http.StatusOK)
			}
			if hits := rs.metric(t, r, `crmgate_session_cache_lookups_total{result="hit"}`); hits < before+2 {
				t.Errorf("%s: session cache hits %v -> %v after 3 requests", r.name, before, hits)
			}
			if v := rs.metric(t, r, "crmgate_session_cache_serving"); v != 1 {
				t.Errorf("%s: crmgate_session_cache_serving = %v", r.name, v)
			}
		}
	})

	t.Run("a revocation on replica 2 is refused by replicas 1 and 3", func(t *testing.T) {
		ua := rs.signIn(t, 0, "pat")
		bystander := rs.signIn(t, 2, "alice")
		req, _ := http.NewRequest(http.MethodDelete, rs.replicas[1].Admin+"/admin/sessions?user=pat", nil)
		req.Header.Set("Authorization", "Bearer "+rs.adminToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("admin revoke on replica 2: %d", res.StatusCode)
		}
		for _, i := range []int{0, 2, 1} {
			rs.wantStatus(t, ua, i, http.StatusUnauthorized)
		}
		// Only pat's sessions ended.
		rs.wantStatus(t, bystander, 0, http.StatusOK)
	})

	t.Run("revocation needs the admin token", func(t *testing.T) {
		ua := rs.signIn(t, 1, "sam")
		for _, auth := range []string{"", "Bearer wrong-" + rs.adminToken} {
			req, _ := http.NewRequest(http.MethodDelete, rs.replicas[1].Admin+"/admin/sessions?user=sam", nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusUnauthorized && res.StatusCode != http.StatusForbidden {
				t.Fatalf("revoke with %q: %d", auth, res.StatusCode)
			}
		}
		rs.wantStatus(t, ua, 0, http.StatusOK)
	})

	t.Run("losing Redis fails closed on every replica, and they recover", func(t *testing.T) {
		ua := rs.signIn(t, 2, "alice")
		for i := range rs.replicas {
			rs.wantStatus(t, ua, i, http.StatusOK)
		}
		rs.redis.kill(t)

		for i, r := range rs.replicas {
			// A replica's session cache stops serving when its tracking
			// connection drops (at once on a killed Redis) and at the latest
			// after one second of silence; until then it may answer a
			// session it verified moments ago, which is safe: no revocation
			// can succeed without Redis (see proxy/session/rediscache.go).
			var res *http.Response
			var body string
			deadline := time.Now().Add(2 * time.Second)
			for {
				t0 := time.Now()
				res, body = rs.get(t, ua, i, "application/json")
				// Failing closed includes answering: a replica that hangs on a
				// dead Redis holds every client's connection open.
				if took := time.Since(t0); took > 5*time.Second {
					t.Fatalf("%s took %v to refuse without Redis", r.name, took)
				}
				if res.StatusCode != http.StatusOK || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if res.StatusCode != http.StatusServiceUnavailable || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") ||
				// The session may still be served from the replica's cache; the
				// read budget, counted in the same Redis, then fails closed.
				!strings.Contains(body, "session-store-unavailable") && !strings.Contains(body, "read-budget-unavailable") ||
				strings.Contains(body, `"data"`) {
				t.Fatalf("%s API request without Redis: %d %s: %.300s", r.name, res.StatusCode, res.Header.Get("Content-Type"), body)
			}
			res, body = rs.get(t, ua, i, "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
			if res.StatusCode != http.StatusServiceUnavailable || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
				!strings.Contains(body, `id="problem-title"`) || strings.Contains(body, `"data"`) {
				t.Fatalf("%s page without Redis: %d %s: %.300s", r.name, res.StatusCode, res.Header.Get("Content-Type"), body)
			}
			if st := rs.readyz(r); st != http.StatusServiceUnavailable {
				t.Fatalf("%s readyz without Redis: %d", r.name, st)
			}
			if v := rs.metric(t, r, "crmgate_session_cache_serving"); v != 0 {
				t.Fatalf("%s: crmgate_session_cache_serving = %v without Redis", r.name, v)
			}
		}
		for _, r := range rs.replicas {
			if r.exited() {
				t.Fatalf("%s died without Redis:\n%s", r.name, r.output())
			}
			if out := r.output(); strings.Contains(out, "panic") {
				t.Fatalf("%s panicked:\n%s", r.name, out)
			}
		}

		rs.redis = startPrivateRedis(t, rs.redisPort)
		for _, r := range rs.replicas {
			waitFor(t, r.name+" ready again", func() bool { return rs.readyz(r) == http.StatusOK })
		}
		// The Redis had no persistence: the old session is gone, not
		// resurrected from a replica's memory.
		for i := range rs.replicas {
			rs.wantStatus(t, ua, i, http.StatusUnauthorized)
		}
		again := rs.signIn(t, 1, "alice")
		for i := range rs.replicas {
			rs.wantStatus(t, again, i, http.StatusOK)
		}
	})
}
