package session

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// The replica-local cache lets a Redis store answer Get without a round
// trip, which on a busy replica is most of what a session costs (Redis's
// own CPU and two syscalls per request). It is kept honest by Redis
// server-assisted client-side caching: a dedicated connection asks Redis to
// broadcast (CLIENT TRACKING BCAST) every change to a session key or a
// revocation marker under the store's prefix, and each change drops the
// entries it concerns.
//
// Invalidations travel asynchronously, so on their own they would leave a
// window (well under a millisecond) in which another replica still serves a
// session just revoked. Writes that take access away (revocation, logout, a
// changed record) close it with a barrier (Redis.settle): after the change
// the writer sets a barrier key under the tracked prefix and reads the
// registry of caches; each of those caches acknowledges the barrier once it
// has processed everything Redis sent before it, and the writer returns
// when all have, or when the registration of those that did not has run
// out. A cache renews its registration only while it hears its tracking
// connection and stops serving before the registration it last renewed runs
// out, so a cache that cannot acknowledge has stopped serving by then.
// Redis's clock times registrations, so replicas' clocks do not matter.
//
// Each time the tracking connection (re)subscribes, the cache starts a new
// incarnation: it forgets everything, registers under a new id, sets a
// barrier of its own and serves only once that barrier comes back. So it
// serves only after it has processed every invalidation sent before it
// registered, and a writer that read the registry before that registration
// has nothing to wait for from it.
//
// Otherwise the cache fails closed towards Redis, never towards stale data:
// it serves nothing while its tracking connection is down or has been
// silent for cacheSilence (a ping goes out every cachePing), an entry lives
// no longer than cacheMaxAge nor past the key's TTL in Redis, and a read
// that raced an invalidation is not kept.
const (
	cacheMaxAge  = 5 * time.Second
	cachePing    = 250 * time.Millisecond
	cacheSilence = time.Second
	// cacheMaxEntries bounds memory: past it the cache is emptied and
	// refills with the sessions in use.
	cacheMaxEntries = 100_000
	trackingChannel = "__redis__:invalidate"
	// barrierInfix marks barrier keys among session keys (session hashes
	// are hex, so no session key can look like one).
	barrierInfix = "~b:"
	// barrierWait bounds how long a writer waits for a cache that keeps
	// renewing its registration but does not acknowledge.
	barrierWait = 5 * time.Second
)

type cacheEntry struct {
	f         storedFields
	revokedAt time.Time
	expires   time.Time
}

type localCache struct {
	sessionPrefix, markerPrefix, barrierPrefix string
	registry                                   string // hash: incarnation id -> registration expiry (Redis ms)
	ackPrefix                                  string // list per barrier token: incarnations that processed it
	client                                     redis.UniversalClient
	acks                                       chan string   // barrier tokens to acknowledge
	warn                                       func(error)   // told when the tracking connection fails
	wake                                       chan struct{} // asks report to act now

	mu      sync.RWMutex
	entries map[string]cacheEntry // by session hash
	// gen changes with every invalidation and every change of state, so a
	// read that started before one of them is not stored after it.
	gen uint64
	// subscribed: the tracking connection is subscribed; live: and this
	// incarnation's own barrier has come back.
	subscribed, live bool
	// incarnation is the registry id since the last subscription; own is
	// the token of its barrier once set.
	incarnation, own string
	heard            time.Time // last message or pong on the tracking connection
	// regAt is when the last registration of this incarnation that
	// succeeded was sent.
	regAt time.Time
	// gone are incarnations to withdraw from the registry.
	gone []string

	// hits and misses count lookups (metrics; tests use hits to tell a
	// cached answer from a fresh one).
	hits, misses atomic.Uint64

	stop context.CancelFunc
	done chan struct{}
}

