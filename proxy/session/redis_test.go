package session

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmgate/crmgate/test/testredis"
)

func scanKeys(t testing.TB, c *redis.Client, prefix string) []string {
	t.Helper()
	var keys []string
	iter := c.Scan(context.Background(), 0, prefix+"*", 1000).Iterator()
	for iter.Next(context.Background()) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("scan %s*: %v", prefix, err)
	}
	return keys
}

type redisFixture struct {
	harness
	admin  *redis.Client
	prefix string
	redis  *Redis
}

// newRedisFixture is a store as crmgate runs it: with the replica-local
// cache, unless uncached.
func newRedisFixture(t *testing.T, uncached ...bool) redisFixture {
	admin := testredis.Client(t)
	prefix := testredis.Prefix(t, admin)
	// Redis expires keys in real time, so the store runs on a fake clock
	// that advance keeps level with the wall clock.
	clock := newFakeClock(time.Now())
	r := NewRedis(redis.NewClient(&redis.Options{Addr: testredis.Addr()}), prefix, clock.Now)
	if len(uncached) == 0 || !uncached[0] {
		r.cache = startCache(&redis.UniversalOptions{Addrs: []string{testredis.Addr()}}, prefix, r.client, nil)
		waitServing(t, r)
	}
	t.Cleanup(func() { r.Close() })
	f := redisFixture{admin: admin, prefix: prefix, redis: r}
	f.harness = harness{
		store: r,
		advance: func(d time.Duration) {
			clock.Add(d)
			time.Sleep(d)
		},
		dropIndex: func(t *testing.T, userID, id string) {
			if err := admin.SRem(context.Background(), prefix+"u:"+userID, HashID(id)).Err(); err != nil {
				t.Fatal(err)
			}
		},
		dump: func(t *testing.T) [][]byte { return dumpRedis(t, admin, prefix) },
	}
	return f
}

// dumpRedis returns every key under prefix and everything stored in it.
func dumpRedis(t *testing.T, c *redis.Client, prefix string) [][]byte {
	ctx := context.Background()
	var out [][]byte
	for _, k := range scanKeys(t, c, prefix) {
		out = append(out, []byte(k))
		typ, err := c.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var vals []string
		switch typ {
		case "string":
			v, err := c.Get(ctx, k).Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				t.Fatal(err)
			}
			vals = []string{v}
		case "hash":
			m, err := c.HGetAll(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			for f, v := range m {
				vals = append(vals, f, v)
			}
		case "set":
			if vals, err = c.SMembers(ctx, k).Result(); err != nil {
				t.Fatal(err)
			}
		case "zset":
			if vals, err = c.ZRange(ctx, k, 0, -1).Result(); err != nil {
				t.Fatal(err)
			}
		case "none":
		default:
			t.Fatalf("unexpected key type %s for %s", typ, k)
		}
		for _, v := range vals {
			out = append(out, []byte(v))
		}
	}
	return out
}

func TestRedisConformance(t *testing.T) {
	t.Parallel()
	runConformance(t, func(t *testing.T) harness { return newRedisFixture(t).harness })
}

func TestRedisConformanceUncached(t *testing.T) {
	t.Parallel()
	runConformance(t, func(t *testing.T) harness { return newRedisFixture(t, true).harness })
}

