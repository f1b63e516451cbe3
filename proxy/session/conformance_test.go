package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmgate/crmgate/policy"
)

// harness is one store under test plus the hooks the suite needs to look
// behind its interface.
type harness struct {
	store Store
	// advance moves time forward by d: the fake clock for Memory, the fake
	// clock and the wall clock (Redis expires keys in real time) for Redis.
	advance func(d time.Duration)
	// dropIndex removes the session from its user's index only, as a lost
	// race between Create and RevokeUser would.
	dropIndex func(t *testing.T, userID, id string)
	// dump returns every key and value the store holds.
	dump func(t *testing.T) [][]byte
}

// fakeClock is a settable clock shared by a store and its test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newSession(t *testing.T, user string) *Session {
	t.Helper()
	id, err := NewID()
	if err != nil {
		t.Fatal(err)
	}
	return sessionWithID(user, id)
}

func sessionWithID(user, id string) *Session {
	return &Session{
		ID: id,
		Subject: &policy.Subject{
			ID: user, Email: user + "@shop.example", Name: user,
			Roles: []string{"sales"}, Groups: []string{"sales"}, Teams: []string{"store-12"},
			Attributes: map[string]any{"crm_user_id": "u-17"},
			MFA:        true, AMR: []string{"pwd", "otp"}, ACR: "urn:crmgate:acr:mfa", Auth: "session",
		},
		IDToken:      "header.payload.sig",
		RefreshToken: []byte{0, 1, 2, 0xfe, 0xff},
		TokenExpiry:  time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC),
		AMR:          []string{"pwd", "otp"},
		ACR:          "urn:crmgate:acr:mfa",
		AuthTime:     time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
		SID:          "idp-session-1",
	}
}

func mustCreate(t *testing.T, h harness, s *Session, ttl time.Duration) {
	t.Helper()
	if err := h.store.Create(context.Background(), s, ttl); err != nil {
		t.Fatalf("Create: %v", err)
	}
}

func wantNotFound(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("%s: got %v, want ErrNotFound", what, err)
	}
}

func hashes(ss []*Session) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Hash
	}
	slices.Sort(out)
	return out
}

func sortedHashes(ss ...*Session) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = HashID(s.ID)
	}
	slices.Sort(out)
	return out
}

