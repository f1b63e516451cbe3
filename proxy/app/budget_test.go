package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/proxy/app"
	"github.com/crmgate/crmgate/proxy/demo"
	"github.com/crmgate/crmgate/test/testredis"
)

// aliceBudget is the reference policy's budget for sales (rego/budget.rego).
const aliceBudget = 2000

// replicas builds n-1 more apps from e's configuration, so that n
// crmgate replicas stand in front of one CRM, one issuer and one budget
// store; it returns the base URLs of all n.
func (e *env) replicas(t *testing.T, n int) []string {
	t.Helper()
	urls := []string{e.proxy.URL}
	for i := 1; i < n; i++ {
		// The demo's context, as newEnv's: loopback clients at any hour.
		a, err := app.Build(context.Background(), e.app.Config, app.Deps{PolicyFS: demoPolicy(t), DecisionLogWriter: &syncBuffer{}, Version: "test"})
		if err != nil {
			t.Fatalf("build replica %d: %v", i, err)
		}
		srv := httptest.NewServer(a.Handler)
		t.Cleanup(func() {
			srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = a.Close(ctx)
		})
		urls = append(urls, srv.URL)
	}
	return urls
}

// mint returns another bearer token for persona: a second device or
// session of the same person, with the same subject id.
func (e *env) mint(t *testing.T, persona string) string {
	t.Helper()
	for _, p := range demo.Personas() {
		if p.Name != persona {
			continue
		}
		claims := map[string]any{"aud": demo.Audience, "jti": fmt.Sprint(time.Now().UnixNano())}
		for k, v := range p.Claims {
			claims[k] = v
		}
		tok, err := e.iss.Mint(claims, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	t.Fatalf("unknown persona %q", persona)
	return ""
}

// budgetRead is one read through a replica: how many records came back,
// the status, and the Retry-After and problem type of a refusal.
type budgetRead struct {
	status     int
	records    int
	retryAfter string
	problem    string
}

func readThrough(t *testing.T, base, token, path string) budgetRead {
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		t.Error(err)
		return budgetRead{}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return budgetRead{}
	}
	defer res.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Errorf("GET %s: %d, body not JSON: %v", path, res.StatusCode, err)
		return budgetRead{status: res.StatusCode}
	}
	r := budgetRead{status: res.StatusCode, retryAfter: res.Header.Get("Retry-After")}
	if res.StatusCode != http.StatusOK {
		if res.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s: %d with content-type %q", path, res.StatusCode, res.Header.Get("Content-Type"))
		}
		r.problem, _ = body["type"].(string)
		return r
	}
	if list, ok := body["list"].([]any); ok {
		r.records = len(list)
	} else if _, ok := body["id"]; ok {
		r.records = 1
	}
	return r
}

func budgetEnv(t *testing.T, store string, opts ...envOption) *env {
	t.Helper()
	return newEnv(t, "espocrm", append([]envOption{func(c *config.Config) {
		c.Budgets.Store = store
		if store == config.StoreRedis && len(c.Session.Redis.Addrs) == 0 {
			c.Session.Redis.Addrs = []string{testredis.Addr()}
			c.Session.Redis.KeyPrefix = testredis.Prefix(t, testredis.Client(t))
		}
	}}, opts...)...)
}

// Paths a sales user reads: small pages, a page of one, single records.
var budgetPaths = []string{
	"/api/v1/Account?maxSize=3",
	"/api/v1/Account?maxSize=1&offset=1",
	"/api/v1/Product?maxSize=7",
	"/api/v1/Product/p-1",
}

