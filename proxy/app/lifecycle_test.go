package app_test

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/proxy/app"
	"github.com/crmgate/crmgate/proxy/bundle/bundletest"
	"github.com/crmgate/crmgate/proxy/demo"
)

const (
	adminToken   = "admin-token"
	bundleToken  = "bundle-token"
	accountsList = "/Api/V8/module/Accounts"
	productsList = "/Api/V8/module/AOS_Products"
	// productGrant is the reference policy's line that lets sales list
	// products; the "changed" policy drops it.
	productGrant = `		"product": {"list", "read"}, # the catalogue, without buy prices` + "\n"
)

// newPolicyEnv is newEnv with the policy coming from the configuration
// (files or a bundle server) instead of the embedded reference policy,
// which can never change.
func newPolicyEnv(t *testing.T, mut func(*config.Config)) *env {
	t.Helper()
	return newEnvWithPolicy(t, "suitecrm8", nil, func(c *config.Config) {
		c.Policy.Paths = nil
		mut(c)
	})
}

// copyReferencePolicy writes the embedded reference policy, in the demo's
// context (demoPolicy), into a new directory and returns it.
func copyReferencePolicy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	policyFS := demoPolicy(t)
	err := fs.WalkDir(policyFS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(policyFS, p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, p), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// metricValue is the value of the series of name with all of labels.
func metricValue(t *testing.T, e *env, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := e.app.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || (lp.GetName() == k && lp.GetValue() == v)
				}
				if !found {
					continue series
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

func reloads(t *testing.T, e *env, result string) float64 {
	return metricValue(t, e, "crmgate_policy_reloads_total", map[string]string{"result": result})
}

func revisionSeries(t *testing.T, e *env, rev string) float64 {
	return metricValue(t, e, "crmgate_policy_revision_info", map[string]string{"revision": rev})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// status sends one request without failing the test from another goroutine.
func (e *env) status(method, path, persona string) (int, error) {
	req, err := http.NewRequest(method, e.proxy.URL+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+e.tokens[persona])
	res, err := e.proxy.Client().Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode, nil
}

// TestBrokenPolicyUnderLoad writes a broken policy, then a good changed one,
// into a watched policy directory while clients keep requesting: no request
// fails, the old revision keeps serving until the good one arrives, and the
// rejected reload is counted.
func TestBrokenPolicyUnderLoad(t *testing.T) {
	dir := copyReferencePolicy(t)
	// Thousands of alice's requests: her read budget is not under test.
	must(t, os.Remove(filepath.Join(dir, "budget.rego")))
	e := newPolicyEnv(t, func(c *config.Config) { c.Policy.Paths = []string{dir}; c.Policy.Watch = true })
	good := e.app.Policy.Revision()
	if revisionSeries(t, e, good) != 1 {
		t.Fatalf("crmgate_policy_revision_info{revision=%q} not set at start", good)
	}
	if got := e.do("GET", productsList, "alice", "").Status; got != http.StatusOK {
		t.Fatalf("sales listing products before the change: %d, want 200", got)
	}

	ctx, stop := context.WithCancel(context.Background())
	var sent, unexpected atomic.Int64
	var firstBad atomic.Value
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				code, err := e.status("GET", accountsList, "alice")
				sent.Add(1)
				if err != nil || code != http.StatusOK {
					unexpected.Add(1)
					firstBad.CompareAndSwap(nil, [2]any{code, err})
				}
			}
		}()
	}
	// Load stops however the test ends, so no goroutine outlives it.
	defer func() { stop(); wg.Wait() }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		waitUntil(t, what, cond)
	}
	waitFor("requests in flight", func() bool { return sent.Load() > 50 })

	policyFile := filepath.Join(dir, "crmgate.rego")
	original, err := os.ReadFile(policyFile)
	if err != nil {
		t.Fatal(err)
	}
	// Written in place, not renamed: the watcher may even read it half
	// written, which must be refused like any other broken policy.
	if err := os.WriteFile(policyFile, append(original, []byte("\nallow if {\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor("the broken policy's reload failure", func() bool { return reloads(t, e, "failure") >= 1 })
	mark := sent.Load()
	waitFor("requests after the failure", func() bool { return sent.Load() > mark+50 })
	if rev := e.app.Policy.Revision(); rev != good {
		t.Fatalf("revision %q after a broken write, want the last good %q", rev, good)
	}
	if revisionSeries(t, e, good) != 1 {
		t.Fatal("crmgate_policy_revision_info lost the serving revision after a failed reload")
	}

	changed := strings.Replace(string(original), productGrant, "", 1)
	if changed == string(original) {
		t.Fatal("the reference policy no longer has the product grant this test removes")
	}
	if err := os.WriteFile(policyFile, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor("the changed policy", func() bool { return e.app.Policy.Revision() != good })
	mark = sent.Load()
	waitFor("requests after the change", func() bool { return sent.Load() > mark+50 })
	stop()
	wg.Wait()

	if n := unexpected.Load(); n != 0 {
		t.Fatalf("%d of %d requests did not answer 200 during the reloads; first: %v", n, sent.Load(), firstBad.Load())
	}
	newRev := e.app.Policy.Revision()
	if got := e.do("GET", productsList, "alice", "").Status; got != http.StatusForbidden {
		t.Fatalf("sales listing products after the change: %d, want 403", got)
	}
	if reloads(t, e, "success") < 1 {
		t.Fatal("the good reload was not counted")
	}
	if revisionSeries(t, e, newRev) != 1 || revisionSeries(t, e, good) != 0 {
		t.Fatalf("crmgate_policy_revision_info: %v for the new %q, %v for the old, want 1 and 0",
			revisionSeries(t, e, newRev), newRev, revisionSeries(t, e, good))
	}
	// Every decision was made by one of the two good revisions, never
	// by the broken policy or none.
	seenRev := map[string]int{}
	for _, line := range e.flushLog() {
		seenRev[loggedRevision(line)]++
	}
	for rev := range seenRev {
		if rev != good && rev != newRev {
			t.Fatalf("a decision logged revision %q; want only %q or %q (all: %v)", rev, good, newRev, seenRev)
		}
	}
	if seenRev[good] == 0 || seenRev[newRev] == 0 {
		t.Fatalf("decision log revisions %v, want both %q and %q", seenRev, good, newRev)
	}
	t.Logf("%d requests, %d reload failures, revisions %v", sent.Load(), int(reloads(t, e, "failure")), seenRev)
}

// TestBundleReachesEveryReplica runs two crmgate apps against one bundle
// server: both start on the served revision, poll with ETags (304s while
// nothing changes), both switch when the bundle changes, and both keep the
// last good bundle when a broken one is published.
func TestBundleReachesEveryReplica(t *testing.T) {
	srv := bundletest.NewServer(bundleToken)
	t.Cleanup(srv.Close)
	srv.Set("rev-1", bundletest.Policy(true))
	withBundle := func(c *config.Config) {
		c.Policy.Bundle = config.Bundle{URL: srv.URL(), Token: bundleToken, PollInterval: 20 * time.Millisecond}
	}
	replicas := []*env{newPolicyEnv(t, withBundle), newPolicyEnv(t, withBundle)}
	for i, r := range replicas {
		if rev := r.app.Policy.Revision(); rev != "rev-1" {
			t.Fatalf("replica %d starts on %q, want rev-1", i, rev)
		}
		if got := r.do("GET", accountsList, "alice", "").Status; got != http.StatusOK {
			t.Fatalf("replica %d under rev-1: %d, want 200", i, got)
		}
	}
	waitUntil(t, "conditional polls answered 304", func() bool { return srv.Stats().NotModified >= 4 })
	if got := srv.Stats(); got.OK != 2 || got.Unauthorized != 0 {
		t.Fatalf("while unchanged the server sent %d bundles (want one per replica) and refused %d", got.OK, got.Unauthorized)
	}

	srv.Set("rev-2", bundletest.Policy(false))
	for i, r := range replicas {
		waitUntil(t, "rev-2 on every replica", func() bool { return r.app.Policy.Revision() == "rev-2" })
		if got := r.do("GET", accountsList, "alice", "").Status; got != http.StatusForbidden {
			t.Fatalf("replica %d under rev-2: %d, want 403", i, got)
		}
		if revisionSeries(t, r, "rev-2") != 1 || revisionSeries(t, r, "rev-1") != 0 {
			t.Fatalf("replica %d: crmgate_policy_revision_info not moved to rev-2", i)
		}
	}

	srv.Set("rev-3", map[string]string{"/crmgate/policy.rego": "package crmgate\n\nallow if {\n"})
	for i, r := range replicas {
		waitUntil(t, "the broken bundle refused", func() bool { return reloads(t, r, "failure") >= 1 })
		if rev := r.app.Policy.Revision(); rev != "rev-2" {
			t.Fatalf("replica %d serves %q after a broken bundle, want rev-2", i, rev)
		}
	}
	for i, r := range replicas {
		for _, line := range r.flushLog() {
			if rev := loggedRevision(line); rev != "rev-1" && rev != "rev-2" {
				t.Fatalf("replica %d logged a decision under revision %v", i, rev)
			}
		}
	}
}

// loggedRevision is the policy revision of one decision-log event, from
// its OPA-style "bundles" object ("" when it has none).
func loggedRevision(line map[string]any) string {
	bundles, _ := line["bundles"].(map[string]any)
	for _, b := range bundles {
		if m, ok := b.(map[string]any); ok {
			if rev, ok := m["revision"].(string); ok {
				return rev
			}
		}
	}
	return ""
}

// admin posts to the admin listener's handler.
func (e *env) admin(method, path, token string) (int, map[string]any) {
	e.t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	e.app.Admin.ServeHTTP(rec, req)
	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return rec.Code, body
}

func TestAdminPolicyReload(t *testing.T) {
	t.Parallel()
	dir := copyReferencePolicy(t)
	// No watch: only explicit reloads change the policy.
	e := newPolicyEnv(t, func(c *config.Config) { c.Policy.Paths = []string{dir} })
	good := e.app.Policy.Revision()
	policyFile := filepath.Join(dir, "crmgate.rego")
	original, err := os.ReadFile(policyFile)
	if err != nil {
		t.Fatal(err)
	}

	if code, _ := e.admin("POST", "/admin/policy/reload", ""); code != http.StatusUnauthorized {
		t.Fatalf("reload without the admin token: %d, want 401", code)
	}
	if code, _ := e.admin("POST", "/admin/policy/reload", "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("reload with a wrong token: %d, want 401", code)
	}
	if code, _ := e.admin("GET", "/admin/policy/reload", adminToken); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET reload: %d, want 405", code)
	}

	must(t, os.WriteFile(policyFile, []byte("package crmgate\n\nallow if {\n"), 0o600))
	code, body := e.admin("POST", "/admin/policy/reload", adminToken)
	if code != http.StatusUnprocessableEntity || body["revision"] != good || !strings.Contains(body["error"].(string), "rego_parse_error") {
		t.Fatalf("reload of a broken policy: %d %v, want 422 naming the parse error and revision %q", code, body, good)
	}
	if e.app.Policy.Revision() != good || reloads(t, e, "failure") != 1 {
		t.Fatalf("after a refused reload: revision %q, failures %v", e.app.Policy.Revision(), reloads(t, e, "failure"))
	}

	must(t, os.WriteFile(policyFile, []byte(strings.Replace(string(original), productGrant, "", 1)), 0o600))
	code, body = e.admin("POST", "/admin/policy/reload", adminToken)
	if code != http.StatusOK || body["revision"] == good || body["revision"] != e.app.Policy.Revision() || body["error"] != nil {
		t.Fatalf("reload of a good policy: %d %v, want 200 with the new revision", code, body)
	}
	if got := e.do("GET", productsList, "alice", "").Status; got != http.StatusForbidden {
		t.Fatalf("after the reload sales lists products: %d, want 403", got)
	}
	if reloads(t, e, "success") != 1 || revisionSeries(t, e, e.app.Policy.Revision()) != 1 {
		t.Fatal("the admin reload was not counted or the revision metric not updated")
	}
}

func TestAdminReloadPollsTheBundleServer(t *testing.T) {
	t.Parallel()
	srv := bundletest.NewServer(bundleToken)
	t.Cleanup(srv.Close)
	srv.Set("rev-1", bundletest.Policy(true))
	e := newPolicyEnv(t, func(c *config.Config) {
		// Polls are an hour apart: only the admin reload can fetch.
		c.Policy.Bundle = config.Bundle{URL: srv.URL(), Token: bundleToken, PollInterval: time.Hour}
	})
	code, body := e.admin("POST", "/admin/policy/reload", adminToken)
	if code != http.StatusOK || body["revision"] != "rev-1" || srv.Stats().NotModified != 1 {
		t.Fatalf("reload of an unchanged bundle: %d %v, server %+v; want 200, rev-1 and a 304", code, body, srv.Stats())
	}
	if reloads(t, e, "success")+reloads(t, e, "failure") != 0 {
		t.Fatal("a 304 was counted as a reload")
	}
	srv.Set("rev-2", bundletest.Policy(false))
	if code, body := e.admin("POST", "/admin/policy/reload", adminToken); code != http.StatusOK || body["revision"] != "rev-2" {
		t.Fatalf("reload of a changed bundle: %d %v, want 200 rev-2", code, body)
	}
	srv.FailWith(http.StatusServiceUnavailable)
	if code, body := e.admin("POST", "/admin/policy/reload", adminToken); code != http.StatusBadGateway || body["revision"] != "rev-2" {
		t.Fatalf("reload while the bundle server fails: %d %v, want 502 still on rev-2", code, body)
	}
}

// TestSIGHUPReloadsPolicy sends the process a real SIGHUP, caught the way
// serve catches it.
func TestSIGHUPReloadsPolicy(t *testing.T) {
	dir := copyReferencePolicy(t)
	e := newPolicyEnv(t, func(c *config.Config) { c.Policy.Paths = []string{dir} })
	good := e.app.Policy.Revision()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.app.ReloadOnSignal(ctx, hup); close(done) }()
	defer func() { cancel(); <-done }()

	policyFile := filepath.Join(dir, "crmgate.rego")
	original, err := os.ReadFile(policyFile)
	must(t, err)
	must(t, os.WriteFile(policyFile, []byte("package crmgate\n\nallow if x\n"), 0o600))
	must(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	waitUntil(t, "the refused reload", func() bool { return reloads(t, e, "failure") == 1 })
	if e.app.Policy.Revision() != good {
		t.Fatal("a broken policy replaced the good one on SIGHUP")
	}
	must(t, os.WriteFile(policyFile, []byte(strings.Replace(string(original), productGrant, "", 1)), 0o600))
	must(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	waitUntil(t, "the SIGHUP reload", func() bool { return e.app.Policy.Revision() != good })
	if got := e.do("GET", productsList, "alice", "").Status; got != http.StatusForbidden {
		t.Fatalf("after SIGHUP: %d, want 403 from the new policy", got)
	}
}

func TestPolicyPathsAndBundleAreExclusive(t *testing.T) {
	t.Parallel()
	cfg := demo.Config("127.0.0.1:1", "127.0.0.1:2", "http://127.0.0.1:3", "http://127.0.0.1:4", adminToken, "s3cret")
	cfg.Policy.Paths = []string{t.TempDir()}
	cfg.Policy.Bundle = config.Bundle{URL: "http://127.0.0.1:5/b.tar.gz", PollInterval: time.Minute}
	_, err := app.Build(context.Background(), cfg, app.Deps{})
	if err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("build with both policy.paths and policy.bundle.url: %v, want refused", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