// startCache opens the tracking connection (a second client from the same
// options, speaking RESP2 so invalidations arrive as Pub/Sub messages) and
// returns the running cache. client is the store's own client.
func startCache(o *redis.UniversalOptions, prefix string, client redis.UniversalClient, warn func(error)) *localCache {
	if warn == nil {
		warn = func(error) {}
	}
	c := &localCache{
		warn:          warn,
		sessionPrefix: prefix + "s:",
		markerPrefix:  prefix + "r:",
		barrierPrefix: prefix + "s:" + barrierInfix,
		registry:      prefix + "caches",
		ackPrefix:     prefix + "ack:",
		client:        client,
		acks:          make(chan string, 1024),
		wake:          make(chan struct{}, 1),
		entries:       map[string]cacheEntry{},
		done:          make(chan struct{}),
	}
	to := *o
	to.Protocol = 2
	to.PoolSize = 1
	if to.ClientName == "" {
		to.ClientName = "crmgate-session-cache"
	}
	to.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
		id, err := cn.ClientID(ctx).Result()
		if err != nil {
			return err
		}
		// Redirecting to itself: once this connection has subscribed to
		// the invalidation channel, it is where Redis sends the messages.
		return cn.Do(ctx, "CLIENT", "TRACKING", "ON", "REDIRECT", id, "BCAST",
			"PREFIX", c.sessionPrefix, "PREFIX", c.markerPrefix).Err()
	}
	tracker := redis.NewUniversalClient(&to)
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	ps := tracker.Subscribe(ctx, trackingChannel)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer tracker.Close()
		defer ps.Close()
		c.run(ctx, ps)
	}()
	go func() {
		defer wg.Done()
		c.report(ctx)
	}()
	go func() {
		wg.Wait()
		close(c.done)
	}()
	return c
}

// run reads the tracking connection until ctx ends.
func (c *localCache) run(ctx context.Context, ps *redis.PubSub) {
	reported := "" // the failure last reported, so a long outage logs once
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, cachePing)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Quiet: ask for a pong so silence can be told from a
				// dead connection.
				if ps.Ping(ctx) == nil {
					continue
				}
			}
			// Dropped, refused or unreadable: go-redis reconnects and
			// resubscribes on the next receive; until the subscription is
			// confirmed nothing is served.
			c.down()
			if ctx.Err() == nil && err.Error() != reported {
				reported = err.Error()
				c.warn(err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(cachePing):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == trackingChannel {
				reported = ""
				c.up()
			} else {
				c.down()
			}
		case *redis.Message:
			c.invalidate(m)
		case *redis.Pong:
			c.mu.Lock()
			c.heard = time.Now()
			c.mu.Unlock()
		}
	}
	c.down()
}

// up starts a new incarnation: invalidations sent before the subscription
// were lost, so nothing known so far is kept.
func (c *localCache) up() {
	c.mu.Lock()
	c.retire()
	c.subscribed = true
	c.incarnation = rand.Text()
	c.heard = time.Now()
	c.mu.Unlock()
	c.poke()
}

// down ends the incarnation.
func (c *localCache) down() {
	c.mu.Lock()
	c.retire()
	c.mu.Unlock()
	c.poke()
}

// retire forgets everything and queues the incarnation for withdrawal.
// Called with mu held.
func (c *localCache) retire() {
	if c.incarnation != "" {
		c.gone = append(c.gone, c.incarnation)
	}
	c.subscribed, c.live = false, false
	c.incarnation, c.own = "", ""
	c.regAt = time.Time{}
	c.gen++
	clear(c.entries)
}

func (c *localCache) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// invalidate drops what the keys of m concern. A message without keys is
// Redis saying "everything" (FLUSHDB, FLUSHALL).
func (c *localCache) invalidate(m *redis.Message) {
	c.mu.Lock()
	c.heard = time.Now()
	c.gen++
	keys := m.PayloadSlice
	if len(keys) == 0 && m.Payload != "" {
		keys = []string{m.Payload}
	}
	if len(keys) == 0 {
		clear(c.entries)
	}
	var barriers []string
	for _, k := range keys {
		if token, ok := strings.CutPrefix(k, c.barrierPrefix); ok {
			if token == c.own && c.subscribed {
				c.live = true
				continue
			}
			barriers = append(barriers, token)
			continue
		}
		if h, ok := strings.CutPrefix(k, c.sessionPrefix); ok {
			delete(c.entries, h)
			continue
		}
		// A revocation marker (or a key this cache cannot place): which
		// sessions it covers is not known here, so all go.
		clear(c.entries)
	}
	c.mu.Unlock()
	// Everything before the barrier has been processed: say so. A full
	// queue drops the acknowledgement, which only makes the writer wait
	// until this cache's registration runs out.
	for _, token := range barriers {
		select {
		case c.acks <- token:
		default:
		}
	}
}

