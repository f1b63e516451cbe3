package deploy

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const unitPath = "systemd/crmgate.service"

// unitDirectives parses a systemd unit into section.key → values (a key
// may repeat). Continuation lines are not used by crmgate's unit and are
// refused, so a parse that silently drops half a directive cannot pass.
func unitDirectives(t *testing.T, unit []byte) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(unit))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
		case strings.HasSuffix(line, `\`):
			t.Fatalf("line %d: continuation lines are not supported by this check", n)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("line %d: not a directive: %q", n, line)
			}
			out[section+"."+strings.TrimSpace(k)] = append(out[section+"."+strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return out
}

// hardeningProblems lists what a crmgate unit must have and lacks.
func hardeningProblems(d map[string][]string) []string {
	var probs []string
	want := map[string]string{
		"Service.DynamicUser":             "yes",
		"Service.NoNewPrivileges":         "yes",
		"Service.ProtectSystem":           "strict",
		"Service.ProtectHome":             "yes",
		"Service.PrivateTmp":              "yes",
		"Service.PrivateDevices":          "yes",
		"Service.ProtectKernelTunables":   "yes",
		"Service.ProtectKernelModules":    "yes",
		"Service.ProtectControlGroups":    "yes",
		"Service.RestrictSUIDSGID":        "yes",
		"Service.MemoryDenyWriteExecute":  "yes",
		"Service.CapabilityBoundingSet":   "",
		"Service.AmbientCapabilities":     "",
		"Service.SystemCallArchitectures": "native",
	}
	for k, v := range want {
		got, ok := d[k]
		if !ok || got[len(got)-1] != v {
			probs = append(probs, k+"="+v+" missing (got "+strings.Join(got, ",")+")")
		}
	}
	for _, k := range []string{"Service.RestrictAddressFamilies", "Service.SystemCallFilter"} {
		if len(d[k]) == 0 {
			probs = append(probs, k+" missing")
		}
	}
	for _, k := range []string{"Service.User", "Service.Group"} {
		if len(d[k]) > 0 {
			probs = append(probs, k+" set: DynamicUser must choose the user")
		}
	}
	return probs
}

// TestSystemdUnitHardening checks the directives crmgate relies on; the
// weakened copies must fail, or the check is not checking.
func TestSystemdUnitHardening(t *testing.T) {
	t.Parallel()
	unit := readFile(t, unitPath)
	d := unitDirectives(t, unit)
	for _, p := range hardeningProblems(d) {
		t.Error(p)
	}
	start := d["Service.ExecStart"]
	if len(start) != 1 || start[0] != "/usr/local/bin/crmgate serve --config "+imageConfigPath(t) {
		t.Errorf("ExecStart %q, want crmgate serve with the same config path as the image", start)
	}
	for _, weaken := range []struct{ name, from, to string }{
		{"no DynamicUser", "DynamicUser=yes", "DynamicUser=no"},
		{"root user", "DynamicUser=yes", "DynamicUser=yes\nUser=root"},
		{"capabilities kept", "CapabilityBoundingSet=\n", "CapabilityBoundingSet=CAP_NET_ADMIN\n"},
		{"writable system", "ProtectSystem=strict", "ProtectSystem=full"},
		{"new privileges", "NoNewPrivileges=yes", ""},
	} {
		t.Run(weaken.name, func(t *testing.T) {
			w := bytes.Replace(unit, []byte(weaken.from), []byte(weaken.to), 1)
			if bytes.Equal(w, unit) {
				t.Fatalf("%q not found in the unit", weaken.from)
			}
			if len(hardeningProblems(unitDirectives(t, w))) == 0 {
				t.Error("weakened unit passed the hardening check")
			}
		})
	}
}

// testableUnit copies the unit into dir with the crmgate binary replaced by
// a stand-in (systemd-analyze verify insists that executables exist) and
// the environment file made optional.
func testableUnit(t *testing.T, dir string, unit []byte) string {
	t.Helper()
	bin := filepath.Join(dir, "crmgate")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	u := strings.ReplaceAll(string(unit), "/usr/local/bin/crmgate", bin)
	u = strings.Replace(u, "EnvironmentFile=/", "EnvironmentFile=-/", 1)
	p := filepath.Join(dir, "crmgate.service")
	if err := os.WriteFile(p, []byte(u), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSystemdAnalyze runs systemd's own checks: verify (unknown or
// misspelt directives, bad values, missing executables: any output is a
// failure, since verify exits 0 on unknown keys) and the offline security
// assessment, whose exposure must stay at 2.0 or below.
func TestSystemdAnalyze(t *testing.T) {
	t.Parallel()
	sa := requireTool(t, "systemd-analyze")
	unit := readFile(t, unitPath)
	run := func(t *testing.T, u []byte, args ...string) (string, error) {
		t.Helper()
		p := testableUnit(t, t.TempDir(), u)
		out, err := exec.Command(sa, append(args, p)...).CombinedOutput()
		return string(out), err
	}
	t.Run("verify", func(t *testing.T) {
		out, err := run(t, unit, "verify")
		if err != nil || strings.TrimSpace(out) != "" {
			t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
		}
	})
	t.Run("verify catches a misspelt directive", func(t *testing.T) {
		out, err := run(t, bytes.Replace(unit, []byte("ProtectSystem="), []byte("ProtectSytem="), 1), "verify")
		if err == nil && strings.TrimSpace(out) == "" {
			t.Fatal("systemd-analyze verify was silent about ProtectSytem")
		}
	})
	t.Run("security", func(t *testing.T) {
		out, err := run(t, unit, "security", "--offline=yes", "--threshold=20", "--no-pager")
		if err != nil {
			t.Fatalf("systemd-analyze security: exposure above 2.0: %v\n%s", err, out)
		}
	})
	t.Run("security fails an unhardened unit", func(t *testing.T) {
		var bare []string
		for _, l := range strings.Split(string(unit), "\n") {
			if k, _, ok := strings.Cut(l, "="); ok && strings.ContainsAny(k[:1], "PRSCNDLMU") && k != "Restart" && k != "RestartSec" {
				continue
			}
			bare = append(bare, l)
		}
		if _, err := run(t, []byte(strings.Join(bare, "\n")), "security", "--offline=yes", "--threshold=20", "--no-pager"); err == nil {
			t.Fatal("an unhardened unit passed the security threshold")
		}
	})
}
