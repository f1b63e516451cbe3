package deploy

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/proxy/app"
	"github.com/crmgate/crmgate/proxy/demo"
	"github.com/crmgate/crmgate/proxy/emulator"
	"github.com/crmgate/crmgate/proxy/issuer"
	"github.com/crmgate/crmgate/test/testredis"
	"github.com/redis/go-redis/v9"
)

const (
	dashboardPath = "grafana/crmgate.json"
	rulesPath     = "prometheus/crmgate-rules.yml"
	adminToken    = "deploy-test-admin-token"
)

// exprRef is one PromQL expression and where it was found.
type exprRef struct{ where, expr string }

// family is what a scrape says about one metric family.
type family struct {
	typ dto.MetricType
	// labels maps each label name to the values seen.
	labels map[string]map[string]bool
}

// scraped is a parsed /metrics exposition.
type scraped map[string]*family

var (
	metricRe  = regexp.MustCompile(`\b((?:crmgate|go|process)_[A-Za-z0-9_]*)\s*(\{[^}]*\})?`)
	matcherRe = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)
	groupRe   = regexp.MustCompile(`\b(?:by|without|on|ignoring)\s*\(([^)]*)\)`)
	literalRe = regexp.MustCompile(`^[A-Za-z0-9_.:+-]+(\|[A-Za-z0-9_.:+-]+)*$`)
)

// targetLabels are attached by Prometheus at scrape time, not by crmgate.
var targetLabels = map[string]bool{"job": true, "instance": true}

// openValues are labels whose values come from outside crmgate's bounded
// sets, so a value an expression names cannot be expected in one scrape:
// the policy revision is whatever the policy source says ("none" when no
// policy is loaded, which a running test instance never is).
var openValues = map[string]map[string]bool{
	"crmgate_policy_revision_info": {"revision": true},
}

// dashboardExprs returns every PromQL expression of the dashboard: panel
// targets, annotation queries and template-variable queries.
func dashboardExprs(t *testing.T) []exprRef {
	t.Helper()
	var doc any
	if err := json.Unmarshal(readFile(t, dashboardPath), &doc); err != nil {
		t.Fatalf("parse %s: %v", dashboardPath, err)
	}
	var out []exprRef
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			title, _ := v["title"].(string)
			if title == "" {
				title, _ = v["name"].(string)
			}
			here := where
			if title != "" {
				here = where + "/" + title
			}
			for _, k := range keys {
				switch s := v[k].(type) {
				case string:
					if (k == "expr" || k == "definition" || (k == "query" && where != "" && strings.Contains(s, "("))) && s != "" {
						out = append(out, exprRef{here + "." + k, s})
					}
				default:
					walk(here, s)
				}
			}
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s[%d]", where, i), e)
			}
		}
	}
	walk("dashboard", doc)
	return out
}

// ruleFile is the part of a Prometheus rule file the tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	var rf ruleFile
	if err := yaml.Unmarshal(readFile(t, rulesPath), &rf); err != nil {
		t.Fatalf("parse %s: %v", rulesPath, err)
	}
	return rf
}

func ruleExprs(t *testing.T) []exprRef {
	t.Helper()
	var out []exprRef
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			out = append(out, exprRef{"rules/" + g.Name + "/" + r.Alert + r.Record, r.Expr})
		}
	}
	return out
}

// checkExpr reports every way expr disagrees with what crmgate exports: an
// unknown metric name, a histogram suffix on a metric that is no histogram,
// a label crmgate never sets, a label value it never produces, and a
// grouping label that none of the expression's metrics has.
func checkExpr(expr string, s scraped) []string {
	var problems []string
	refs := metricRe.FindAllStringSubmatch(expr, -1)
	known := map[string]bool{"le": true}
	for l := range targetLabels {
		known[l] = true
	}
	for _, m := range refs {
		name, sel := m[1], m[2]
		fam, base := s.lookup(name)
		if fam == nil {
			problems = append(problems, fmt.Sprintf("%s: not exported by crmgate", name))
			continue
		}
		for l := range fam.labels {
			known[l] = true
		}
		for _, mm := range matcherRe.FindAllStringSubmatch(sel, -1) {
			label, op, value := mm[1], mm[2], mm[3]
			if targetLabels[label] {
				continue
			}
			if label == "le" && fam.typ == dto.MetricType_HISTOGRAM && name != base {
				continue
			}
			values, ok := fam.labels[label]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: has no label %q", name, label))
				continue
			}
			if openValues[base][label] || strings.Contains(value, "$") {
				continue
			}
			alts := []string{value}
			if op == "=~" || op == "!~" {
				if !literalRe.MatchString(value) {
					continue // a real pattern, not a list of values
				}
				alts = strings.Split(value, "|")
			}
			for _, a := range alts {
				if !values[a] {
					problems = append(problems, fmt.Sprintf("%s: label %s never has value %q (seen %v)", name, label, a, sortedKeys(values)))
				}
			}
		}
	}
	if len(refs) == 0 {
		return problems
	}
	for _, g := range groupRe.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(g[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !known[l] {
				problems = append(problems, fmt.Sprintf("groups by %q, which none of its metrics has", l))
			}
		}
	}
	return problems
}

