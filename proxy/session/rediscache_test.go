package session

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmgate/crmgate/test/testredis"
)

// cachedPair is replica A (a cached store whose tracking connection goes
// through addr) and replica B (an uncached store) on one prefix.
func cachedPair(t *testing.T, trackingAddr string) (a, b *Redis, f redisFixture) {
	t.Helper()
	f = newRedisFixture(t, true)
	a = NewRedis(redis.NewClient(&redis.Options{Addr: testredis.Addr()}), f.prefix, time.Now)
	a.cache = startCache(&redis.UniversalOptions{Addrs: []string{trackingAddr}, MaxRetries: -1,
		DialTimeout: 200 * time.Millisecond, ClientName: trackerName(f.prefix)}, f.prefix, a.client, nil)
	t.Cleanup(func() { a.Close() })
	waitServing(t, a)
	return a, f.redis, f
}

// getTwice reads s on a until a read is answered from the cache (the
// invalidation of s's creation may arrive after the first read and drop
// it), and fails if none is within a second.
func getTwice(t *testing.T, a *Redis, s *Session) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		before := a.cache.hits.Load()
		if _, err := a.Get(ctx, s.ID); err != nil {
			t.Fatalf("Get: %v", err)
		}
		if a.cache.hits.Load() > before {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no Get was answered from the cache within a second")
}

// Every change another replica (or anyone with Redis access) makes to a
// session or its user is seen by a cached replica on its very next Get.
func TestRedisCacheSeesOtherReplicasWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := map[string]struct {
		change func(t *testing.T, b *Redis, f redisFixture, s *Session)
		check  func(t *testing.T, got *Session, err error)
	}{
		"revoke user": {
			change: func(t *testing.T, b *Redis, _ redisFixture, s *Session) {
				if _, err := b.RevokeUser(ctx, s.Subject.ID); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, _ *Session, err error) { wantNotFound(t, err, "after revoke") },
		},
		"revocation marker only": {
			// A lost race can leave the session key in place with only the
			// marker set: the marker alone must end it.
			change: func(t *testing.T, b *Redis, f redisFixture, s *Session) {
				if err := f.admin.Set(ctx, f.prefix+"r:"+s.Subject.ID, micro(time.Now()), 0).Err(); err != nil {
					t.Fatal(err)
				}
				settle(t, b)
			},
			check: func(t *testing.T, _ *Session, err error) { wantNotFound(t, err, "after marker") },
		},
		"delete": {
			change: func(t *testing.T, b *Redis, _ redisFixture, s *Session) {
				if err := b.Delete(ctx, s.ID); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, _ *Session, err error) { wantNotFound(t, err, "after delete") },
		},
		"roles changed": {
			change: func(t *testing.T, b *Redis, _ redisFixture, s *Session) {
				s.Subject.Roles = []string{"demoted"}
				if err := b.Update(ctx, s, time.Hour); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, got *Session, err error) {
				if err != nil || len(got.Subject.Roles) != 1 || got.Subject.Roles[0] != "demoted" {
					t.Fatalf("after update: %+v, %v; want the new roles", got, err)
				}
			},
		},
		"record corrupted": {
			// Writes made outside crmgate carry no barrier; settle is the
			// one a tool would run.
			change: func(t *testing.T, b *Redis, f redisFixture, s *Session) {
				if err := f.admin.HSet(ctx, f.prefix+"s:"+HashID(s.ID), "d", "not json").Err(); err != nil {
					t.Fatal(err)
				}
				settle(t, b)
			},
			check: func(t *testing.T, got *Session, err error) {
				if err == nil {
					t.Fatalf("after corruption: %+v, want an error", got)
				}
			},
		},
		"key deleted by hand": {
			change: func(t *testing.T, b *Redis, f redisFixture, s *Session) {
				if err := f.admin.Del(ctx, f.prefix+"s:"+HashID(s.ID)).Err(); err != nil {
					t.Fatal(err)
				}
				settle(t, b)
			},
			check: func(t *testing.T, _ *Session, err error) { wantNotFound(t, err, "after DEL") },
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a, b, f := cachedPair(t, testredis.Addr())
			s := newSession(t, "alice")
			if err := b.Create(ctx, s, time.Hour); err != nil {
				t.Fatal(err)
			}
			getTwice(t, a, s)
			c.change(t, b, f, s)
			got, err := a.Get(ctx, s.ID)
			c.check(t, got, err)
		})
	}
}

