package cli

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmgate/crmgate/proxy/session"
	refpolicy "github.com/crmgate/crmgate/rego"
	"github.com/crmgate/crmgate/test/testredis"
)

// referenceSetup writes a config using a copy of the reference policy (with
// edits applied to the named files) and returns the config path and the
// policy directory.
func referenceSetup(t *testing.T, extraConfig string, edits map[string][2]string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy")
	if err := os.Mkdir(pol, 0o755); err != nil {
		t.Fatal(err)
	}
	err := fs.WalkDir(refpolicy.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(refpolicy.FS, path)
		if err != nil {
			return err
		}
		if e, ok := edits[path]; ok {
			if !bytes.Contains(b, []byte(e[0])) {
				t.Fatalf("%s does not contain %q any more: update the test", path, e[0])
			}
			b = bytes.Replace(b, []byte(e[0]), []byte(e[1]), 1)
		}
		return os.WriteFile(filepath.Join(pol, path), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := validConfig + "metrics:\n  roles: [customer, sales, line_manager, inventory_manager, support, admin]\n" + extraConfig
	path := filepath.Join(dir, "crmgate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, pol
}

var revisionLine = regexp.MustCompile("Policy revision: `[0-9a-f]+`")

// TestReportAccessCLI checks that the command prints the report pinned by
// the golden file of policy/report for the reference policy.
func TestReportAccessCLI(t *testing.T) {
	cfg, _ := referenceSetup(t, "", nil)
	code, out, errs := runCLI("report", "access", "--config", cfg, "--remote-ip", "198.51.100.7")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want, err := os.ReadFile(filepath.Join("..", "..", "policy", "report", "testdata", "access.md"))
	if err != nil {
		t.Fatal(err)
	}
	got := revisionLine.ReplaceAllString(out, "Policy revision: `REVISION`")
	if got != string(want) {
		t.Errorf("report differs from policy/report/testdata/access.md:\n%s", out)
	}

	t.Run("html", func(t *testing.T) {
		code, out, errs := runCLI("report", "access", "--config", cfg, "--format", "html")
		if code != 0 || !strings.Contains(out, `<table id="actions">`) {
			t.Errorf("exit %d, stderr %s, output starts %.200q", code, errs, out)
		}
	})
	t.Run("extra role and samples", func(t *testing.T) {
		samples := filepath.Join(t.TempDir(), "samples.yaml")
		if err := os.WriteFile(samples, []byte("auditor:\n  id: a1\nsales:\n  attributes: {crm_user_id: u-sales3}\n  teams: [store-7]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errs := runCLI("report", "access", "--config", cfg, "--role", "auditor", "--subjects", samples)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if !strings.Contains(out, "- Roles: admin, auditor, customer") || !strings.Contains(out, "| sales | a") && !strings.Contains(out, `{"crm_user_id":"u-sales3"}`) {
			t.Errorf("roles or samples missing:\n%s", out)
		}
		// A role the reference policy does not know gets no row.
		if strings.Contains(out, "| auditor | allow") || strings.Contains(out, "| auditor | MFA") {
			t.Errorf("auditor granted something:\n%s", out)
		}
	})
	t.Run("usage errors", func(t *testing.T) {
		for _, args := range [][]string{
			{"report", "access", "--config", cfg, "--format", "pdf"},
			{"report", "access"},
			{"report", "bogus"},
			{"report"},
		} {
			if code, _, _ := runCLI(args...); code != 2 {
				t.Errorf("%v: exit %d, want 2", args, code)
			}
		}
		if code, _, errs := runCLI("report", "access", "--config", cfg, "--subjects", "/nonexistent"); code != 1 || !strings.Contains(errs, "subjects") {
			t.Errorf("missing samples file: exit %d %s", code, errs)
		}
	})
}

func TestReportAccessDiffCLI(t *testing.T) {
	_, oldDir := referenceSetup(t, "", nil)
	cfg, _ := referenceSetup(t, "", map[string][2]string{
		"crmgate.rego": {`"inventory_manager": {
		"product": {"list", "read", "create", "update", "relate", "delete"},`, `"inventory_manager": {
		"product": {"list", "read", "create", "update", "relate"},
		"account": {"list", "read"},`},
		"fields.rego": {`masked_fields[f] := "email" if {`, `masked_fields[f] := "redact" if {`},
	})
	code, out, errs := runCLI("report", "access", "--config", cfg, "--diff", oldDir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"## Accounts",
		"- + inventory_manager: list: deny → allow",
		"- − inventory_manager: delete: allow → deny",
		"- ~ sales: email1 mask email → redact",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("diff lacks %q:\n%s", want, out)
		}
	}
	if code, _, errs := runCLI("report", "access", "--config", cfg, "--diff", "/nonexistent"); code != 1 || !strings.Contains(errs, "--diff") {
		t.Errorf("missing old policy: exit %d %s", code, errs)
	}
}

func TestReportDormantCLI(t *testing.T) {
	t.Run("memory store has no history", func(t *testing.T) {
		cfg, _ := referenceSetup(t, "", nil)
		code, _, errs := runCLI("report", "dormant", "--days", "30", "--config", cfg)
		if code != 1 || !strings.Contains(errs, "last-seen times live only inside the running crmgate process") {
			t.Errorf("exit %d: %s", code, errs)
		}
	})
	t.Run("days required", func(t *testing.T) {
		cfg, _ := referenceSetup(t, "", nil)
		if code, _, _ := runCLI("report", "dormant", "--config", cfg); code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
	})
	t.Run("redis", func(t *testing.T) {
		addr := testredis.Addr()
		prefix := testredis.Prefix(t, testredis.Client(t))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		store := session.NewRedis(redis.NewClient(&redis.Options{Addr: addr}), prefix, nil)
		now := time.Now()
		for user, at := range map[string]time.Time{
			"dora-dormant": now.AddDate(0, 0, -45),
			"old-oscar":    now.AddDate(0, 0, -400),
			"active-alice": now.Add(-2 * time.Hour),
		} {
			if err := store.SeenUser(ctx, user, at); err != nil {
				t.Fatal(err)
			}
		}
		store.Close()
		cfg, _ := referenceSetup(t, "session:\n  store: redis\n  encryption_key: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n  redis:\n    addrs: ["+addr+"]\n    key_prefix: \""+prefix+"\"\n", nil)
		code, out, errs := runCLI("report", "dormant", "--days", "30", "--config", cfg)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if strings.Contains(out, "active-alice") {
			t.Errorf("active user listed:\n%s", out)
		}
		i, j := strings.Index(out, "old-oscar"), strings.Index(out, "dora-dormant")
		if i < 0 || j < 0 || i > j {
			t.Errorf("want old-oscar then dora-dormant:\n%s", out)
		}
		if !strings.Contains(out, "| dora-dormant | "+now.AddDate(0, 0, -45).UTC().Format("2006-01-02")) {
			t.Errorf("last-seen date missing:\n%s", out)
		}
	})
}

func TestExplainCLI(t *testing.T) {
	cfg, _ := referenceSetup(t, "", nil)
	dir := t.TempDir()
	aliceFile := filepath.Join(dir, "alice.json")
	alice := `{"id":"alice","roles":["sales"],"teams":["store-12"],"attributes":{"crm_user_id":"u-sales1"}}`
	if err := os.WriteFile(aliceFile, []byte(alice), 0o644); err != nil {
		t.Fatal(err)
	}
	sam := `{"id":"sam","roles":["admin"],"attributes":{"crm_user_id":"u-admin"}}`
	samMFA := `{"id":"sam","roles":["admin"],"mfa":true,"attributes":{"crm_user_id":"u-admin"}}`
	pat := `{"id":"pat","roles":["customer"],"attributes":{"account_id":"acc-1"}}`
	cases := []struct {
		name  string
		args  []string
		code  int
		want  []string
		avoid []string
	}{
		{"sales reads an account, masked", []string{"--subject", aliceFile, "--path", "/Api/V8/module/Accounts/42"}, 0,
			[]string{"decision         allow", "sales may read Accounts", "phone_work (last4)", `"action": "read"`, `"id": "42"`, `"groups": []`}, nil},
		{"inline subject, list with query", []string{"--subject", alice, "--path", "/Api/V8/module/Contacts?page%5Bsize%5D=5"}, 0,
			[]string{"action=list", `"page[size]"`}, nil},
		{"write to a read-only field is refused", []string{"--subject", alice, "--method", "PATCH", "--path", "/Api/V8/module",
			"--body", `{"data":{"type":"Accounts","id":"42","attributes":{"name":"x","cost":"1"}}}`}, 0,
			[]string{"deny (403: write to read-only fields)", "refused fields   cost", "writes           cost, name"}, nil},
		{"escaped name is the same field", []string{"--subject", alice, "--method", "PATCH", "--path", "/Api/V8/module",
			"--body", `{"data":{"type":"Accounts","id":"42","attributes":{"co\u0073t":"1"}}}`}, 0,
			[]string{"refused fields   cost"}, nil},
		{"admin without MFA is stepped up", []string{"--subject", sam, "--path", "/Api/V8/module/Accounts"}, 0,
			[]string{"step-up (401"}, []string{"decision         allow"}},
		{"admin with MFA", []string{"--subject", samMFA, "--path", "/Api/V8/module/Accounts"}, 0,
			[]string{"decision         allow", "admin may list Accounts"}, nil},
		{"customer may not delete cases", []string{"--subject", pat, "--method", "DELETE", "--path", "/Api/V8/module/Cases/c-9"}, 0,
			[]string{"deny (403: policy denied)", "no role of the subject may delete Cases"}, nil},
		{"record of another team", []string{"--subject", alice, "--path", "/Api/V8/module/Accounts/42",
			"--record", `{"id":"42","assigned_user_id":"u-sales3"}`}, 0,
			[]string{"deny (404: record rule denied)", "not visible"}, nil},
		{"own record", []string{"--subject", alice, "--path", "/Api/V8/module/Accounts/42",
			"--record", `{"id":"42","assigned_user_id":"u-sales1"}`}, 0,
			[]string{"decision         allow", "record           visible"}, nil},
		{"update of a record of another team", []string{"--subject", alice, "--method", "PATCH", "--path", "/Api/V8/module",
			"--body", `{"data":{"type":"Accounts","id":"42","attributes":{"name":"x"}}}`, "--record", `{"assigned_user_id":"u-sales3"}`}, 0,
			[]string{"deny (404: record rule denied)"}, nil},
		{"delete of a team member's lead", []string{"--subject", alice, "--method", "DELETE", "--path", "/Api/V8/module/Leads/7",
			"--record", `{"id":"7","assigned_user_id":"u-sales2"}`}, 0,
			[]string{"deny (403: record rule denied delete)"}, nil},
		{"unknown route", []string{"--subject", alice, "--path", "/Api/V8/module/Accounts/42/../../x"}, 0,
			[]string{"deny (400"}, []string{"input\n"}},
		{"body on a read", []string{"--subject", alice, "--path", "/Api/V8/module/Accounts/42", "--body", `{}`}, 0,
			[]string{"deny (400: unexpected body)"}, nil},
		{"rules", []string{"--subject", alice, "--path", "/Api/V8/module/Accounts/42", "--rules"}, 0,
			[]string{"rules\n", "  allow = true", `  class = "account"`}, nil},
		{"misspelled subject key", []string{"--subject", `{"id":"alice","role":["admin"]}`, "--path", "/Api/V8/module/Accounts"}, 1, nil, nil},
		{"subject without id", []string{"--subject", `{"roles":["admin"]}`, "--path", "/Api/V8/module/Accounts"}, 1, nil, nil},
		{"absolute URL", []string{"--subject", alice, "--path", "http://evil/Api/V8/module/Accounts"}, 1, nil, nil},
		{"bad record", []string{"--subject", alice, "--path", "/Api/V8/module/Accounts/1", "--record", "[1]"}, 1, nil, nil},
		{"missing path", []string{"--subject", alice}, 2, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runCLI(append([]string{"explain", "--config", cfg,
				// In the reference policy's context: a Monday, 13:00 in
				// Berlin, from an office network.
				"--remote-ip", "198.51.100.7", "--time", "2026-11-23T12:00:00Z"}, c.args...)...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, out, errs)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, a := range c.avoid {
				if strings.Contains(out, a) {
					t.Errorf("output has %q:\n%s", a, out)
				}
			}
		})
	}
}