// lookup finds the family a name in an expression refers to: the family
// itself, or for name_bucket/_sum/_count the histogram it belongs to.
func (s scraped) lookup(name string) (*family, string) {
	if f, ok := s[name]; ok {
		return f, name
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		if f, ok := s[base]; ok && (f.typ == dto.MetricType_HISTOGRAM || (suffix != "_bucket" && f.typ == dto.MetricType_SUMMARY)) {
			return f, base
		}
	}
	return nil, ""
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// faultyCRM is the CRM emulator with two records that fail: one answers
// 503, the other drops the connection, so the upstream "5xx" and "error"
// series exist in the scrape like they do in production. It also ignores
// the filter crmgate pushes into Cases lists, as a customised CRM might,
// so the refused-records series exists too.
type faultyCRM struct{ next http.Handler }

func (f faultyCRM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/Api/V8/module/Cases" && strings.Contains(r.URL.RawQuery, "filter"):
		q := r.URL.Query()
		for k := range q {
			if strings.HasPrefix(k, "filter") {
				q.Del(k)
			}
		}
		r.URL.RawQuery = q.Encode()
		f.next.ServeHTTP(w, r)
	case strings.HasSuffix(r.URL.Path, "/fail-503"):
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	case strings.HasSuffix(r.URL.Path, "/fail-reset"):
		hj, ok := w.(http.Hijacker)
		if !ok {
			http.Error(w, "no hijacker", http.StatusInternalServerError)
			return
		}
		c, _, err := hj.Hijack()
		if err == nil {
			_ = c.Close()
		}
	default:
		f.next.ServeHTTP(w, r)
	}
}

// spendBudget fills the read-budget window at key (proxy/budget's Redis
// layout) for an hour.
func spendBudget(ctx context.Context, key string) error {
	rc := redis.NewClient(&redis.Options{Addr: testredis.Addr()})
	defer rc.Close()
	err := rc.HSet(ctx, key, "used", 1<<30, "win", "deploy-test").Err()
	if err == nil {
		err = rc.Expire(ctx, key, time.Hour).Err()
	}
	if err != nil {
		return fmt.Errorf("spend read budget: %w", err)
	}
	return nil
}

var (
	scrapeOnce sync.Once
	scrapeData scraped
	scrapeErr  error
)

// runningScrape builds crmgate the way `serve` does (app.Build with the
// demo configuration, the reference policy, a SuiteCRM emulator and an
// in-process OpenID issuer), sends it the demo's requests plus a refused
// write, a bad token and two failing upstream exchanges, and returns its
// admin /metrics. It runs once per test binary.
func runningScrape(t *testing.T) scraped {
	t.Helper()
	scrapeOnce.Do(func() { scrapeData, scrapeErr = scrape() })
	if scrapeErr != nil {
		t.Fatal(scrapeErr)
	}
	return scrapeData
}