func settle(t *testing.T, r *Redis) {
	t.Helper()
	if err := r.settle(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
}

// A session created elsewhere is found at once: misses are not cached.
func TestRedisCacheKeepsNoMisses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b, _ := cachedPair(t, testredis.Addr())
	s := newSession(t, "alice")
	_, err := a.Get(ctx, s.ID)
	wantNotFound(t, err, "before create")
	if err := b.Create(ctx, s, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, s.ID); err != nil {
		t.Fatalf("after create elsewhere: %v", err)
	}
}

// An entry does not outlive its key's TTL even when no invalidation comes.
func TestRedisCacheHonoursTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b, _ := cachedPair(t, testredis.Addr())
	s := newSession(t, "alice")
	if err := b.Create(ctx, s, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	getTwice(t, a, s)
	time.Sleep(400 * time.Millisecond)
	_, err := a.Get(ctx, s.ID)
	wantNotFound(t, err, "after the TTL")
}

// Killing the tracking connection (a Redis restart, CLIENT KILL, a
// proxy timeout, an output-buffer limit) loses invalidations: a revocation
// made while it is down is still refused, and the cache serves again once
// it is back.
func TestRedisCacheTrackingConnectionKilled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b, f := cachedPair(t, testredis.Addr())
	s, other := newSession(t, "alice"), newSession(t, "bob")
	for _, x := range []*Session{s, other} {
		if err := b.Create(ctx, x, time.Hour); err != nil {
			t.Fatal(err)
		}
		getTwice(t, a, x)
	}
	id := trackingClientID(t, f.admin, f.prefix)
	if err := f.admin.ClientKillByFilter(ctx, "ID", id).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RevokeUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	_, err := a.Get(ctx, s.ID)
	wantNotFound(t, err, "revoked while the tracking connection was down")
	waitServing(t, a)
	if trackingClientID(t, f.admin, f.prefix) == id {
		t.Fatal("the tracking connection was not replaced")
	}
	getTwice(t, a, other)
}

// trackingClientID finds the tracking connection of the cache on prefix
// (cachedPair names it after the prefix).
func trackingClientID(t *testing.T, admin *redis.Client, prefix string) string {
	t.Helper()
	list, err := admin.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(list, "\n") {
		if !strings.Contains(line, " name="+trackerName(prefix)+" ") {
			continue
		}
		for _, field := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(field, "id="); ok {
				return v
			}
		}
	}
	t.Fatalf("no tracking connection for %s in CLIENT LIST", prefix)
	return ""
}

func trackerName(prefix string) string {
	return "cache-" + strings.NewReplacer(":", "-").Replace(prefix)
}

// A tracking connection that goes silent without closing (a network
// partition, a hung proxy) loses invalidations without any error: the
// cache stops serving within cacheSilence, so a revocation made during the
// silence holds once that has passed.
func TestRedisCacheTrackingConnectionSilent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fw := newFreezer(t, testredis.Addr())
	a, b, _ := cachedPair(t, fw.addr)
	s := newSession(t, "alice")
	if err := b.Create(ctx, s, time.Hour); err != nil {
		t.Fatal(err)
	}
	getTwice(t, a, s)
	fw.freeze()
	if _, err := b.RevokeUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(cacheSilence + 100*time.Millisecond)
	_, err := a.Get(ctx, s.ID)
	wantNotFound(t, err, "revoked while the tracking connection was silent")
	if a.cache.serving() {
		t.Fatal("cache still serving after its tracking connection went silent")
	}
}

// freezer forwards TCP to target until frozen; then it holds every
// connection open and passes nothing, as a partition would.
type freezer struct {
	addr   string
	frozen atomic.Bool
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{addr: l.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 && !f.frozen.Load() {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				if err != io.EOF {
					dst.Close()
				}
				return
			}
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, u)
			mu.Unlock()
			wg.Add(2)
			go pipe(u, c)
			go pipe(c, u)
		}
	}()
	return f
}

func (f *freezer) freeze() { f.frozen.Store(true) }

