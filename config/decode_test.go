package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestStrictDecoding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		path string
		msg  string
	}{
		{"unknown top-level key", "upstreams: {}\n", "upstreams", "unknown key"},
		{"unknown nested key", "upstream:\n  ulr: http://x\n", "upstream.ulr", "unknown key"},
		{"suggestion for transposed letters", "upstream:\n  ulr: http://x\n", "upstream.ulr", `did you mean "url"`},
		{"unknown deep key", "upstream:\n  auth:\n    tpye: header\n", "upstream.auth.tpye", "unknown key"},
		{"unknown key in list item", "crm:\n  routes:\n    - method: GET\n    - method: GET\n    - methd: GET\n", "crm.routes[2].methd", "unknown key"},
		{"unknown key in pointer struct", "crm:\n  shape:\n    id_feild: id\n", "crm.shape.id_feild", "unknown key"},
		{"key differing only in case", "Listen: x\n", "Listen", "unknown key"},
		{"yaml tag name, not field name", "upstream:\n  maxrequestbody: 1\n", "upstream.maxrequestbody", "unknown key"},
		{"invalid duration", "upstream:\n  timeout: 5 parsecs\n", "upstream.timeout", `invalid duration "5 parsecs"`},
		{"integer where duration", "session:\n  idle_timeout: 30\n", "session.idle_timeout", "invalid duration"},
		{"invalid integer", "upstream:\n  max_request_body: 10MB\n", "upstream.max_request_body", `invalid integer "10MB"`},
		{"integer overflow", "session:\n  redis:\n    db: 99999999999999999999\n", "session.redis.db", "invalid integer"},
		{"yaml 1.1 boolean refused", "identity:\n  bearer:\n    enabled: yes\n", "identity.bearer.enabled", "invalid boolean"},
		{"mapping where string", "admin_listen: {a: b}\n", "admin_listen", "expected a string, got a mapping"},
		{"list where listen address", "listen: [a]\n", "listen", "expected a mapping, got a list"},
		{"list where struct", "upstream: [a]\n", "upstream", "expected a mapping, got a list"},
		{"scalar where list", "policy:\n  paths: rego\n", "policy.paths", "expected a list, got a scalar"},
		{"list item of wrong type", "policy:\n  paths: [a, [b]]\n", "policy.paths[1]", "expected a string, got a list"},
		{"map value of wrong type", "identity:\n  roles:\n    sales: crm-sales\n", "identity.roles.sales", "expected a list"},
		{"quoted map key path", "identity:\n  roles:\n    \"a.b\": {x: 1}\n", `identity.roles["a.b"]`, "expected a list"},
		{"nested list", "crm:\n  shape:\n    total_paths: [[meta, total], [x, {}]]\n", "crm.shape.total_paths[1][1]", "expected a string"},
		{"duplicate key", "listen: a:1\nlisten: b:2\n", "listen", "duplicate key (first set on line 1)"},
		{"duplicate nested key", "upstream:\n  url: a\n  url: b\n", "upstream.url", "duplicate key"},
		{"duplicate map key", "identity:\n  roles:\n    sales: [a]\n    sales: [b]\n", "identity.roles.sales", "duplicate key"},
		{"non-string key", "upstream:\n  [a]: b\n", "upstream", "mapping key must be a string"},
		{"merge key refused", "base: &b {url: x}\nupstream:\n  <<: *b\n", "upstream", "merge keys"},
		{"custom tag refused", "listen: !env X\n", "listen", "custom YAML tag"},
		{"binary refused", "admin:\n  token: !!binary aGVsbG8=\n", "admin.token", "!!binary"},
		{"top level not a mapping", "- a\n- b\n", "", "expected a mapping, got a list"},
		{"syntax error", "upstream:\n  url: [\n", "", "line"},
		{"second document", "listen: a:1\n---\nlisten: b:2\n", "", "multiple YAML documents"},
		{"empty second document", "listen: a:1\n---\n", "", "multiple YAML documents"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tc.yaml), env(nil), "")
			wantProblem(t, err, tc.path, tc.msg)
		})
	}
}

func TestDecodeReportsLines(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte("upstream:\n  url: http://crm\n  ulr: x\n"), env(nil), "")
	for _, p := range problemsOf(t, err) {
		if p.Path == "upstream.ulr" {
			if p.Line != 3 {
				t.Errorf("line = %d, want 3", p.Line)
			}
			if !strings.Contains(p.String(), "upstream.ulr: unknown key") || !strings.HasSuffix(p.String(), "(line 3)") {
				t.Errorf("String() = %q", p.String())
			}
			return
		}
	}
	t.Fatalf("no upstream.ulr problem in %v", err)
}

func TestAllProblemsAtOnceInDocumentOrder(t *testing.T) {
	t.Parallel()
	doc := `
listne: x
upstream:
  url: http://crm.internal
  timeout: forever
  ulr: y
crm:
  routes:
    - methd: GET
identity:
  bearer: {enabled: true, issuer: https://id.example, audiences: [a]}
policy: {paths: [rego]}
session:
  store: postgres
`
	_, err := Parse([]byte(doc), env(nil), "")
	ps := problemsOf(t, err)
	var paths []string
	for _, p := range ps {
		paths = append(paths, p.Path)
	}
	want := []string{"listne", "upstream.timeout", "upstream.ulr", "crm.routes[0].methd"}
	if len(paths) < len(want) {
		t.Fatalf("got problems %q, want at least %q", paths, want)
	}
	for i, w := range want {
		if paths[i] != w {
			t.Fatalf("problem order %q, want prefix %q", paths, want)
		}
	}
	// Validation problems follow the decoding ones.
	wantProblem(t, err, "session.store", "must be memory or redis")
	wantProblem(t, err, "crm.routes[0].method", "must be one of")
	if n := strings.Count(err.Error(), "\n\t"); n != len(ps) {
		t.Errorf("Error() lists %d lines for %d problems", n, len(ps))
	}
}