func scrape() (scraped, error) {
	idp := httptest.NewUnstartedServer(nil)
	idp.Start()
	defer idp.Close()
	iss, err := issuer.New(idp.URL)
	if err != nil {
		return nil, err
	}
	idp.Config.Handler = iss.Handler()
	crm := httptest.NewServer(faultyCRM{emulator.NewSuiteCRM(emulator.DepartmentStore(), emulator.SuiteOptions{ClientID: "crmgate", ClientSecret: "s3cret"})})
	defer crm.Close()

	cfg := demo.Config("127.0.0.1:1", "127.0.0.1:2", crm.URL, idp.URL, adminToken, "s3cret")
	// Sessions in Redis, as replicas run, so the session-cache metrics the
	// dashboard and rules use are exported too.
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	cfg.Identity.OIDC = config.OIDC{Issuer: idp.URL, ClientID: "crmgate", ClientSecret: "s3cret"}
	cfg.Session.Store = config.StoreRedis
	cfg.Session.EncryptionKey = base64.StdEncoding.EncodeToString(key)
	cfg.Session.Redis = config.Redis{Addrs: []string{testredis.Addr()}, KeyPrefix: "crmgate-test:deploy:" + rand.Text() + ":"}
	cfg.Budgets.Store = config.StoreRedis
	config.ApplyDefaults(cfg)
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("demo config: %w", err)
	}
	ctx := context.Background()
	// The demo's context: its loopback clients are staff in the office at
	// any hour, so the traffic below meets the write guard and the field
	// rules whatever time the test runs (the reference hours deny staff in
	// the evening).
	policyFS, err := demo.PolicyFS()
	if err != nil {
		return nil, err
	}
	a, err := app.Build(ctx, cfg, app.Deps{PolicyFS: policyFS, DecisionLogWriter: discardSyncer{}, Version: "deploy-test"})
	if err != nil {
		return nil, fmt.Errorf("build crmgate: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = a.Close(cctx)
	}()
	proxySrv := httptest.NewServer(a.Handler)
	defer proxySrv.Close()
	adminSrv := httptest.NewServer(a.Admin)
	defer adminSrv.Close()

	tokens := map[string]string{}
	for _, p := range demo.Personas() {
		claims := map[string]any{"aud": demo.Audience}
		for k, v := range p.Claims {
			claims[k] = v
		}
		if tokens[p.Name], err = iss.Mint(claims, time.Hour); err != nil {
			return nil, err
		}
	}
	// spend marks the last request: its persona's read budget is spent
	// just before it (as by an earlier harvest on another replica), so it
	// is refused with 429 and crmgate_read_budget_exceeded_total counts it.
	type req struct {
		persona, method, path, body, token string
		spend                              bool
	}
	var reqs []req
	for _, c := range demo.Commands {
		reqs = append(reqs, req{persona: c.Persona, method: c.Method, path: c.Path})
	}
	reqs = append(reqs,
		req{persona: "alice", method: "PATCH", path: "/Api/V8/module",
			body: `{"data":{"type":"Accounts","id":"acc-1","attributes":{"name":"x","cost":1}}}`},
		req{method: "GET", path: "/Api/V8/module/Accounts", token: "not-a-token"},
		req{persona: "alice", method: "GET", path: "/Api/V8/module/Accounts/fail-503"},
		req{persona: "alice", method: "GET", path: "/Api/V8/module/Accounts/fail-reset"},
		req{persona: "pat", method: "GET", path: "/Api/V8/module/Accounts", spend: true},
	)
	for _, r := range reqs {
		if r.spend {
			if err := spendBudget(ctx, cfg.Session.Redis.KeyPrefix+"b:"+r.persona); err != nil {
				return nil, err
			}
		}
		var body io.Reader
		if r.body != "" {
			body = strings.NewReader(r.body)
		}
		hr, err := http.NewRequest(r.method, proxySrv.URL+r.path, body)
		if err != nil {
			return nil, err
		}
		if r.body != "" {
			hr.Header.Set("Content-Type", "application/json")
		}
		tok := r.token
		if r.persona != "" {
			tok = tokens[r.persona]
		}
		hr.Header.Set("Authorization", "Bearer "+tok)
		res, err := proxySrv.Client().Do(hr)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}

	hr, err := http.NewRequest("GET", adminSrv.URL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Authorization", "Bearer "+adminToken)
	res, err := adminSrv.Client().Do(hr)
	if err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape: status %d", res.StatusCode)
	}
	return parseExposition(res.Body)
}

func parseExposition(r io.Reader) (scraped, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse exposition: %w", err)
	}
	out := scraped{}
	for name, mf := range fams {
		f := &family{typ: mf.GetType(), labels: map[string]map[string]bool{}}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if f.labels[lp.GetName()] == nil {
					f.labels[lp.GetName()] = map[string]bool{}
				}
				f.labels[lp.GetName()][lp.GetValue()] = true
			}
		}
		out[name] = f
	}
	return out, nil
}

type discardSyncer struct{}

func (discardSyncer) Write(p []byte) (int, error) { return len(p), nil }
func (discardSyncer) Sync() error                 { return nil }

// TestMetricsExistInRunningCrmgate checks every metric, label and label
// value the dashboard and the alert rules use against a running crmgate's
// /metrics: a renamed metric or a misspelt label value would otherwise
// leave a panel empty or an alert silently unable to fire.
func TestMetricsExistInRunningCrmgate(t *testing.T) {
	t.Parallel()
	s := runningScrape(t)
	refs := append(dashboardExprs(t), ruleExprs(t)...)
	seen := map[string]bool{}
	for _, r := range refs {
		for _, m := range metricRe.FindAllStringSubmatch(r.expr, -1) {
			seen[m[1]] = true
		}
	}
	// The extraction itself must find the names, or this test passes on
	// nothing: the contract has 15 crmgate_ families and the histograms add
	// suffixed forms.
	if len(seen) < 15 {
		t.Fatalf("only %d metric names found in the dashboard and rules: %v", len(seen), sortedKeys(seen))
	}
	for _, r := range refs {
		t.Run(r.where, func(t *testing.T) {
			for _, p := range checkExpr(r.expr, s) {
				t.Errorf("%s\n  in: %s", p, r.expr)
			}
		})
	}
}

