package app_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/proxy/demo"
	"github.com/crmgate/crmgate/test/testredis"
)

// dormantUsers asks the admin listener for users not seen for 30 days.
func dormantUsers(t *testing.T, e *env) []string {
	t.Helper()
	status, body := e.admin(http.MethodGet, "/admin/reports/dormant?days=30", "admin-token")
	if status != http.StatusOK {
		t.Fatalf("dormant report: %d %v", status, body)
	}
	var users []string
	list, _ := body["users"].([]any)
	for _, u := range list {
		m, _ := u.(map[string]any)
		name, _ := m["user"].(string)
		users = append(users, name)
	}
	return users
}

// TestBearerUseCountsAsActivity: a user who only ever calls through crmgate
// with bearer tokens is not reported dormant, a second call within the
// interval writes nothing more, and a token that fails writes nothing.
func TestBearerUseCountsAsActivity(t *testing.T) {
	rc := testredis.Client(t)
	prefix := testredis.Prefix(t, rc)
	e := newEnv(t, "suitecrm8", func(cfg *config.Config) {
		// Browser sessions configured (so there is a store), but nobody in
		// this test signs in through a browser.
		cfg.Identity.OIDC = config.OIDC{Issuer: cfg.Identity.Bearer.Issuer, ClientID: "crmgate", ClientSecret: "unused"}
		cfg.Session.Store = config.StoreRedis
		cfg.Session.Redis = config.Redis{Addrs: []string{testredis.Addr()}, KeyPrefix: prefix}
		key := make([]byte, config.EncryptionKeySize)
		_, _ = rand.Read(key)
		cfg.Session.EncryptionKey = base64.StdEncoding.EncodeToString(key)
		config.ApplyDefaults(cfg)
	})
	ctx := context.Background()
	store := e.app.SessionStore()
	seenKey := prefix + "seen"
	lastSeen := func(user string) (time.Time, bool) {
		t.Helper()
		all, err := store.LastSeen(ctx)
		if err != nil {
			t.Fatal(err)
		}
		at, ok := all[user]
		return at, ok
	}

	// Both last signed in through a browser long ago.
	long := time.Now().AddDate(0, 0, -100)
	for _, u := range []string{"alice", "pat"} {
		if err := store.SeenUser(ctx, u, long); err != nil {
			t.Fatal(err)
		}
	}
	if got := dormantUsers(t, e); !slices.Equal(got, []string{"alice", "pat"}) {
		t.Fatalf("before any API use, dormant = %v", got)
	}

	expired, err := e.iss.Mint(map[string]any{"aud": demo.Audience, "sub": "pat", "roles": []string{"customer"},
		"account_id": "acc-1", "contact_id": "c-1"}, -time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.tokens["pat-expired"] = expired
	if r := e.do(http.MethodGet, accounts, "pat-expired", ""); r.Status != http.StatusUnauthorized {
		t.Fatalf("expired token: %d %s", r.Status, r.Body)
	}
	// No ghost entry for a subject that never authenticated either.
	e.tokens["nobody"] = e.tokens["alice"][:len(e.tokens["alice"])-4] + "AAAA"
	if r := e.do(http.MethodGet, accounts, "nobody", ""); r.Status != http.StatusUnauthorized {
		t.Fatalf("tampered token: %d %s", r.Status, r.Body)
	}

	start := time.Now().Truncate(time.Second)
	if r := e.do(http.MethodGet, accounts, "alice", ""); r.Status != http.StatusOK {
		t.Fatalf("alice: %d %s", r.Status, r.Body)
	}
	waitUntil(t, "alice's last-seen time", func() bool {
		at, _ := lastSeen("alice")
		return !at.Before(start)
	})
	// Writes are made in request order by one writer: once alice's is in,
	// anything the failed requests had queued would be too.
	if at, _ := lastSeen("pat"); !at.Equal(time.Unix(long.Unix(), 0)) {
		t.Errorf("a failed token moved pat's last-seen time to %v", at)
	}
	if got := dormantUsers(t, e); !slices.Equal(got, []string{"pat"}) {
		t.Errorf("after alice's API call, dormant = %v, want only pat", got)
	}

	// Within the interval alice's next call writes nothing: remove her
	// entry behind crmgate's back and see that it stays gone after a
	// later user's write has landed.
	if err := rc.HDel(ctx, seenKey, "alice").Err(); err != nil {
		t.Fatal(err)
	}
	if r := e.do(http.MethodGet, accounts, "alice", ""); r.Status != http.StatusOK {
		t.Fatalf("alice again: %d %s", r.Status, r.Body)
	}
	if r := e.do(http.MethodGet, products, "ivan", ""); r.Status != http.StatusOK {
		t.Fatalf("ivan: %d %s", r.Status, r.Body)
	}
	waitUntil(t, "ivan's last-seen time", func() bool {
		_, ok := lastSeen("ivan")
		return ok
	})
	if at, ok := lastSeen("alice"); ok {
		t.Errorf("alice's second call within the interval wrote again (%v)", at)
	}
}

// TestBearerWithoutSessionStore: without browser sessions nothing records
// last-seen times, and the dormant report still says so rather than
// reporting from nothing.
func TestBearerWithoutSessionStore(t *testing.T) {
	e := newEnv(t, "suitecrm8")
	if e.app.SessionStore() != nil {
		t.Fatal("the default env has a session store")
	}
	if r := e.do(http.MethodGet, accounts, "alice", ""); r.Status != http.StatusOK {
		t.Fatalf("alice: %d %s", r.Status, r.Body)
	}
	if status, body := e.admin(http.MethodGet, "/admin/reports/dormant?days=30", "admin-token"); status != http.StatusNotFound {
		t.Errorf("dormant report without a store: %d %v", status, body)
	}
}