// waitServing waits until r's cache has subscribed to invalidations.
func waitServing(t testing.TB, r *Redis) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !r.cache.serving() {
		if time.Now().After(deadline) {
			t.Fatal("session cache did not start serving within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The store's keys follow the documented layout and TTLs follow the ttl
// each call passes, so Redis (not crmgate) expires sessions everywhere.
func TestRedisLayoutAndTTL(t *testing.T) {
	t.Parallel()
	f := newRedisFixture(t)
	ctx := context.Background()
	s := newSession(t, "alice")
	mustCreate(t, f.harness, s, time.Hour)
	key := f.prefix + "s:" + HashID(s.ID)
	pttl, err := f.admin.PTTL(ctx, key).Result()
	if err != nil || pttl <= 59*time.Minute || pttl > time.Hour {
		t.Fatalf("PTTL after Create = %v, %v; want ~1h", pttl, err)
	}
	if err := f.store.Touch(ctx, s.ID, time.Now(), 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	// Touch sets the ttl it is given, even a shorter one: the caller caps it
	// at the absolute lifetime.
	if pttl, _ = f.admin.PTTL(ctx, key).Result(); pttl <= 9*time.Minute || pttl > 10*time.Minute {
		t.Fatalf("PTTL after Touch = %v; want ~10m", pttl)
	}
	idx, err := f.admin.PTTL(ctx, f.prefix+"u:alice").Result()
	if err != nil || idx < time.Hour {
		t.Fatalf("index PTTL = %v, %v; want at least the longest session ttl", idx, err)
	}
	if ok, _ := f.admin.SIsMember(ctx, f.prefix+"u:alice", HashID(s.ID)).Result(); !ok {
		t.Fatal("session hash missing from user index")
	}
	if _, err := f.admin.ZScore(ctx, f.prefix+"all", HashID(s.ID)).Result(); err != nil {
		t.Fatalf("session hash missing from all: %v", err)
	}
	if _, err := f.store.RevokeUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.admin.Exists(ctx, key).Result(); n != 0 {
		t.Fatal("RevokeUser left the session key")
	}
	if v, err := f.admin.Get(ctx, f.prefix+"r:alice").Int64(); err != nil || v == 0 {
		t.Fatalf("revocation marker = %d, %v", v, err)
	}
}

// Another replica (a second store on the same prefix) sees logins and
// revocations at once: nothing is cached per replica.
func TestRedisReplicasShareState(t *testing.T) {
	t.Parallel()
	f := newRedisFixture(t)
	ctx := context.Background()
	other := NewRedis(redis.NewClient(&redis.Options{Addr: testredis.Addr()}), f.prefix, time.Now)
	defer other.Close()
	s := newSession(t, "alice")
	mustCreate(t, f.harness, s, time.Hour)
	if _, err := other.Get(ctx, s.ID); err != nil {
		t.Fatalf("replica B cannot see replica A's session: %v", err)
	}
	if _, err := other.RevokeUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	_, err := f.store.Get(ctx, s.ID)
	wantNotFound(t, err, "replica A after replica B revoked")
}

// A record that does not decode is an error, never an anonymous or
// partial session.
func TestRedisCorruptRecord(t *testing.T) {
	t.Parallel()
	f := newRedisFixture(t)
	ctx := context.Background()
	s := newSession(t, "alice")
	mustCreate(t, f.harness, s, time.Hour)
	key := f.prefix + "s:" + HashID(s.ID)
	for _, bad := range []string{`{"v":1,"subject":null}`, `{"v":2,"subject":{"id":"alice"}}`, `not json`} {
		if err := f.admin.HSet(ctx, key, "d", bad).Err(); err != nil {
			t.Fatal(err)
		}
		if got, err := f.store.Get(ctx, s.ID); err == nil {
			t.Fatalf("Get of record %q = %+v, want error", bad, got)
		}
	}
	// An unreadable revocation marker must not read as "never revoked".
	if err := f.admin.HSet(ctx, key, "d", `{"v":1,"subject":{"id":"alice"}}`).Err(); err != nil {
		t.Fatal(err)
	}
	if err := f.admin.Set(ctx, f.prefix+"r:alice", "garbage", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Get(ctx, s.ID); err == nil {
		t.Fatal("Get succeeded with an unreadable revocation marker")
	}
}

// With Redis down every operation reports ErrUnavailable (so the proxy
// fails closed with 503) and none reports ErrNotFound (which would read as
// "log in again" and hide the outage) or success.
func TestRedisUnavailable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens here now
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	r := NewRedis(c, "crmgate-test:down:", time.Now)
	defer r.Close()
	ctx := context.Background()
	s := newSession(t, "alice")
	_, getErr := r.Get(ctx, s.ID)
	_, revErr := r.RevokeUser(ctx, "alice")
	_, luErr := r.ListUser(ctx, "alice")
	_, lErr := r.List(ctx, 5)
	_, cErr := r.Count(ctx)
	_, lsErr := r.LastSeen(ctx)
	tests := map[string]error{
		"Create":     r.Create(ctx, s, time.Hour),
		"Get":        getErr,
		"Update":     r.Update(ctx, s, time.Hour),
		"Touch":      r.Touch(ctx, s.ID, time.Now(), time.Hour),
		"Delete":     r.Delete(ctx, s.ID),
		"DeleteHash": r.DeleteHash(ctx, HashID(s.ID)),
		"RevokeUser": revErr,
		"ListUser":   luErr,
		"List":       lErr,
		"Count":      cErr,
		"SeenUser":   r.SeenUser(ctx, "alice", time.Now()),
		"LastSeen":   lsErr,
		"Ping":       r.Ping(ctx),
	}
	for name, err := range tests {
		t.Run(name, func(t *testing.T) {
			if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) {
				t.Fatalf("err = %v, want ErrUnavailable", err)
			}
			if !strings.Contains(err.Error(), "session") && !strings.Contains(err.Error(), "last seen") &&
				!strings.Contains(err.Error(), "user activity") {
				t.Errorf("error %q does not name the operation", err)
			}
		})
	}
}

// Redis must not stall the proxy past the request's deadline.
func TestRedisHonoursContext(t *testing.T) {
	t.Parallel()
	f := newRedisFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.store.Get(ctx, "whatever")
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with cancelled context = %v; want ErrUnavailable wrapping context.Canceled", err)
	}
}

// An index entry is only a hint: a foreign hash planted in a user's index
// (a collision, a bug, a hand edit) must not let RevokeUser(alice) end bob's
// session, nor ListUser(alice) show it.
func TestRedisIndexIsNotTrusted(t *testing.T) {
	t.Parallel()
	f := newRedisFixture(t)
	ctx := context.Background()
	a, b := newSession(t, "alice"), newSession(t, "bob")
	mustCreate(t, f.harness, a, time.Hour)
	mustCreate(t, f.harness, b, time.Hour)
	plant := func() {
		if err := f.admin.SAdd(ctx, f.prefix+"u:alice", HashID(b.ID)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	plant()
	l, err := f.store.ListUser(ctx, "alice")
	if err != nil || len(l) != 1 || l[0].Subject.ID != "alice" {
		t.Fatalf("ListUser(alice) = %v, %v; want only alice's session", hashes(l), err)
	}
	plant() // ListUser dropped the foreign entry; put it back for RevokeUser
	if n, err := f.store.RevokeUser(ctx, "alice"); err != nil || n != 1 {
		t.Fatalf("RevokeUser(alice) = %d, %v; want 1", n, err)
	}
	if _, err := f.store.Get(ctx, b.ID); err != nil {
		t.Fatalf("RevokeUser(alice) ended bob's session: %v", err)
	}
}