// report keeps the registry up to date and acknowledges barriers.
func (c *localCache) report(ctx context.Context) {
	tick := time.NewTicker(cachePing)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			// The reader may not have retired the current incarnation yet.
			c.mu.Lock()
			gone := c.gone
			if c.incarnation != "" {
				gone = append(gone, c.incarnation)
			}
			c.mu.Unlock()
			// Best effort: a registration left behind only makes writers
			// wait until it runs out.
			dctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if len(gone) > 0 {
				c.client.HDel(dctx, c.registry, gone...)
			}
			cancel()
			return
		case token := <-c.acks:
			c.mu.RLock()
			inc := c.incarnation
			c.mu.RUnlock()
			if inc == "" {
				continue
			}
			p := c.client.Pipeline()
			p.RPush(ctx, c.ackPrefix+token, inc)
			p.PExpire(ctx, c.ackPrefix+token, barrierWait+time.Second)
			_, _ = p.Exec(ctx)
		case <-c.wake:
			c.register(ctx)
		case <-tick.C:
			c.register(ctx)
		}
	}
}

// register withdraws retired incarnations and renews the current one while
// its tracking connection is heard; the first registration of an
// incarnation also sets its own barrier.
func (c *localCache) register(ctx context.Context) {
	c.mu.Lock()
	gone := c.gone
	c.gone = nil
	inc, own := c.incarnation, c.own
	heard := c.subscribed && time.Since(c.heard) <= cacheSilence
	c.mu.Unlock()
	if len(gone) > 0 {
		if err := c.client.HDel(ctx, c.registry, gone...).Err(); err != nil {
			c.mu.Lock()
			c.gone = append(c.gone, gone...)
			c.mu.Unlock()
		}
	}
	if !heard {
		return
	}
	keys := []string{c.registry}
	if own == "" {
		// Recorded before it is set, or the reader could see it come
		// back first and take it for someone else's.
		own = rand.Text()
		c.mu.Lock()
		if c.incarnation == inc {
			c.own = own
		}
		c.mu.Unlock()
		keys = append(keys, c.barrierPrefix+own)
	}
	sent := time.Now()
	err := registerScript.Run(ctx, c.client, keys, inc, cacheSilence.Milliseconds()).Err()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.incarnation != inc:
	case err != nil && len(keys) == 2 && c.own == own:
		c.own = "" // not set: try again next time
	case err == nil:
		c.regAt = sent
	}
}

// get returns the entry for hash when the cache may serve it, and the
// generation to pass to put after a miss.
func (c *localCache) get(hash string) (cacheEntry, uint64, bool) {
	now := time.Now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.servingAt(now) {
		c.misses.Add(1)
		return cacheEntry{}, c.gen, false
	}
	e, ok := c.entries[hash]
	if !ok || !now.Before(e.expires) {
		c.misses.Add(1)
		return cacheEntry{}, c.gen, false
	}
	c.hits.Add(1)
	return e, c.gen, true
}

// put stores what a read that started at generation gen found, unless
// anything was invalidated since.
func (c *localCache) put(hash string, gen uint64, e cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || c.gen != gen {
		return
	}
	if len(c.entries) >= cacheMaxEntries {
		clear(c.entries)
	}
	c.entries[hash] = e
}

// drop forgets one session (all when hash is empty) after a write made
// here, so this replica reads its own writes without waiting for Redis.
func (c *localCache) drop(hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if hash == "" {
		clear(c.entries)
		return
	}
	delete(c.entries, hash)
}

// serving reports whether the cache may answer reads now.
func (c *localCache) serving() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.servingAt(time.Now())
}

// servingAt: live, heard lately, and registered lately enough that writers
// still wait for it (its registration outlives regAt+cacheSilence by the
// time the registration took to reach Redis). Called with mu held.
func (c *localCache) servingAt(now time.Time) bool {
	return c.live && now.Sub(c.heard) <= cacheSilence && !c.regAt.IsZero() && now.Sub(c.regAt) < cacheSilence
}

func (c *localCache) close() {
	c.stop()
	<-c.done
}

var (
	// registerScript renews registration ARGV[1] until Redis's now plus
	// ARGV[2] ms and, given a second key, sets that barrier key after it.
	registerScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], now + tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], 10 * tonumber(ARGV[2]))
if KEYS[2] then redis.call('SET', KEYS[2], '1', 'PX', 10 * tonumber(ARGV[2])) end
return 1`)
	// barrierScript sets the barrier key (KEYS[2], absent when only the
	// registry is read again) and returns Redis's now followed by the id and
	// expiry of every registration still running, dropping the others.
	barrierScript = redis.NewScript(`
if KEYS[2] then redis.call('SET', KEYS[2], '1', 'PX', ARGV[1]) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {now}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local exp = tonumber(all[i + 1])
  if exp and exp > now then
    out[#out + 1] = all[i]
    out[#out + 1] = exp
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return out`)
)