func TestDecodeIsDeterministic(t *testing.T) {
	t.Parallel()
	doc := "identity:\n  roles:\n    z: []\n    a: []\n    m: [\"\"]\nsession:\n  redis_password_file: x\n"
	_, first := Parse([]byte(doc), env(nil), "")
	for range 20 {
		if _, err := Parse([]byte(doc), env(nil), ""); err.Error() != first.Error() {
			t.Fatalf("problems differ between runs:\n%v\n---\n%v", first, err)
		}
	}
}

func TestAliases(t *testing.T) {
	t.Parallel()
	doc := minimalYAML + `
x-groups: &sales [crm-sales, crm-lead]
`
	_, err := Parse([]byte(doc), env(nil), "")
	wantProblem(t, err, "x-groups", "unknown key")

	doc = `
upstream: {url: http://crm.internal}
identity:
  bearer: {enabled: true, issuer: https://id.example, audiences: &aud [crmgate]}
  roles:
    sales: &sales [crm-sales, crm-lead]
    manager: *sales
policy: {paths: *aud}
`
	cfg, err := Parse([]byte(doc), env(nil), "")
	if err != nil {
		t.Fatalf("parse with aliases: %v", err)
	}
	if got := cfg.Identity.Roles["manager"]; len(got) != 2 || got[1] != "crm-lead" {
		t.Errorf("alias not followed: %q", got)
	}
	cfg.Identity.Roles["manager"][0] = "changed"
	if cfg.Identity.Roles["sales"][0] != "crm-sales" {
		t.Error("aliased values share storage")
	}
}

// TestAliasExpansionIsBounded feeds a document that is small on disk but
// huge once aliases are followed: a thousand routes, each aliasing a list
// of a thousand items. The schema's lists nest only two deep, so this
// quadratic blow-up is the worst a file can do; the node budget stops it.
func TestAliasExpansionIsBounded(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("crm:\n  routes:\n    - module_from_body: &m [")
	for i := range 1000 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("a")
	}
	b.WriteString("]\n")
	for range 1000 {
		b.WriteString("    - module_from_body: *m\n")
	}
	start := time.Now()
	_, err := Parse([]byte(b.String()), env(nil), "")
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("parse took %v", elapsed)
	}
	found := 0
	for _, p := range problemsOf(t, err) {
		if strings.Contains(p.Msg, "document too large") {
			found++
		}
	}
	if found != 1 {
		t.Fatalf("want exactly one 'document too large' problem, got %d in %d problems", found, len(problemsOf(t, err)))
	}
}

func TestEmptyDocument(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{"", "# only a comment\n", "~\n", "---\n"} {
		_, err := Parse([]byte(doc), env(nil), "")
		wantProblem(t, err, "upstream.url", "required")
		wantProblem(t, err, "identity", "does not run unauthenticated")
	}
}

func TestNullLeavesDefault(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(minimalYAML+"listen:\nsession:\n  idle_timeout: ~\n"), env(nil), "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen.Address != DefaultListen || cfg.Session.IdleTimeout != DefaultIdleTimeout {
		t.Errorf("null did not leave the default: %q %v", cfg.Listen.Address, cfg.Session.IdleTimeout)
	}
}

func TestScalarConversions(t *testing.T) {
	t.Parallel()
	doc := minimalYAML + `
upstream_extra: 1
`
	_, err := Parse([]byte(doc), env(nil), "")
	wantProblem(t, err, "upstream_extra", "unknown key")

	cfg, err := Parse([]byte(`
upstream:
  url: http://crm.internal
  max_request_body: 0x100000
  max_idle_conns_per_host: 1_000
  auth: {type: header, header: X-Api-Key, value: 12345}
identity:
  bearer: {enabled: TRUE, issuer: https://id.example, audiences: [crmgate]}
policy: {paths: [rego]}
session: {redis: {tls: false}}
`), env(nil), "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Upstream.MaxRequestBody != 1<<20 || cfg.Upstream.MaxIdleConnsPerHost != 1000 {
		t.Errorf("integers: %d %d", cfg.Upstream.MaxRequestBody, cfg.Upstream.MaxIdleConnsPerHost)
	}
	if cfg.Upstream.Auth.Value != "12345" {
		t.Errorf("number into string field = %q", cfg.Upstream.Auth.Value)
	}
	if !cfg.Identity.Bearer.Enabled {
		t.Error("TRUE not decoded as true")
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	known := yamlFields(reflect.TypeFor[Upstream]())
	tests := []struct{ key, want string }{
		{"ulr", "url"},
		{"timout", "timeout"},
		{"dial_timeot", "dial_timeout"},
		{"x", ""},
		{"completely_different", ""},
		{strings.Repeat("a", 1000), ""},
	}
	for _, tc := range tests {
		t.Run(tc.key[:min(len(tc.key), 20)], func(t *testing.T) {
			if got := suggest(tc.key, known); got != tc.want {
				t.Errorf("suggest(%q) = %q, want %q", tc.key, got, tc.want)
			}
		})
	}
}