// A read that raced an invalidation is not stored: it may hold what the
// invalidation was about.
func TestCacheDropsReadsThatRacedAnInvalidation(t *testing.T) {
	c := &localCache{sessionPrefix: "p:s:", markerPrefix: "p:r:", barrierPrefix: "p:s:~b:", entries: map[string]cacheEntry{},
		acks: make(chan string, 1), wake: make(chan struct{}, 1)}
	goLive := func() {
		c.up()
		c.own = "mine"
		c.regAt = time.Now()
		c.invalidate(&redis.Message{PayloadSlice: []string{"p:s:~b:mine"}})
	}
	goLive()
	e := cacheEntry{expires: time.Now().Add(time.Minute)}
	for name, between := range map[string]func(){
		"invalidated key":    func() { c.invalidate(&redis.Message{PayloadSlice: []string{"p:s:h1"}}) },
		"other key":          func() { c.invalidate(&redis.Message{PayloadSlice: []string{"p:s:h2"}}) },
		"revocation marker":  func() { c.invalidate(&redis.Message{PayloadSlice: []string{"p:r:alice"}}) },
		"flush":              func() { c.invalidate(&redis.Message{}) },
		"local write":        func() { c.drop("h1") },
		"connection dropped": func() { c.down(); goLive() },
	} {
		_, gen, _ := c.get("h1")
		between()
		c.put("h1", gen, e)
		if _, _, ok := c.get("h1"); ok {
			t.Errorf("%s: a read that started before it was stored", name)
		}
	}
	_, gen, _ := c.get("h1")
	c.put("h1", gen, e)
	if _, _, ok := c.get("h1"); !ok {
		t.Fatal("an undisturbed read was not stored")
	}
	c.invalidate(&redis.Message{PayloadSlice: []string{"p:r:bob"}})
	if _, _, ok := c.get("h1"); ok {
		t.Fatal("a revocation marker left entries in place")
	}
}

// A Redis user without the CLIENT command (a tight ACL) cannot track: the
// cache never serves, says why, and every read goes to Redis.
func TestRedisCacheWithoutClientCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newRedisFixture(t, true)
	user := "crmgate-test-" + strings.Trim(strings.NewReplacer(":", "-").Replace(f.prefix), "-")
	if err := f.admin.Do(ctx, "ACL", "SETUSER", user, "on", ">pw-"+user, "~*", "&*", "+@all", "-client").Err(); err != nil {
		t.Fatal(err)
	}
	// f.admin is closed after this runs: cleanups run last-registered first.
	t.Cleanup(func() { f.admin.Do(context.Background(), "ACL", "DELUSER", user) })
	warned := make(chan error, 16)
	o := &redis.UniversalOptions{Addrs: []string{testredis.Addr()}, Username: user, Password: "pw-" + user}
	a := OpenRedis(o, f.prefix, true, func(err error) {
		select {
		case warned <- err:
		default:
		}
	})
	defer a.Close()
	if !a.Cached() {
		t.Fatal("OpenRedis with localCache on a single node has no cache")
	}
	select {
	case err := <-warned:
		if !strings.Contains(strings.ToLower(err.Error()), "permission") && !strings.Contains(err.Error(), "NOPERM") {
			t.Errorf("warning %q does not say what is missing", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no warning about the tracking connection")
	}
	s := newSession(t, "alice")
	if err := f.store.Create(ctx, s, time.Hour); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := a.Get(ctx, s.ID); err != nil {
			t.Fatalf("Get without tracking: %v", err)
		}
	}
	if h := a.cache.hits.Load(); h != 0 || a.cache.serving() {
		t.Fatalf("cache served %d reads without a tracking connection", h)
	}
	if _, err := f.store.RevokeUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	_, err := a.Get(ctx, s.ID)
	wantNotFound(t, err, "after revoke")
}

// A replica that shuts down withdraws its registration, so writers do not
// wait for it to run out.
func TestRedisCacheWithdrawsOnClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b, f := cachedPair(t, testredis.Addr())
	if n, err := f.admin.HLen(ctx, f.prefix+"caches").Result(); err != nil || n != 1 {
		t.Fatalf("registry holds %d entries (%v), want 1", n, err)
	}
	a.Close()
	if n, err := f.admin.HLen(ctx, f.prefix+"caches").Result(); err != nil || n != 0 {
		t.Fatalf("registry holds %d entries after Close (%v), want 0", n, err)
	}
	settle(t, b)
}