// runConformance is the behaviour every Store must have. Each subtest gets a
// fresh store from newHarness.
func runConformance(t *testing.T, newHarness func(t *testing.T) harness) {
	ctx := context.Background()
	const ttl = time.Hour

	t.Run("CreateGetRoundTrip", func(t *testing.T) {
		h := newHarness(t)
		s := newSession(t, "alice")
		mustCreate(t, h, s, ttl)
		if s.CreatedAt.IsZero() || s.LastSeen.IsZero() {
			t.Fatal("Create left CreatedAt/LastSeen zero")
		}
		got, err := h.store.Get(ctx, s.ID)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if got.ID != s.ID || got.Hash != HashID(s.ID) {
			t.Errorf("ID/Hash = %q/%q", got.ID, got.Hash)
		}
		sub := got.Subject
		if sub.ID != "alice" || sub.Email != "alice@shop.example" || !sub.MFA || !slices.Equal(sub.Roles, []string{"sales"}) ||
			!slices.Equal(sub.AMR, []string{"pwd", "otp"}) || sub.Attributes["crm_user_id"] != "u-17" {
			t.Errorf("subject = %+v", sub)
		}
		if got.IDToken != s.IDToken || !bytes.Equal(got.RefreshToken, s.RefreshToken) ||
			!got.TokenExpiry.Equal(s.TokenExpiry) || !got.AuthTime.Equal(s.AuthTime) ||
			got.ACR != s.ACR || !slices.Equal(got.AMR, s.AMR) || got.SID != s.SID {
			t.Errorf("session = %+v", got)
		}
		if !got.CreatedAt.Equal(s.CreatedAt) {
			t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, s.CreatedAt)
		}
		if d := got.LastSeen.Sub(s.LastSeen); d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("LastSeen = %v, want %v", got.LastSeen, s.LastSeen)
		}
		// A returned session is a copy.
		got.Subject.Roles[0] = "admin"
		again, err := h.store.Get(ctx, s.ID)
		if err != nil || again.Subject.Roles[0] != "sales" {
			t.Fatalf("store changed through a returned session: %v %v", again, err)
		}
	})

	t.Run("GetUnknownAndLookalikes", func(t *testing.T) {
		h := newHarness(t)
		s := newSession(t, "alice")
		mustCreate(t, h, s, ttl)
		for _, id := range []string{"", "nope", HashID(s.ID), s.ID[:42], s.ID + "A", " " + s.ID} {
			_, err := h.store.Get(ctx, id)
			wantNotFound(t, err, fmt.Sprintf("Get(%q)", id))
		}
	})

	t.Run("CreateRejectsBadInput", func(t *testing.T) {
		h := newHarness(t)
		good := newSession(t, "alice")
		noSubject := newSession(t, "alice")
		noSubject.Subject = nil
		emptyUser := newSession(t, "")
		shortID := newSession(t, "alice")
		shortID.ID = "chosen-by-client"
		tests := []struct {
			name string
			s    *Session
			ttl  time.Duration
		}{
			{"nil", nil, ttl},
			{"no subject", noSubject, ttl},
			{"empty user", emptyUser, ttl},
			{"client chosen id", shortID, ttl},
			{"empty id", &Session{Subject: good.Subject}, ttl},
			{"zero ttl", good, 0},
			{"negative ttl", good, -time.Second},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if err := h.store.Create(ctx, tc.s, tc.ttl); err == nil {
					t.Fatal("Create accepted it")
				}
			})
		}
		if n, err := h.store.Count(ctx); err != nil || n != 0 {
			t.Fatalf("Count = %d, %v after rejected creates", n, err)
		}
	})

	t.Run("CreateRefusesDuplicateID", func(t *testing.T) {
		h := newHarness(t)
		s := newSession(t, "alice")
		mustCreate(t, h, s, ttl)
		other := newSession(t, "mallory")
		other.ID = s.ID
		if err := h.store.Create(ctx, other, ttl); err == nil {
			t.Fatal("Create replaced an existing session")
		}
		got, err := h.store.Get(ctx, s.ID)
		if err != nil || got.Subject.ID != "alice" {
			t.Fatalf("Get = %v, %v; want alice's session", got, err)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		h := newHarness(t)
		s := newSession(t, "alice")
		mustCreate(t, h, s, 500*time.Millisecond)
		if _, err := h.store.Get(ctx, s.ID); err != nil {
			t.Fatalf("Get before expiry: %v", err)
		}
		h.advance(600 * time.Millisecond)
		_, err := h.store.Get(ctx, s.ID)
		wantNotFound(t, err, "Get after expiry")
		wantNotFound(t, h.store.Touch(ctx, s.ID, time.Now(), ttl), "Touch after expiry")
		if _, err := h.store.Get(ctx, s.ID); !errors.Is(err, ErrNotFound) {
			t.Fatal("Touch resurrected an expired session")
		}
		if n, err := h.store.Count(ctx); err != nil || n != 0 {
			t.Fatalf("Count = %d, %v after expiry", n, err)
		}
	})

	t.Run("TouchExtends", func(t *testing.T) {
		h := newHarness(t)
		s := newSession(t, "alice")
		// Wide margins: Redis expires in real time on a busy CI machine.
		mustCreate(t, h, s, 2*time.Second)
		h.advance(1200 * time.Millisecond)
		seen := s.LastSeen.Add(time.Minute)
		if err := h.store.Touch(ctx, s.ID, seen, 2*time.Second); err != nil {
			t.Fatalf("Touch: %v", err)
		}
		h.advance(1200 * time.Millisecond) // 2.4s after create: alive only if extended
		got, err := h.store.Get(ctx, s.ID)
		if err != nil {
			t.Fatalf("Get after touch: %v", err)
		}
		if !got.LastSeen.Equal(seen.Truncate(time.Microsecond)) {
			t.Errorf("LastSeen = %v, want %v", got.LastSeen, seen)
		}
		// LastSeen never goes back (a slow replica's late touch).
		if err := h.store.Touch(ctx, s.ID, seen.Add(-time.Hour), time.Second); err != nil {
			t.Fatal(err)
		}
		if got, _ := h.store.Get(ctx, s.ID); got == nil || !got.LastSeen.Equal(seen.Truncate(time.Microsecond)) {
			t.Errorf("LastSeen moved back to %v", got.LastSeen)
		}
		wantNotFound(t, h.store.Touch(ctx, "unknown", seen, ttl), "Touch unknown")
		if err := h.store.Touch(ctx, s.ID, seen, 0); err == nil {
			t.Error("Touch accepted ttl 0")
		}
	})

	t.Run("Update", func(t *testing.T) {
		h := newHarness(t)
		s := newSession(t, "alice")
		mustCreate(t, h, s, ttl)
		s.RefreshToken = []byte("rotated")
		s.IDToken = "new.id.token"
		if err := h.store.Update(ctx, s, ttl); err != nil {
			t.Fatalf("Update: %v", err)
		}
		got, err := h.store.Get(ctx, s.ID)
		if err != nil || string(got.RefreshToken) != "rotated" || got.IDToken != "new.id.token" {
			t.Fatalf("Get after Update = %+v, %v", got, err)
		}
		// Moving a session to another user would dodge RevokeUser(alice).
		moved := *s
		moved.Subject = &policy.Subject{ID: "mallory"}
		if err := h.store.Update(ctx, &moved, ttl); err == nil {
			t.Fatal("Update moved the session to another user")
		}
		if got, _ := h.store.Get(ctx, s.ID); got == nil || got.Subject.ID != "alice" {
			t.Fatalf("session changed owner: %+v", got)
		}
		gone := newSession(t, "alice")
		wantNotFound(t, h.store.Update(ctx, gone, ttl), "Update of missing session")
		if _, err := h.store.Get(ctx, gone.ID); !errors.Is(err, ErrNotFound) {
			t.Fatal("Update created a session")
		}
	})

	t.Run("Delete", func(t *testing.T) {
		h := newHarness(t)
		a, b := newSession(t, "alice"), newSession(t, "alice")
		mustCreate(t, h, a, ttl)
		mustCreate(t, h, b, ttl)
		if err := h.store.Delete(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		_, err := h.store.Get(ctx, a.ID)
		wantNotFound(t, err, "Get after Delete")
		if _, err := h.store.Get(ctx, b.ID); err != nil {
			t.Fatalf("Delete removed another session: %v", err)
		}
		if err := h.store.Delete(ctx, a.ID); err != nil {
			t.Fatalf("second Delete: %v", err)
		}
		if l, _ := h.store.ListUser(ctx, "alice"); !slices.Equal(hashes(l), sortedHashes(b)) {
			t.Fatalf("ListUser after Delete = %v", hashes(l))
		}
	})

	t.Run("DeleteHash", func(t *testing.T) {
		h := newHarness(t)
		a := newSession(t, "alice")
		mustCreate(t, h, a, ttl)
		for _, bad := range []string{"", "*", a.ID, "s:" + HashID(a.ID), HashID(a.ID)[:63]} {
			if err := h.store.DeleteHash(ctx, bad); err == nil {
				t.Errorf("DeleteHash(%q) accepted", bad)
			}
		}
		if _, err := h.store.Get(ctx, a.ID); err != nil {
			t.Fatalf("a bad DeleteHash removed the session: %v", err)
		}
		if err := h.store.DeleteHash(ctx, a.Hash); err != nil {
			t.Fatal(err)
		}
		_, err := h.store.Get(ctx, a.ID)
		wantNotFound(t, err, "Get after DeleteHash")
	})

	t.Run("RevokeUser", func(t *testing.T) {
		h := newHarness(t)
		a1, a2, b := newSession(t, "alice"), newSession(t, "alice"), newSession(t, "bob")
		// A user id that is a prefix of another must not catch it.
		al := newSession(t, "alic")
		for _, s := range []*Session{a1, a2, b, al} {
			mustCreate(t, h, s, ttl)
		}
		n, err := h.store.RevokeUser(ctx, "alice")
		if err != nil || n != 2 {
			t.Fatalf("RevokeUser = %d, %v; want 2", n, err)
		}
		for _, s := range []*Session{a1, a2} {
			_, err := h.store.Get(ctx, s.ID)
			wantNotFound(t, err, "Get of revoked session")
			wantNotFound(t, h.store.Touch(ctx, s.ID, time.Now(), ttl), "Touch of revoked session")
		}
		for _, s := range []*Session{b, al} {
			if _, err := h.store.Get(ctx, s.ID); err != nil {
				t.Fatalf("RevokeUser(alice) removed %s's session: %v", s.Subject.ID, err)
			}
		}
		if l, err := h.store.ListUser(ctx, "alice"); err != nil || len(l) != 0 {
			t.Fatalf("ListUser(alice) = %v, %v", hashes(l), err)
		}
		if n, err := h.store.RevokeUser(ctx, "alice"); err != nil || n != 0 {
			t.Fatalf("second RevokeUser = %d, %v", n, err)
		}
		if _, err := h.store.RevokeUser(ctx, ""); err == nil {
			t.Fatal("RevokeUser accepted an empty user id")
		}
		// A login after the revocation is a new session and works.
		h.advance(2 * time.Millisecond)
		later := newSession(t, "alice")
		mustCreate(t, h, later, ttl)
		if _, err := h.store.Get(ctx, later.ID); err != nil {
			t.Fatalf("session created after revocation: %v", err)
		}
	})

	t.Run("RevokeUserCatchesSessionMissingFromIndex", func(t *testing.T) {
		h := newHarness(t)
		hidden, indexed := newSession(t, "alice"), newSession(t, "alice")
		mustCreate(t, h, hidden, ttl)
		mustCreate(t, h, indexed, ttl)
		h.dropIndex(t, "alice", hidden.ID)
		if _, err := h.store.Get(ctx, hidden.ID); err != nil {
			t.Fatalf("session without index entry should still load before revocation: %v", err)
		}
		if n, err := h.store.RevokeUser(ctx, "alice"); err != nil || n != 1 {
			t.Fatalf("RevokeUser = %d, %v; want 1 (the indexed one)", n, err)
		}
		_, err := h.store.Get(ctx, hidden.ID)
		wantNotFound(t, err, "Get of unindexed session after revocation")
		if l, err := h.store.List(ctx, 100); err != nil || len(l) != 0 {
			t.Fatalf("List shows revoked sessions: %v, %v", hashes(l), err)
		}
	})

	t.Run("ListAndCount", func(t *testing.T) {
		h := newHarness(t)
		a, b, c := newSession(t, "alice"), newSession(t, "bob"), newSession(t, "bob")
		for _, s := range []*Session{a, b, c} {
			mustCreate(t, h, s, ttl)
		}
		all, err := h.store.List(ctx, 10)
		if err != nil || !slices.Equal(hashes(all), sortedHashes(a, b, c)) {
			t.Fatalf("List = %v, %v", hashes(all), err)
		}
		for _, s := range all {
			if s.ID != "" {
				t.Fatal("List returned a raw session id")
			}
		}
		if two, err := h.store.List(ctx, 2); err != nil || len(two) != 2 {
			t.Fatalf("List(2) = %d sessions, %v", len(two), err)
		}
		if _, err := h.store.List(ctx, 0); err == nil {
			t.Fatal("List(0) accepted")
		}
		bobs, err := h.store.ListUser(ctx, "bob")
		if err != nil || !slices.Equal(hashes(bobs), sortedHashes(b, c)) {
			t.Fatalf("ListUser(bob) = %v, %v", hashes(bobs), err)
		}
		if none, err := h.store.ListUser(ctx, "nobody"); err != nil || len(none) != 0 {
			t.Fatalf("ListUser(nobody) = %v, %v", none, err)
		}
		if n, err := h.store.Count(ctx); err != nil || n != 3 {
			t.Fatalf("Count = %d, %v", n, err)
		}
	})

	t.Run("ListSID", func(t *testing.T) {
		h := newHarness(t)
		withSID := func(user, sid string, ttl time.Duration) *Session {
			s := newSession(t, user)
			s.SID = sid
			mustCreate(t, h, s, ttl)
			return s
		}
		listSID := func(sid string) []string {
			t.Helper()
			l, err := h.store.ListSID(ctx, sid)
			if err != nil {
				t.Fatalf("ListSID(%q): %v", sid, err)
			}
			for _, s := range l {
				if s.ID != "" {
					t.Fatal("ListSID returned a raw session id")
				}
				if s.SID != sid {
					t.Fatalf("ListSID(%q) returned a session of sid %q", sid, s.SID)
				}
			}
			return hashes(l)
		}
		// One IdP session may carry sessions of several users (an IdP that
		// reuses sids across accounts): all are that IdP session's.
		a1, b1 := withSID("alice", "sid-1", ttl), withSID("bob", "sid-1", ttl)
		a2 := withSID("alice", "sid-2", ttl)
		withSID("alice", "", ttl)
		// A sid shaped like a pattern or another key's name matches only
		// itself.
		star := withSID("alice", "*", ttl)
		withSID("alice", "sid-1x", ttl)
		withSID("alice", "u:alice", ttl)
		if got := listSID("sid-1"); !slices.Equal(got, sortedHashes(a1, b1)) {
			t.Fatalf("ListSID(sid-1) = %v, want %v", got, sortedHashes(a1, b1))
		}
		if got := listSID("sid-2"); !slices.Equal(got, sortedHashes(a2)) {
			t.Fatalf("ListSID(sid-2) = %v", got)
		}
		if got := listSID("*"); !slices.Equal(got, sortedHashes(star)) {
			t.Fatalf("ListSID(*) = %v", got)
		}
		if got := listSID("sid-"); len(got) != 0 {
			t.Fatalf("ListSID(sid-) = %v, want none", got)
		}
		if _, err := h.store.ListSID(ctx, ""); err == nil {
			t.Fatal("ListSID accepted an empty sid")
		}

		// A deleted session leaves no live entry, whatever its index holds.
		if err := h.store.Delete(ctx, b1.ID); err != nil {
			t.Fatal(err)
		}
		if got := listSID("sid-1"); !slices.Equal(got, sortedHashes(a1)) {
			t.Fatalf("ListSID(sid-1) after Delete = %v", got)
		}
		if got := listSID("sid-1"); !slices.Equal(got, sortedHashes(a1)) {
			t.Fatalf("ListSID(sid-1) after its housekeeping = %v", got)
		}

		// Update moves a session from one sid to another, and out of every
		// sid when it loses its own.
		a2.SID = "sid-1"
		if err := h.store.Update(ctx, a2, ttl); err != nil {
			t.Fatal(err)
		}
		if got := listSID("sid-2"); len(got) != 0 {
			t.Fatalf("ListSID(sid-2) after the session moved = %v", got)
		}
		if got := listSID("sid-1"); !slices.Equal(got, sortedHashes(a1, a2)) {
			t.Fatalf("ListSID(sid-1) after the session moved in = %v", got)
		}
		a2.SID = ""
		if err := h.store.Update(ctx, a2, ttl); err != nil {
			t.Fatal(err)
		}
		if got := listSID("sid-1"); !slices.Equal(got, sortedHashes(a1)) {
			t.Fatalf("ListSID(sid-1) after the session lost its sid = %v", got)
		}
		a2.SID = "sid-2"
		if err := h.store.Update(ctx, a2, ttl); err != nil {
			t.Fatal(err)
		}
		if got := listSID("sid-2"); !slices.Equal(got, sortedHashes(a2)) {
			t.Fatalf("ListSID(sid-2) after the session got its sid back = %v", got)
		}

		// A revoked user's session is refused even when RevokeUser could not
		// find it through the user index.
		c := withSID("carol", "sid-3", ttl)
		h.dropIndex(t, "carol", c.ID)
		if got := listSID("sid-3"); !slices.Equal(got, sortedHashes(c)) {
			t.Fatalf("ListSID(sid-3) = %v", got)
		}
		h.advance(2 * time.Millisecond)
		if _, err := h.store.RevokeUser(ctx, "carol"); err != nil {
			t.Fatal(err)
		}
		if got := listSID("sid-3"); len(got) != 0 {
			t.Fatalf("ListSID(sid-3) after RevokeUser = %v", got)
		}

		// Expired sessions drop out; a session kept alive by Touch past the
		// ttl it was created with stays findable (its index must not expire
		// under it).
		short := withSID("dave", "sid-1", time.Second)
		kept := withSID("dave", "sid-4", time.Second)
		if got := listSID("sid-1"); !slices.Equal(got, sortedHashes(a1, short)) {
			t.Fatalf("ListSID(sid-1) = %v", got)
		}
		if err := h.store.Touch(ctx, kept.ID, time.Now(), ttl); err != nil {
			t.Fatal(err)
		}
		h.advance(2500 * time.Millisecond)
		if got := listSID("sid-1"); !slices.Equal(got, sortedHashes(a1)) {
			t.Fatalf("ListSID(sid-1) after expiry = %v", got)
		}
		if got := listSID("sid-4"); !slices.Equal(got, sortedHashes(kept)) {
			t.Fatalf("ListSID(sid-4) of a touched session = %v, want it", got)
		}
	})

	t.Run("LastSeen", func(t *testing.T) {
		h := newHarness(t)
		t0 := time.Date(2026, 11, 23, 12, 0, 0, 500, time.UTC)
		steps := []struct {
			user string
			at   time.Time
		}{
			{"alice", t0},
			{"bob", t0.Add(-48 * time.Hour)},
			{"alice", t0.Add(time.Hour)},
			{"alice", t0.Add(-time.Hour)}, // late report from a slow replica
		}
		for _, s := range steps {
			if err := h.store.SeenUser(ctx, s.user, s.at); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.store.SeenUser(ctx, "", t0); err == nil {
			t.Fatal("SeenUser accepted an empty user id")
		}
		got, err := h.store.LastSeen(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]time.Time{"alice": t0.Add(time.Hour).Truncate(time.Second), "bob": t0.Add(-48 * time.Hour).Truncate(time.Second)}
		if len(got) != len(want) {
			t.Fatalf("LastSeen = %v, want %v", got, want)
		}
		for u, w := range want {
			if !got[u].Equal(w) {
				t.Errorf("LastSeen[%s] = %v, want %v", u, got[u], w)
			}
		}
	})

	t.Run("RawIDNeverStored", func(t *testing.T) {
		h := newHarness(t)
		var ids []string
		for _, u := range []string{"alice", "bob", "alice"} {
			s := newSession(t, u)
			mustCreate(t, h, s, ttl)
			if err := h.store.Touch(ctx, s.ID, time.Now(), ttl); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, s.ID)
		}
		if _, err := h.store.RevokeUser(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
		blobs := h.dump(t)
		if len(blobs) == 0 {
			t.Fatal("dump found nothing: the check below would prove nothing")
		}
		for _, id := range ids {
			for _, b := range blobs {
				if bytes.Contains(b, []byte(id)) {
					t.Fatalf("raw session id stored in %q", b)
				}
			}
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		h := newHarness(t)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				user := fmt.Sprintf("user-%d", w%3)
				for range 20 {
					id, err := NewID()
					if err != nil {
						errs <- err
						return
					}
					s := sessionWithID(user, id)
					if err := h.store.Create(ctx, s, ttl); err != nil {
						errs <- err
						return
					}
					if _, err := h.store.Get(ctx, s.ID); err != nil && !errors.Is(err, ErrNotFound) {
						errs <- err // NotFound is fine: another worker may have revoked the user
						return
					}
					if err := h.store.Touch(ctx, s.ID, time.Now(), ttl); err != nil && !errors.Is(err, ErrNotFound) {
						errs <- err
						return
					}
					if _, err := h.store.ListUser(ctx, user); err != nil {
						errs <- err
						return
					}
					_ = h.store.SeenUser(ctx, user, time.Now())
					if w == 0 {
						if _, err := h.store.RevokeUser(ctx, "user-1"); err != nil {
							errs <- err
							return
						}
					} else if err := h.store.Delete(ctx, s.ID); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if _, err := h.store.List(ctx, 1000); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Lock", func(t *testing.T) {
		h := newHarness(t)
		s, other := newSession(t, "alice"), newSession(t, "alice")
		mustCreate(t, h, s, ttl)
		hash := HashID(s.ID)
		unlock, ok, err := h.store.Lock(ctx, hash, time.Minute)
		if err != nil || !ok || unlock == nil {
			t.Fatalf("first Lock = %v, %v", ok, err)
		}
		if _, ok, err := h.store.Lock(ctx, hash, time.Minute); err != nil || ok {
			t.Fatalf("second Lock while held = %v, %v; want refused", ok, err)
		}
		otherUnlock, ok, err := h.store.Lock(ctx, HashID(other.ID), time.Minute)
		if err != nil || !ok {
			t.Fatalf("Lock of another session = %v, %v; want its own lease", ok, err)
		}
		otherUnlock()
		unlock()
		again, ok, err := h.store.Lock(ctx, hash, time.Minute)
		if err != nil || !ok {
			t.Fatalf("Lock after unlock = %v, %v", ok, err)
		}
		again()
		// Concurrent takers: exactly one wins.
		var wg sync.WaitGroup
		var mu sync.Mutex
		var won []func()
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				u, ok, err := h.store.Lock(ctx, hash, time.Minute)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					won = append(won, u)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(won) != 1 {
			t.Fatalf("%d of 8 concurrent Locks won, want 1", len(won))
		}
		won[0]()
		for _, bad := range []string{"", "nope", s.ID, strings.ToUpper(hash), hash[:63], hash + "0", "*", "../" + hash[3:]} {
			if _, ok, err := h.store.Lock(ctx, bad, time.Minute); err == nil || ok {
				t.Errorf("Lock(%q) = %v, %v; want refused", bad, ok, err)
			}
		}
		if _, ok, err := h.store.Lock(ctx, hash, 0); err == nil || ok {
			t.Errorf("Lock with ttl 0 = %v, %v; want refused", ok, err)
		}
	})

	t.Run("LockExpires", func(t *testing.T) {
		h := newHarness(t)
		hash := HashID(newSession(t, "alice").ID)
		oldUnlock, ok, err := h.store.Lock(ctx, hash, 500*time.Millisecond)
		if err != nil || !ok {
			t.Fatalf("Lock = %v, %v", ok, err)
		}
		h.advance(600 * time.Millisecond)
		// A holder that never released (crashed replica) blocks others for
		// its ttl only.
		newUnlock, ok, err := h.store.Lock(ctx, hash, time.Minute)
		if err != nil || !ok {
			t.Fatalf("Lock after the lease ran out = %v, %v", ok, err)
		}
		// The old holder finishing late must not free the new holder's lease.
		oldUnlock()
		if _, ok, err := h.store.Lock(ctx, hash, time.Minute); err != nil || ok {
			t.Fatalf("Lock after the old holder's unlock = %v, %v; the new lease was released", ok, err)
		}
		newUnlock()
		if u, ok, err := h.store.Lock(ctx, hash, time.Minute); err != nil || !ok {
			t.Fatalf("Lock after the new holder's unlock = %v, %v", ok, err)
		} else {
			u()
		}
	})

	t.Run("Closed", func(t *testing.T) {
		h := newHarness(t)
		s := newSession(t, "alice")
		mustCreate(t, h, s, ttl)
		if err := h.store.Close(); err != nil {
			t.Fatal(err)
		}
		_, getErr := h.store.Get(ctx, s.ID)
		_, revErr := h.store.RevokeUser(ctx, "alice")
		_, listErr := h.store.List(ctx, 10)
		_, sidErr := h.store.ListSID(ctx, "sid-1")
		for name, err := range map[string]error{
			"Get": getErr, "Create": h.store.Create(ctx, newSession(t, "bob"), ttl),
			"Touch": h.store.Touch(ctx, s.ID, time.Now(), ttl), "Delete": h.store.Delete(ctx, s.ID),
			"RevokeUser": revErr, "List": listErr, "ListSID": sidErr, "Ping": h.store.Ping(ctx),
		} {
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("%s on closed store: %v, want ErrUnavailable", name, err)
			}
		}
		if _, ok, err := h.store.Lock(ctx, HashID(s.ID), time.Minute); ok || !errors.Is(err, ErrUnavailable) {
			t.Errorf("Lock on closed store: %v, %v, want ErrUnavailable", ok, err)
		}
	})
}
