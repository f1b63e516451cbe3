package cli

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readsLine is one decision event as proxy/audit writes it (the fields the
// report reads; proxy/app's TestReportReadsFromTheDecisionLog checks the
// real writer).
func readsLine(ts, subject, module, action, outcome string, status int, ids ...string) string {
	ev := map[string]any{"level": "info", "timestamp": ts, "msg": "decision", "decision_id": "d-" + ts,
		"subject": map[string]any{"id": subject, "roles": []string{"sales"}}, "module": module, "action": action,
		"outcome": outcome, "status": status, "records_returned": len(ids), "record_ids": ids}
	if action == "read" && len(ids) == 1 {
		ev["record_id"] = ids[0]
	}
	b, _ := json.Marshal(ev)
	return string(b) + "\n"
}

// TestReportReadsCLI: the two auditors' questions from the command line,
// over a live log file and its gzip'd backup found through --config.
func TestReportReadsCLI(t *testing.T) {
	dir := t.TempDir()
	old := readsLine("2026-12-05T09:00:00Z", "sam", "Accounts", "read", "allow", 200, "42") +
		readsLine("2026-12-05T10:00:00Z", "alice", "Accounts", "list", "allow", 200, "7", "42")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(old))
	_ = zw.Close()
	if err := os.WriteFile(filepath.Join(dir, "decisions-2026-12-06T00-00-00.000.log.gz"), gz.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	live := readsLine("2026-12-06T11:00:00Z", "sam", "Contacts", "list", "allow", 200, "c-1", "c-2") +
		readsLine("2026-12-06T12:00:00Z", "bob", "Accounts", "read", "deny", 403) +
		"not json\n" +
		readsLine("2026-12-06T13:00:00Z", "sam", "Accounts", "read", "allow", 200, "43")
	if err := os.WriteFile(filepath.Join(dir, "decisions.log"), []byte(live), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeSetup(t, validConfig+"decision_log:\n  output: file\n  file: "+filepath.Join(dir, "decisions.log")+"\n", map[string]string{"p.rego": "package crmgate\n"})

	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Run(append([]string{"report", "reads"}, args...), &out, &errb, "test")
		return code, out.String(), errb.String()
	}
	code, out, errs := run("--record", "42", "--config", cfg)
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, "sam") || !strings.Contains(out, "alice") {
		t.Errorf("who read 42: %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(errs, "2 reads") || !strings.Contains(errs, "1 malformed") {
		t.Errorf("summary: %s", errs)
	}
	code, out, _ = run("--user", "sam", "--since", "2026-12-06", "--log", dir, "--format", "csv")
	if code != 0 || strings.Count(out, "\n") != 3 || !strings.Contains(out, "c-1 c-2") || strings.Contains(out, "2026-12-05") {
		t.Errorf("what sam read since the 6th: %d\n%s", code, out)
	}
	code, out, _ = run("--user", "sam", "--module", "Accounts", "--log", dir, "--format", "json")
	if code != 0 || strings.Count(out, "\n") != 2 {
		t.Errorf("sam's Accounts reads: %d\n%s", code, out)
	}
	for _, bad := range [][]string{
		{"--log", dir},    // neither --user nor --record
		{"--user", "sam"}, // no source
		{"--user", "sam", "--log", dir, "--since", "yesterday"},
		{"--user", "sam", "--log", dir, "--format", "xml"},
	} {
		if code, _, _ := run(bad...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
	if code, _, errs := run("--user", "sam", "--config", writeSetup(t, validConfig, map[string]string{"p.rego": "package crmgate\n"})); code != 1 || !strings.Contains(errs, "--log") {
		t.Errorf("a config without a decision-log file: %d %s", code, errs)
	}
}