// TestReadBudgetSharedByReplicas: three replicas on one Redis share alice's
// budget of 2,000 records. Read one after another, hopping replicas, with
// small pages, single records and two different tokens of hers, exactly
// 2,000 records come back and the next request is refused with 429, a
// problem body and Retry-After; then concurrently, racing for the last
// records, the total again never passes the budget.
func TestReadBudgetSharedByReplicas(t *testing.T) {
	e := budgetEnv(t, config.StoreRedis)
	urls := e.replicas(t, 3)
	tokens := []string{e.tokens["alice"], e.mint(t, "alice")}

	total := 0
	var last budgetRead
	for i := 0; i < 10000; i++ {
		last = readThrough(t, urls[i%3], tokens[i%2], budgetPaths[i%len(budgetPaths)])
		if last.status != http.StatusOK {
			break
		}
		total += last.records
	}
	if total != aliceBudget {
		t.Fatalf("records read before refusal = %d, want exactly %d", total, aliceBudget)
	}
	if last.status != http.StatusTooManyRequests || last.problem != "urn:crmgate:problem:read-budget-exceeded" {
		t.Fatalf("after the budget: %+v, want 429 read-budget-exceeded", last)
	}
	if s, err := strconv.Atoi(last.retryAfter); err != nil || s < 1 || s > 3600 {
		t.Fatalf("Retry-After = %q, want seconds within the hour window", last.retryAfter)
	}
	for i, u := range urls {
		for _, p := range budgetPaths {
			if r := readThrough(t, u, e.mint(t, "alice"), p); r.status != http.StatusTooManyRequests {
				t.Fatalf("replica %d, new token, %s after the budget: %+v", i, p, r)
			}
		}
	}
	// Another user's budget is their own.
	if r := readThrough(t, urls[1], e.tokens["morgan"], budgetPaths[0]); r.status != http.StatusOK {
		t.Fatalf("morgan after alice's budget: %+v", r)
	}

	// Concurrent: 12 clients on three replicas with morgan's two tokens race
	// for her budget; what they got adds up to exactly the budget.
	morgan := []string{e.tokens["morgan"], e.mint(t, "morgan")}
	var got atomic.Int64
	got.Add(3) // morgan's first page above
	var wg sync.WaitGroup
	for c := 0; c < 12; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				r := readThrough(t, urls[(c+i)%3], morgan[c%2], budgetPaths[(c+i)%len(budgetPaths)])
				if r.status != http.StatusOK {
					if r.status != http.StatusTooManyRequests {
						t.Errorf("status %d (%s) while racing", r.status, r.problem)
					}
					return
				}
				got.Add(int64(r.records))
			}
		}()
	}
	wg.Wait()
	// A client refused while another still held records it had reserved
	// and then handed back may have stopped early: read what is left,
	// one request at a time, until the budget refuses.
	for i := 0; ; i++ {
		r := readThrough(t, urls[i%3], morgan[i%2], budgetPaths[i%len(budgetPaths)])
		if r.status != http.StatusOK {
			break
		}
		got.Add(int64(r.records))
	}
	if g := got.Load(); g != aliceBudget {
		t.Fatalf("concurrent clients read %d records of a %d budget", g, aliceBudget)
	}
}

// TestReadBudgetMemoryStore: one node counts in memory, as exactly.
func TestReadBudgetMemoryStore(t *testing.T) {
	e := budgetEnv(t, config.StoreMemory)
	total := 0
	for i := 0; i < 10000; i++ {
		r := readThrough(t, e.proxy.URL, e.tokens["alice"], budgetPaths[i%len(budgetPaths)])
		if r.status != http.StatusOK {
			if r.status != http.StatusTooManyRequests {
				t.Fatalf("status %d", r.status)
			}
			break
		}
		total += r.records
	}
	if total != aliceBudget {
		t.Fatalf("records read = %d, want %d", total, aliceBudget)
	}
	lines := e.flushLog()
	spent := false
	for _, l := range lines {
		if l["budget_spent"] == true {
			spent = true
			if _, ok := l["budget_remaining"]; !ok {
				t.Fatalf("spent line without budget_remaining: %v", l)
			}
		}
	}
	if !spent {
		t.Fatal("no decision-log line says budget_spent")
	}
}

// TestReadBudgetRedisKilled: with the budget store gone reads under a
// budget fail closed (503 read-budget-unavailable) on every replica, and
// work again once Redis is back; with on_store_error allow they pass.
func TestReadBudgetRedisKilled(t *testing.T) {
	for _, mode := range []string{config.BudgetDeny, config.BudgetAllow} {
		t.Run(mode, func(t *testing.T) {
			port := freePort(t)
			rds := startPrivateRedis(t, port)
			e := budgetEnv(t, config.StoreRedis, func(c *config.Config) {
				c.Session.Redis.Addrs = []string{fmt.Sprintf("127.0.0.1:%d", port)}
				c.Session.Redis.KeyPrefix = "crmgate-budget-fault:"
				c.Budgets.OnStoreError = mode
			})
			urls := e.replicas(t, 2)
			if r := readThrough(t, urls[0], e.tokens["alice"], budgetPaths[0]); r.status != http.StatusOK {
				t.Fatalf("before the fault: %+v", r)
			}
			rds.kill(t)
			for _, u := range urls {
				for _, p := range budgetPaths {
					r := readThrough(t, u, e.tokens["alice"], p)
					switch mode {
					case config.BudgetDeny:
						if r.status != http.StatusServiceUnavailable || r.problem != "urn:crmgate:problem:read-budget-unavailable" {
							t.Fatalf("%s with Redis down: %+v, want 503 read-budget-unavailable", p, r)
						}
					case config.BudgetAllow:
						if r.status != http.StatusOK || r.records == 0 {
							t.Fatalf("%s with Redis down, allow: %+v", p, r)
						}
					}
				}
			}
			startPrivateRedis(t, port)
			waitFor(t, "reads after Redis is back", func() bool {
				return readThrough(t, urls[1], e.tokens["alice"], budgetPaths[0]).status == http.StatusOK
			})
		})
	}
}