// TestDashboardShowsEveryCrmgateMetric: each crmgate_ family a running
// crmgate exports has a panel, so a new metric is not forgotten.
func TestDashboardShowsEveryCrmgateMetric(t *testing.T) {
	t.Parallel()
	s := runningScrape(t)
	used := map[string]bool{}
	for _, r := range dashboardExprs(t) {
		for _, m := range metricRe.FindAllStringSubmatch(r.expr, -1) {
			if _, base := s.lookup(m[1]); base != "" {
				used[base] = true
			}
		}
	}
	var missing []string
	for name := range s {
		if strings.HasPrefix(name, "crmgate_") && !used[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("crmgate exports metrics no dashboard panel uses: %v", missing)
	}
	if !slices.ContainsFunc(sortedKeys(used), func(n string) bool { return strings.HasPrefix(n, "go_") }) ||
		!slices.ContainsFunc(sortedKeys(used), func(n string) bool { return strings.HasPrefix(n, "process_") }) {
		t.Errorf("the dashboard shows no Go runtime or process metrics: %v", sortedKeys(used))
	}
}

// TestCheckExprCatchesMistakes feeds the checker the mistakes it exists
// to catch; each must be reported.
func TestCheckExprCatchesMistakes(t *testing.T) {
	t.Parallel()
	s := runningScrape(t)
	cases := []struct{ name, expr, want string }{
		{"misspelt name", `rate(crmgate_decision_total[5m])`, "not exported"},
		{"bucket of a counter", `histogram_quantile(0.9, rate(crmgate_decisions_total_bucket[5m]))`, "not exported"},
		{"unknown label", `crmgate_decisions_total{verdict="deny"}`, "no label"},
		{"misspelt value", `crmgate_decisions_total{outcome="denied"}`, "never has value"},
		{"misspelt value in a negative matcher", `crmgate_upstream_errors_total{kind!="cancelled"}`, "never has value"},
		{"misspelt alternative", `crmgate_decision_log_events_total{result=~"dropped|faild"}`, "never has value"},
		{"grouping by a label nobody has", `sum by (user) (rate(crmgate_decisions_total[5m]))`, "groups by"},
		{"grouping by a label of another metric", `sum by (kind) (rate(crmgate_decisions_total[5m]))`, "groups by"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			probs := checkExpr(c.expr, s)
			if !slices.ContainsFunc(probs, func(p string) bool { return strings.Contains(p, c.want) }) {
				t.Errorf("checkExpr(%s) = %v, want a problem containing %q", c.expr, probs, c.want)
			}
		})
	}
	for _, ok := range []string{
		`histogram_quantile(0.99, sum by (le, module) (rate(crmgate_upstream_duration_seconds_bucket{code=~"2xx|5xx"}[5m])))`,
		`sum by (job) (rate(crmgate_decisions_total{outcome="deny", job=~"$job"}[5m]))`,
	} {
		if probs := checkExpr(ok, s); len(probs) > 0 {
			t.Errorf("checkExpr(%s) = %v, want no problems", ok, probs)
		}
	}
}

// TestMetricsNeedAdminToken: the dashboard and alerts depend on Prometheus
// scraping with the admin token; without it (or with a wrong one) the
// admin listener must refuse.
func TestMetricsNeedAdminToken(t *testing.T) {
	t.Parallel()
	cfg := demo.Config("127.0.0.1:1", "127.0.0.1:2", "http://127.0.0.1:3", "http://127.0.0.1:4", adminToken, "s3cret")
	cfg.Identity.Bearer.Enabled = false
	policyFS, err := demo.PolicyFS()
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Build(context.Background(), cfg, app.Deps{PolicyFS: policyFS, DecisionLogWriter: discardSyncer{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	srv := httptest.NewServer(a.Admin)
	t.Cleanup(srv.Close)
	for _, c := range []struct {
		name, auth string
		want       int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", "Bearer " + adminToken + "x", http.StatusUnauthorized},
		{"token prefix", "Bearer " + adminToken[:len(adminToken)-1], http.StatusUnauthorized},
		{"basic scheme", "Basic " + adminToken, http.StatusUnauthorized},
		{"admin token", "Bearer " + adminToken, http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != c.want {
				t.Errorf("status %d, want %d", res.StatusCode, c.want)
			}
		})
	}
}
