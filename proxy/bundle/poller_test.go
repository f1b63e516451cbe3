package bundle_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/bundle"
	"github.com/crmgate/crmgate/proxy/bundle/bundletest"
)

const token = "bundle-token"

func newServer(t *testing.T) *bundletest.Server {
	t.Helper()
	s := bundletest.NewServer(token)
	t.Cleanup(s.Close)
	s.Set("r1", bundletest.Policy(true))
	return s
}

func newPoller(t *testing.T, s *bundletest.Server, mut ...func(*bundle.Options)) *bundle.Poller {
	t.Helper()
	o := bundle.Options{URL: s.URL(), Token: token, Interval: time.Hour, Client: s.Client()}
	for _, m := range mut {
		m(&o)
	}
	p, err := bundle.NewPoller(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func allows(t *testing.T, e *policy.Engine) bool {
	t.Helper()
	d, err := e.Decide(context.Background(), &policy.Input{
		Subject:  &policy.Subject{ID: "alice", Roles: []string{"sales"}},
		Request:  policy.Request{ID: "r", Method: "GET", Path: "/x", Time: time.Unix(0, 0).UTC()},
		Resource: policy.Resource{Module: "Contacts", Action: "list"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d.Allow
}

func TestPollerConditionalRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	p := newPoller(t, s)
	e, err := p.Load(ctx, "crmgate")
	if err != nil {
		t.Fatal(err)
	}
	if e.Revision() != "r1" || !allows(t, e) {
		t.Fatalf("revision %q allow %v, want r1 allowing", e.Revision(), allows(t, e))
	}

	changed, err := p.Poll(ctx, e)
	if err != nil || changed {
		t.Fatalf("unchanged bundle: changed=%v err=%v", changed, err)
	}
	if got := s.Stats(); got.NotModified != 1 || got.OK != 1 {
		t.Fatalf("server saw %+v, want one 200 then one 304", got)
	}

	s.Set("r2", bundletest.Policy(false))
	changed, err = p.Poll(ctx, e)
	if err != nil || !changed {
		t.Fatalf("changed bundle: changed=%v err=%v", changed, err)
	}
	if e.Revision() != "r2" || allows(t, e) {
		t.Fatalf("revision %q allow %v, want r2 denying", e.Revision(), allows(t, e))
	}
	if got := s.Stats(); got.Unauthorized != 0 {
		t.Fatalf("server refused the token: %+v", got)
	}
}

func TestPollerKeepsLastGoodBundle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	p := newPoller(t, s)
	e, err := p.Load(ctx, "crmgate")
	if err != nil {
		t.Fatal(err)
	}
	broken := map[string]string{
		"syntax error":    "package crmgate\n\nallow if {\n",
		"missing package": "package other\n\nallow := true\n",
		"compile error":   "package crmgate\n\nallow if x\n",
	}
	for name, body := range broken {
		t.Run(name, func(t *testing.T) {
			s.Set("bad-"+name, map[string]string{"/crmgate/policy.rego": body})
			for range 2 {
				before := s.Stats().OK
				if _, err := p.Poll(ctx, e); err == nil {
					t.Fatal("broken bundle accepted")
				}
				// The refused bundle's ETag is not remembered: each poll
				// downloads it again and fails again, so the failure stays
				// visible until the bundle is fixed.
				if s.Stats().OK != before+1 {
					t.Fatalf("broken bundle not downloaded again: %+v", s.Stats())
				}
				if e.Revision() != "r1" || !allows(t, e) {
					t.Fatalf("revision %q, want r1 still serving", e.Revision())
				}
			}
		})
	}
}

func TestPollerFetchErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		setup   func(s *bundletest.Server)
		opts    func(*bundle.Options)
		fetch   bool // want a *FetchError
		wantMsg string
		is      error
	}{
		{name: "wrong token", opts: func(o *bundle.Options) { o.Token = "nope" }, fetch: true, wantMsg: "401"},
		{name: "no token", opts: func(o *bundle.Options) { o.Token = "" }, fetch: true, wantMsg: "401"},
		{name: "server error", setup: func(s *bundletest.Server) { s.FailWith(http.StatusInternalServerError) }, fetch: true, wantMsg: "500"},
		{name: "304 to an unconditional request", setup: func(s *bundletest.Server) { s.FailWith(http.StatusNotModified) }, fetch: true, wantMsg: "304"},
		{name: "too large", opts: func(o *bundle.Options) { o.MaxBytes = 32 }, is: policy.ErrBundleTooLarge},
		{name: "not a bundle", setup: func(s *bundletest.Server) { s.SetRaw([]byte("<html>login</html>")) }, wantMsg: "gzip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			if tt.setup != nil {
				tt.setup(s)
			}
			var opts []func(*bundle.Options)
			if tt.opts != nil {
				opts = append(opts, tt.opts)
			}
			_, err := newPoller(t, s, opts...).Load(context.Background(), "crmgate")
			if err == nil {
				t.Fatal("load succeeded")
			}
			var fe *bundle.FetchError
			if errors.As(err, &fe) != tt.fetch {
				t.Fatalf("error %v: FetchError = %v, want %v", err, !tt.fetch, tt.fetch)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("error %v, want %v", err, tt.is)
			}
			if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error %q does not mention %q", err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), token) {
				t.Fatalf("error leaks the token: %v", err)
			}
		})
	}
}

func TestPollerRunReportsChangesAndFailures(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	p := newPoller(t, s, func(o *bundle.Options) { o.Interval = 10 * time.Millisecond; o.MaxBackoff = 20 * time.Millisecond })
	e, err := p.Load(context.Background(), "crmgate")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reports []error
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		p.Run(ctx, e, func(err error) { mu.Lock(); reports = append(reports, err); mu.Unlock() })
		close(done)
	}()
	defer func() { cancel(); <-done }()
	count := func() (ok, failed int) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range reports {
			if r == nil {
				ok++
			} else {
				failed++
			}
		}
		return ok, failed
	}
	waitFor(t, "304s while unchanged", func() bool { return s.Stats().NotModified >= 3 })
	if ok, failed := count(); ok+failed != 0 {
		t.Fatalf("unchanged polls were reported: %d ok, %d failed", ok, failed)
	}
	s.Set("r2", bundletest.Policy(false))
	waitFor(t, "revision r2", func() bool { return e.Revision() == "r2" })
	waitFor(t, "the change reported", func() bool { ok, _ := count(); return ok == 1 })
	s.FailWith(http.StatusBadGateway)
	waitFor(t, "failures reported", func() bool { _, failed := count(); return failed >= 2 })
	if e.Revision() != "r2" {
		t.Fatalf("revision %q after server failures, want r2", e.Revision())
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNewPollerChecksOptions(t *testing.T) {
	t.Parallel()
	for name, o := range map[string]bundle.Options{
		"no url":         {Interval: time.Second},
		"no interval":    {URL: "http://127.0.0.1/b.tar.gz"},
		"negative delay": {URL: "http://127.0.0.1/b.tar.gz", Interval: -time.Second},
	} {
		if _, err := bundle.NewPoller(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
