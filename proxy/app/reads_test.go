package app_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/crmgate/crmgate/policy/report"
)

// TestReportReadsFromTheDecisionLog: the reads report answers from the
// events crmgate itself writes, so a change to the event shape that broke
// it would show here: who read acc-1 (a read and a list naming it, not the
// denied attempt), and what alice read.
func TestReportReadsFromTheDecisionLog(t *testing.T) {
	e := newEnv(t, "suitecrm8")
	for _, r := range []struct{ persona, path string }{
		{"alice", "/Api/V8/module/Accounts/acc-1"},
		{"alice", "/Api/V8/module/Accounts?page[size]=20"},
		{"pat", "/Api/V8/module/Accounts"},
		{"ivan", "/Api/V8/module/Accounts/acc-1"}, // denied: inventory sees no customers
		{"alice", "/Api/V8/module/Accounts/acc-1/relationships/contacts"},
	} {
		e.do("GET", r.path, r.persona, "")
	}
	log := filepath.Join(t.TempDir(), "decisions.log")
	lines := e.flushLog()
	if len(lines) != 5 {
		t.Fatalf("%d decision events", len(lines))
	}
	e.dlog.mu.Lock()
	err := os.WriteFile(log, e.dlog.buf.Bytes(), 0o600)
	e.dlog.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	files, err := report.LogFiles([]string{log})
	if err != nil {
		t.Fatal(err)
	}
	scan := func(q report.ReadQuery) (who []string, actions []string) {
		t.Helper()
		st, err := report.ScanReads(context.Background(), files, q, func(r report.Read) error {
			who = append(who, r.Subject)
			actions = append(actions, r.Action)
			return nil
		})
		if err != nil || st.Malformed != 0 || st.Lines != 5 {
			t.Fatalf("scan: %+v %v", st, err)
		}
		return who, actions
	}
	who, actions := scan(report.ReadQuery{Record: "acc-1", Module: "Accounts"})
	if !slices.Equal(who, []string{"alice", "alice", "pat"}) || !slices.Equal(actions, []string{"read", "list", "list"}) {
		t.Errorf("readers of acc-1: %v %v, want alice (read, list) and pat (list)", who, actions)
	}
	who, actions = scan(report.ReadQuery{Record: "c-1", Module: "Contacts"})
	if !slices.Equal(who, []string{"alice"}) {
		t.Errorf("readers of contact c-1 (through the account's related list): %v %v", who, actions)
	}
	_, actions = scan(report.ReadQuery{User: "alice"})
	if len(actions) != 3 {
		t.Errorf("alice's reads: %v, want 3", actions)
	}
}
