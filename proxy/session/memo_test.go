package session

import (
	"testing"
	"time"

	"github.com/crmgate/crmgate/policy"
)

// TestDecodeMemoFollowsTheBytes: the memo answers only for the very bytes
// it decoded; a changed record under the same hash is decoded anew, and a
// caller changing what it got changes nothing for the next caller.
func TestDecodeMemoFollowsTheBytes(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	mk := func(role string) []byte {
		s := &Session{ID: "memo-test-id", Subject: &policy.Subject{ID: "alice", Roles: []string{role}, Auth: "session",
			Attributes: map[string]any{"crm_user_id": "u-1"}}, CreatedAt: now, AMR: []string{"pwd"}}
		b, err := encode("test", s, time.Hour, false)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const hash = "memo-test-hash"
	sales, admin := mk("sales"), mk("admin")
	a, err := decode("get", hash, sales, now)
	if err != nil {
		t.Fatal(err)
	}
	a.Subject.Roles[0] = "admin"
	a.Subject.Attributes["crm_user_id"] = "u-2"
	a.AMR[0] = "otp"
	b, err := decode("get", hash, sales, now)
	if err != nil {
		t.Fatal(err)
	}
	if b.Subject.Roles[0] != "sales" || b.Subject.Attributes["crm_user_id"] != "u-1" || b.AMR[0] != "pwd" {
		t.Fatalf("second decode saw the first caller's changes: %+v %+v", b.Subject, b.AMR)
	}
	if b.Subject == a.Subject {
		t.Fatal("two decodes share a Subject")
	}
	c, err := decode("get", hash, admin, now)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject.Roles[0] != "admin" {
		t.Fatalf("changed record under the same hash answered from the memo: %v", c.Subject.Roles)
	}
	// A record that fails to decode is never remembered as good.
	if _, err := decode("get", hash, []byte(`{"v":1}`), now); err == nil {
		t.Fatal("record without subject decoded")
	}
}
