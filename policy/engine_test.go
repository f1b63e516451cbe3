package policy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"
)

// mapFS builds a policy source from file name → content.
func mapFS(files map[string]string) Source {
	fsys := fstest.MapFS{}
	for name, body := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(body)}
	}
	return Source{FS: fsys}
}

func load(t *testing.T, files map[string]string) *Engine {
	t.Helper()
	e, err := Load(context.Background(), Options{Source: mapFS(files)})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return e
}

func salesInput() *Input {
	return &Input{
		Subject: &Subject{
			ID: "alice", Roles: []string{"sales"}, Teams: []string{"store-12"},
			Attributes: map[string]any{"crm_user_id": "u-sales1"}, Auth: "session",
		},
		Request:  Request{ID: "req-1", Method: "GET", Path: "/Api/V8/module/Contacts", Time: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)},
		Resource: Resource{CRM: "suitecrm8", Module: "Contacts", Action: "list"},
	}
}

func TestLoadErrorsNameThePlace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files map[string]string
		opts  func(*Options)
		want  []string
	}{
		{
			name:  "rego syntax error",
			files: map[string]string{"crmgate.rego": "package crmgate\n\nallow if {\n  input.x ==\n}\n"},
			want:  []string{"load policy: ", "crmgate.rego:", "rego_parse_error"},
		},
		{
			name:  "rego compile error",
			files: map[string]string{"crmgate.rego": "package crmgate\n\nallow if {\n\tx == 1\n}\n"},
			want:  []string{"crmgate.rego:4", "rego_unsafe_var_error"},
		},
		{
			name:  "strict mode",
			files: map[string]string{"crmgate.rego": "package crmgate\n\nimport data.foo\n\nallow := true\n"},
			want:  []string{"crmgate.rego:3", "rego_compile_error"},
		},
		{
			name: "bad json",
			files: map[string]string{
				"crmgate.rego": "package crmgate\n\nallow := true\n",
				"data.json":    "{\n  \"a\": 1,\n  \"b\": ]\n}\n",
			},
			want: []string{"data.json:3:8", "data_parse_error"},
		},
		{
			name: "truncated json",
			files: map[string]string{
				"crmgate.rego": "package crmgate\n\nallow := true\n",
				"data.json":    "{\n  \"a\": 1,\n",
			},
			want: []string{"data.json:3:1", "data_parse_error"},
		},
		{
			name: "bad yaml",
			files: map[string]string{
				"crmgate.rego":  "package crmgate\n\nallow := true\n",
				"sub/data.yaml": "a: 1\nb: [1, 2\n",
			},
			want: []string{"sub/data.yaml", "data_parse_error", "line"},
		},
		{
			name: "root data not an object",
			files: map[string]string{
				"crmgate.rego": "package crmgate\n\nallow := true\n",
				"data.json":    "[1, 2]",
			},
			want: []string{"data.json", "must hold an object"},
		},
		{
			name: "conflicting data files",
			files: map[string]string{
				"crmgate.rego": "package crmgate\n\nallow := true\n",
				"a.json":       `{"users": {"u1": 1}}`,
				"b.json":       `{"users": {"u1": 2}}`,
			},
			want: []string{"b.json", "data.users.u1 is already set"},
		},
		{
			name:  "no module in the package",
			files: map[string]string{"other.rego": "package other\n\nallow := true\n"},
			want:  []string{"no policy module declares package crmgate"},
		},
		{
			name:  "bad package option",
			files: map[string]string{"crmgate.rego": "package crmgate\n"},
			opts:  func(o *Options) { o.Package = "crm gate" },
			want:  []string{"load policy: package", "not a dotted Rego identifier"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := Options{Source: mapFS(tt.files)}
			if tt.opts != nil {
				tt.opts(&opts)
			}
			e, err := Load(context.Background(), opts)
			if err == nil {
				t.Fatalf("Load succeeded (revision %s), want error", e.Revision())
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadFromDiskWithNestedData(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("policy/crmgate.rego", `package crmgate

allow if data.teams.store.open == true

reasons contains data.greeting

reasons contains sprintf("%d", [data.limits.max])
`)
	write("policy/teams/store/data.yaml", "open: true\n")
	write("policy/limits/data.yml", "max: 5\n")
	write("policy/.git/junk.json", "not json")
	write("policy/README.md", "# ignored")
	write("policy/crmgate_test.rego", "package crmgate_test\n\ntest_broken if {\n") // never parsed by Load
	write("extra.json", `{"greeting": "hello"}`)

	e, err := Load(context.Background(), Options{Source: Source{Paths: []string{filepath.Join(dir, "policy"), filepath.Join(dir, "extra.json")}}})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	d, err := e.Decide(context.Background(), salesInput())
	if err != nil {
		t.Fatalf("decide: %v", err)
	}
	if !d.Allow {
		t.Error("allow = false, want true from data.teams.store.open")
	}
	if got, want := strings.Join(d.Reasons, ","), "5,hello"; got != want {
		t.Errorf("reasons = %q, want %q", got, want)
	}

	if _, err := Load(context.Background(), Options{Source: Source{Paths: []string{filepath.Join(dir, "policy", "README.md")}}}); err == nil {
		t.Error("naming a non-policy file explicitly loaded without error")
	}
	if _, err := Load(context.Background(), Options{Source: Source{Paths: []string{filepath.Join(dir, "missing")}}}); err == nil {
		t.Error("a missing path loaded without error")
	}
	if _, err := Load(context.Background(), Options{}); err == nil {
		t.Error("an empty source loaded without error")
	}
}

func TestCustomPackageRoot(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"p.rego":     "package acme.crm\n\nallow := true\n",
		"other.rego": "package crmgate\n\nallow := false\n",
	}
	e, err := Load(context.Background(), Options{Source: mapFS(files), Package: "acme.crm"})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	d, err := e.Decide(context.Background(), salesInput())
	if err != nil || !d.Allow {
		t.Fatalf("decide = %+v, %v; want allow from acme.crm", d, err)
	}
	def := load(t, files)
	if def.Revision() == e.Revision() {
		t.Error("same files under another package root have the same revision")
	}
}

func TestRevisionChangesIffPolicyChanges(t *testing.T) {
	t.Parallel()
	base := map[string]string{
		"crmgate.rego":      "package crmgate\n\nallow := true\n",
		"data.json":         `{"a": 1}`,
		"crmgate_test.rego": "package crmgate_test\n\ntest_a if true\n",
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for x, y := range base {
			m[x] = y
		}
		m[k] = v
		return m
	}
	r0 := load(t, base).Revision()
	if len(r0) != 16 {
		t.Errorf("revision %q: want 16 hex digits", r0)
	}
	if r := load(t, base).Revision(); r != r0 {
		t.Errorf("same content: revision %s != %s", r, r0)
	}
	for name, files := range map[string]map[string]string{
		"policy changed": with("crmgate.rego", "package crmgate\n\nallow := false\n"),
		"data changed":   with("data.json", `{"a": 2}`),
		"file added":     with("more.rego", "package crmgate\n\nreasons contains \"x\"\n"),
	} {
		if r := load(t, files).Revision(); r == r0 {
			t.Errorf("%s: revision unchanged", name)
		}
	}
	if r := load(t, with("crmgate_test.rego", "package crmgate_test\n\ntest_b if true\n")).Revision(); r != r0 {
		t.Errorf("only a test changed: revision %s != %s", r, r0)
	}
}

func TestWarningsFindUnreadRules(t *testing.T) {
	t.Parallel()
	e := load(t, map[string]string{
		"crmgate.rego": `package crmgate

allow if is_sales

is_sales if "sales" in input.subject.roles

owner := input.record.assigned_user_id

record_alow if owner == input.subject.attributes.crm_user_id

record_hidden_fields contains f if {
	some f in secret_fields
}

secret_fields := {"salary"}

hiden_fields contains "cost"

func_helper(x) := x

reasons contains func_helper("ok")
`,
		"helpers.rego": "package crmgate.helpers\n\nunused := 1\n",
	})
	w := e.Warnings()
	joined := strings.Join(w, "\n")
	for _, want := range []string{
		"crmgate.rego:9: rule record_alow is not read by crmgate and no contract rule uses it (did you mean record_allow?)",
		"rule owner is not read",
		"rule hiden_fields is not read by crmgate and no contract rule uses it (did you mean hidden_fields?)",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings do not contain %q:\n%s", want, joined)
		}
	}
	for _, quiet := range []string{"is_sales", "secret_fields", "func_helper", "unused"} {
		if strings.Contains(joined, "rule "+quiet+" ") {
			t.Errorf("warned about %s, which a contract rule uses or is outside the root package:\n%s", quiet, joined)
		}
	}
	if len(w) != 3 {
		t.Errorf("got %d warnings, want 3:\n%s", len(w), joined)
	}
}

func TestReloadKeepsOldPolicyOnError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "crmgate.rego")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("package crmgate\n\nallow := true\n")
	ctx := context.Background()
	e, err := Load(ctx, Options{Source: Source{Paths: []string{dir}}})
	if err != nil {
		t.Fatal(err)
	}
	r0 := e.Revision()

	for name, broken := range map[string]string{
		"syntax":     "package crmgate\n\nallow := \n",
		"compile":    "package crmgate\n\nallow if x\n",
		"no package": "package other\n\nallow := true\n",
	} {
		write(broken)
		err := e.Reload(ctx)
		if err == nil || !strings.HasPrefix(err.Error(), "reload policy: ") {
			t.Errorf("%s: reload error = %v, want a reload policy error", name, err)
		}
		if e.Revision() != r0 {
			t.Errorf("%s: revision changed to %s after a failed reload", name, e.Revision())
		}
		d, err := e.Decide(ctx, salesInput())
		if err != nil || !d.Allow || d.Revision != r0 {
			t.Errorf("%s: after failed reload decide = %+v, %v; want the old policy's allow", name, d, err)
		}
	}

	write("package crmgate\n\nallow := false\n")
	if err := e.Reload(ctx); err != nil {
		t.Fatalf("reload of a good policy: %v", err)
	}
	d, err := e.Decide(ctx, salesInput())
	if err != nil || d.Allow || d.Revision == r0 {
		t.Errorf("after good reload decide = %+v, %v; want the new policy's deny with a new revision", d, err)
	}
}

func TestConcurrentDecideDuringReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "crmgate.rego")
	policies := []string{
		"package crmgate\n\nallow := true\n\nreasons contains \"v1\"\n",
		"package crmgate\n\nallow := true\n\nreasons contains \"v2\"\n",
	}
	if err := os.WriteFile(file, []byte(policies[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e, err := Load(ctx, Options{Source: Source{Paths: []string{dir}}})
	if err != nil {
		t.Fatal(err)
	}
	subject := salesInput().Subject // shared, as sessions share it
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				in := salesInput()
				in.Subject = subject
				d, err := e.Decide(ctx, in)
				if err != nil || !d.Allow || len(d.Reasons) != 1 {
					t.Errorf("decide during reload = %+v, %v", d, err)
					return
				}
			}
		}()
	}
	for i := range 20 {
		if err := os.WriteFile(file, []byte(policies[i%2]), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := e.Reload(ctx); err != nil {
			t.Errorf("reload: %v", err)
		}
	}
	close(stop)
	wg.Wait()
}

func TestTestRunsRegoTests(t *testing.T) {
	t.Parallel()
	src := mapFS(map[string]string{
		"crmgate.rego": "package crmgate\n\nallow if input.ok\n",
		"crmgate_test.rego": `package crmgate_test

import data.crmgate

test_allows if crmgate.allow with input as {"ok": true}

test_fails if crmgate.allow with input as {"ok": false}

test_errors if to_number("nope") == 1
`,
	})
	results, err := Test(context.Background(), src)
	if err != nil {
		t.Fatalf("test: %v", err)
	}
	got := map[string]TestResult{}
	for _, r := range results {
		got[r.Name] = r
	}
	if r := got["test_allows"]; !r.Pass || r.Fail || r.Err != nil || r.Package != "data.crmgate_test" {
		t.Errorf("test_allows = %+v, want pass", r)
	}
	if r := got["test_fails"]; r.Pass || !r.Fail {
		t.Errorf("test_fails = %+v, want fail", r)
	}
	if r := got["test_errors"]; r.Pass || r.Err == nil {
		t.Errorf("test_errors = %+v, want error", r)
	}
	if !strings.HasPrefix(got["test_fails"].Location, "crmgate_test.rego:") {
		t.Errorf("location = %q", got["test_fails"].Location)
	}

	_, err = Test(context.Background(), mapFS(map[string]string{"x_test.rego": "package x\n\ntest_a if {\n"}))
	if err == nil || !strings.Contains(err.Error(), "x_test.rego:") {
		t.Errorf("broken test file: error = %v, want one naming the file", err)
	}
}

func TestDecideFailsClosedOnCancelledContext(t *testing.T) {
	t.Parallel()
	e := load(t, map[string]string{"crmgate.rego": "package crmgate\n\nallow if {\n\tsome i in numbers.range(1, 1000000)\n\ti < 0\n}\n"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d, err := e.Decide(ctx, salesInput())
	if err == nil || d.Allow {
		t.Errorf("decide with cancelled context = %+v, %v; want error", d, err)
	}
	if !strings.HasPrefix(err.Error(), "decide: ") {
		t.Errorf("error %q lacks the operation prefix", err)
	}
}

func loadDir(t *testing.T, dir, policy string) *Engine {
	t.Helper()
	rewrite(t, dir, policy)
	e, err := Load(context.Background(), Options{Source: Source{Paths: []string{dir}}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func rewrite(t *testing.T, dir, policy string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "crmgate.rego"), []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
}
