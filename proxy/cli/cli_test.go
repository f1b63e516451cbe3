package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const validConfig = `
upstream:
  url: http://127.0.0.1:9
crm:
  profile: suitecrm8
identity:
  bearer:
    enabled: true
    issuer: http://127.0.0.1:9/idp
    audiences: [crmgate]
policy:
  paths: [policy]
`

// writeSetup writes a config and a policy directory and returns the config path.
func writeSetup(t *testing.T, cfg string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "policy"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, "policy", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "crmgate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Run(args, &out, &errb, "test")
	return code, out.String(), errb.String()
}

func TestCheck(t *testing.T) {
	goodPolicy := "package crmgate\n\ndefault allow := false\n\nallow if input.subject.roles[_] == \"admin\"\n"
	goodTest := "package crmgate_test\n\nimport data.crmgate\n\ntest_admin if crmgate.allow with input as {\"subject\": {\"roles\": [\"admin\"]}}\n"
	cases := []struct {
		name    string
		cfg     string
		files   map[string]string
		code    int
		wantOut []string
		wantErr []string
	}{
		{"valid", validConfig, map[string]string{"p.rego": goodPolicy, "p_test.rego": goodTest}, 0,
			[]string{"config", "ok", "policy: compiled", "1 passed, 0 failed"}, nil},
		{"misspelled key names its path", strings.Replace(validConfig, "  url:", "  ulr:", 1), map[string]string{"p.rego": goodPolicy}, 1,
			nil, []string{"upstream.ulr: unknown key"}},
		{"rego syntax error names file and line", validConfig, map[string]string{"p.rego": "package crmgate\n\nallow if {\n  input.x ==\n"}, 1,
			nil, []string{"p.rego:"}},
		{"misspelled contract rule is warned about", validConfig, map[string]string{"p.rego": goodPolicy + "\nrecord_alow := false\n"}, 0,
			[]string{"warning", "record_alow"}, nil},
		{"failing policy test", validConfig, map[string]string{"p.rego": goodPolicy,
			"p_test.rego": "package crmgate_test\n\nimport data.crmgate\n\ntest_nobody if crmgate.allow with input as {\"subject\": {\"roles\": []}}\n"}, 1,
			[]string{"FAIL", "test_nobody", "0 passed, 1 failed"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeSetup(t, c.cfg, c.files)
			code, out, errs := runCLI("check", "--config", path)
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, out, errs)
			}
			for _, w := range c.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range c.wantErr {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
		})
	}
}

func TestUsage(t *testing.T) {
	if code, _, errs := runCLI(); code != 2 || !strings.Contains(errs, "Usage") {
		t.Errorf("no args: exit %d, %s", code, errs)
	}
	if code, _, errs := runCLI("frobnicate"); code != 2 || !strings.Contains(errs, "unknown command") {
		t.Errorf("unknown command: exit %d, %s", code, errs)
	}
	for _, cmd := range []string{"serve", "check", "demo"} {
		if code, _, errs := runCLI(cmd, "--help"); code != 0 || !strings.Contains(errs, "Usage: crmgate "+cmd) {
			t.Errorf("%s --help: exit %d, %s", cmd, code, errs)
		}
	}
	if code, _, errs := runCLI("serve"); code != 2 || !strings.Contains(errs, "--config is required") {
		t.Errorf("serve without config: exit %d, %s", code, errs)
	}
	if code, out, _ := runCLI("version"); code != 0 || !strings.HasPrefix(out, "crmgate ") {
		t.Errorf("version: exit %d, %s", code, out)
	}
}
