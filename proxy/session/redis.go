package session

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Store shared by every crmgate replica that points at the same
// Redis (single node, Sentinel or Cluster) and key prefix.
//
// Layout, all under the prefix:
//
//	s:{sha256(id)}  hash  d=record JSON, t=last seen, c=created, u=user id, x=IdP sid (when any); TTL = session ttl
//	u:{user id}     set   hashes of the user's sessions (RevokeUser, ListUser)
//	x:{IdP sid}     set   hashes of the sessions of that IdP session (ListSID); TTL as u:
//	r:{user id}     string  time of the user's last revocation
//	all             zset  hash → expiry (List, Count)
//	seen            hash  user id → last activity, unix seconds
//	l:{sha256(id)}  string  holder's random token while one replica refreshes the session (Lock); TTL = lease
//
// Times inside Redis are unix microseconds, which Lua's doubles hold
// exactly. A session key and its index entries live in different cluster
// slots, so no transaction can span them on a Cluster; writes are ordered
// instead so that a half-done write is safe: index entries are added before
// the session and removed after it, and Get checks the revocation marker,
// so a session missing from the index is still refused after RevokeUser.
// On a single node or Sentinel the writes also run as one MULTI/EXEC.
type Redis struct {
	client  redis.UniversalClient
	prefix  string
	now     func() time.Time
	cluster bool
	// cache is the replica-local cache (rediscache.go); nil on Cluster or
	// when turned off.
	cache *localCache
}

// NewRedis returns a store on client using keys that start with prefix.
// The store takes ownership of the client: Close closes it.
func NewRedis(client redis.UniversalClient, prefix string, now func() time.Time) *Redis {
	if now == nil {
		now = time.Now
	}
	_, cluster := client.(*redis.ClusterClient)
	return &Redis{client: client, prefix: prefix, now: now, cluster: cluster}
}

// OpenRedis returns a store on a new client from o. With localCache (and
// outside Cluster, where one tracking connection cannot see every node) the
// store keeps the sessions it reads in memory, invalidated by Redis as
// described in rediscache.go; warn (may be nil) hears why the cache is not
// serving (say, an ACL without the CLIENT command), while reads go to Redis.
func OpenRedis(o *redis.UniversalOptions, prefix string, localCache bool, warn func(error)) *Redis {
	r := NewRedis(redis.NewUniversalClient(o), prefix, nil)
	if localCache && !r.cluster {
		r.cache = startCache(o, prefix, r.client, warn)
	}
	return r
}

// Cached reports whether the store keeps a replica-local cache.
func (r *Redis) Cached() bool { return r.cache != nil }

// CacheServing reports whether the replica-local cache answers reads now.
func (r *Redis) CacheServing() bool { return r.cache != nil && r.cache.serving() }

// CacheLookups returns how many Gets the cache answered and how many went
// to Redis.
func (r *Redis) CacheLookups() (hits, misses uint64) {
	if r.cache == nil {
		return 0, 0
	}
	return r.cache.hits.Load(), r.cache.misses.Load()
}

var _ Store = (*Redis)(nil)

func (r *Redis) sessionKey(hash string) string { return r.prefix + "s:" + hash }
func (r *Redis) userKey(user string) string    { return r.prefix + "u:" + user }
func (r *Redis) revokedKey(user string) string { return r.prefix + "r:" + user }
func (r *Redis) allKey() string                { return r.prefix + "all" }
func (r *Redis) seenKey() string               { return r.prefix + "seen" }

// sidKey is outside the tracked s: and r: prefixes too: the caches never
// read it. The sid is the IdP's choice, of any shape, but it only ever ends
// a key name (never a pattern), so no value reaches another key.
func (r *Redis) sidKey(sid string) string { return r.prefix + "x:" + sid }

// lockKey is outside the s: and r: prefixes the replica-local caches track,
// so taking and releasing leases costs them no invalidations.
func (r *Redis) lockKey(hash string) string { return r.prefix + "l:" + hash }

// pipe batches writes in one round trip, atomically where the deployment
// allows it (see the type comment).
func (r *Redis) pipe() redis.Pipeliner {
	if r.cluster {
		return r.client.Pipeline()
	}
	return r.client.TxPipeline()
}

// storeErr maps go-redis errors to the package's: redis.Nil is a missing
// key; anything else means Redis could not answer, and the proxy fails closed.
func storeErr(op string, err error) error {
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
}

// micro and fromMicro convert the times kept in Redis.
func micro(t time.Time) int64      { return t.UnixMicro() }
func fromMicro(us int64) time.Time { return time.UnixMicro(us) }

func ms(d time.Duration) int64 {
	if m := d.Milliseconds(); m > 0 {
		return m
	}
	return 1
}

// Scripts touch one key each, so they are atomic on every deployment.
var (
	// createScript refuses to overwrite: a duplicate id must not replace
	// someone else's session.
	createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'd', ARGV[1], 't', ARGV[2], 'c', ARGV[3], 'u', ARGV[4])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'x', ARGV[6]) end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`)
	// updateScript replaces the record (and the sid kept beside it) of an
	// existing session of the same user only.
	updateScript = redis.NewScript(`
local u = redis.call('HGET', KEYS[1], 'u')
if not u then return 0 end
if u ~= ARGV[2] then return -1 end
redis.call('HSET', KEYS[1], 'd', ARGV[1])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'x', ARGV[4]) else redis.call('HDEL', KEYS[1], 'x') end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`)
	// touchScript extends an existing session and returns its user and sid
	// ('' when none), so their indexes can be extended with it (false when
	// it is gone, so it is never recreated).
	touchScript = redis.NewScript(`
local u = redis.call('HGET', KEYS[1], 'u')
if not u then return false end
local t = tonumber(redis.call('HGET', KEYS[1], 't') or '0')
if tonumber(ARGV[1]) > t then redis.call('HSET', KEYS[1], 't', ARGV[1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {u, redis.call('HGET', KEYS[1], 'x') or ''}`)
	// maxScript sets a string key (or a hash field, with ARGV[2]) to ARGV[1]
	// unless it already holds a later time, so replicas whose clocks or
	// messages disagree can never move a time backwards.
	maxStringScript = redis.NewScript(`
local c = redis.call('GET', KEYS[1])
if (not c) or tonumber(ARGV[1]) > tonumber(c) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1`)
	// getScript reads a session and its user's revocation marker in one
	// round trip. It reads a key it is not given (the marker's name depends
	// on the session's user), which only a non-Cluster deployment allows.
	getScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'd', 't', 'c', 'u')
local r = false
if v[4] then r = redis.call('GET', ARGV[1] .. v[4]) end
return {v[1], v[2], v[3], v[4], r, redis.call('PTTL', KEYS[1])}`)
	// unlockScript deletes a lease only while it still holds the caller's
	// token: one that expired and was taken by another replica stays.
	unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
	maxFieldScript = redis.NewScript(`
local c = redis.call('HGET', KEYS[1], ARGV[1])
if (not c) or tonumber(ARGV[2]) > tonumber(c) then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1`)
)

// indexTTL keeps a user's index at least as long as the sessions in it;
// EXPIRE NX then GT means "set if none, else only extend".
func (r *Redis) indexTTL(ctx context.Context, p redis.Pipeliner, user string, ttl time.Duration) {
	k := r.userKey(user)
	p.ExpireNX(ctx, k, ttl+time.Second)
	p.ExpireGT(ctx, k, ttl+time.Second)
}

// sidIndex adds a session to its IdP session's index, which like the user
// index lives at least as long as the sessions in it. Sessions without a
// sid are not indexed.
func (r *Redis) sidIndex(ctx context.Context, p redis.Pipeliner, sid, hash string, ttl time.Duration) {
	if sid == "" {
		return
	}
	k := r.sidKey(sid)
	p.SAdd(ctx, k, hash)
	p.ExpireNX(ctx, k, ttl+time.Second)
	p.ExpireGT(ctx, k, ttl+time.Second)
}

// Create implements Store.
func (r *Redis) Create(ctx context.Context, s *Session, ttl time.Duration) error {
	const op = "create session"
	data, err := encodeNew(op, s, ttl, r.now)
	if err != nil {
		return err
	}
	now := r.now()
	h, user := HashID(s.ID), s.Subject.ID
	p := r.pipe()
	p.SAdd(ctx, r.userKey(user), h)
	r.indexTTL(ctx, p, user, ttl)
	r.sidIndex(ctx, p, s.SID, h, ttl)
	p.ZAdd(ctx, r.allKey(), redis.Z{Score: float64(now.Add(ttl).UnixMilli()), Member: h})
	created := createScript.Eval(ctx, p, []string{r.sessionKey(h)},
		data, micro(s.LastSeen), micro(now), user, ms(ttl), s.SID)
	p.ZRemRangeByScore(ctx, r.allKey(), "-inf", "("+strconv.FormatInt(now.UnixMilli(), 10))
	if _, err := p.Exec(ctx); err != nil {
		return storeErr(op, err)
	}
	if n, err := created.Int(); err != nil || n != 1 {
		return fmt.Errorf("%s: id already in use", op)
	}
	s.Hash = h
	return nil
}

// Get implements Store.
func (r *Redis) Get(ctx context.Context, id string) (*Session, error) {
	const op = "get session"
	h := HashID(id)
	f, revokedAt, err := r.cachedGet(ctx, op, h)
	if err != nil {
		return nil, err
	}
	if revokedBy(f.created, revokedAt) {
		return nil, fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	s, err := decode(op, h, f.data, f.lastSeen)
	if err != nil {
		return nil, err
	}
	s.ID = id
	return s, nil
}

// cachedGet answers from the replica-local cache when it may, and keeps
// what it reads otherwise. Only live, unrevoked sessions are kept: a miss
// is never cached, so a session created elsewhere is found at once.
func (r *Redis) cachedGet(ctx context.Context, op, h string) (storedFields, time.Time, error) {
	if r.cache == nil {
		f, revokedAt, _, err := r.getWithMarker(ctx, op, h)
		return f, revokedAt, err
	}
	e, gen, ok := r.cache.get(h)
	if ok {
		return e.f, e.revokedAt, nil
	}
	start := time.Now()
	f, revokedAt, ttl, err := r.getWithMarker(ctx, op, h)
	if err == nil && ttl > 0 && !revokedBy(f.created, revokedAt) {
		r.cache.put(h, gen, cacheEntry{f: f, revokedAt: revokedAt, expires: start.Add(min(ttl, cacheMaxAge))})
	}
	return f, revokedAt, err
}

// getWithMarker reads the session's fields, its user's revocation marker
// and its remaining TTL (0 when unknown): one round trip outside Cluster,
// two in it (where nothing is cached, so the TTL is not read).
func (r *Redis) getWithMarker(ctx context.Context, op, h string) (storedFields, time.Time, time.Duration, error) {
	if !r.cluster {
		vals, err := getScript.Run(ctx, r.client, []string{r.sessionKey(h)}, r.revokedKey("")).Slice()
		if err != nil {
			return storedFields{}, time.Time{}, 0, storeErr(op, err)
		}
		if len(vals) != 6 {
			return storedFields{}, time.Time{}, 0, storeErr(op, fmt.Errorf("unexpected reply of %d values", len(vals)))
		}
		f, ok := fields(vals[:4])
		if !ok {
			return storedFields{}, time.Time{}, 0, fmt.Errorf("%s: %w", op, ErrNotFound)
		}
		pttl, _ := vals[5].(int64)
		ttl := time.Duration(max(pttl, 0)) * time.Millisecond
		if vals[4] == nil {
			return f, time.Time{}, ttl, nil
		}
		str, ok := vals[4].(string)
		micro, err := strconv.ParseInt(str, 10, 64)
		if !ok || err != nil {
			// A marker that cannot be read must not read as "never revoked".
			return storedFields{}, time.Time{}, 0, storeErr(op+": revocation marker", fmt.Errorf("unreadable marker %v", vals[4]))
		}
		return f, fromMicro(micro), ttl, nil
	}
	vals, err := r.client.HMGet(ctx, r.sessionKey(h), "d", "t", "c", "u").Result()
	if err != nil {
		return storedFields{}, time.Time{}, 0, storeErr(op, err)
	}
	f, ok := fields(vals)
	if !ok {
		return storedFields{}, time.Time{}, 0, fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	revokedAt, err := r.revokedAt(ctx, op, f.user)
	if err != nil {
		return storedFields{}, time.Time{}, 0, err
	}
	return f, revokedAt, 0, nil
}

// settle returns once no replica-local cache can still serve what this
// store changed before the call (see rediscache.go): when every cache
// registered at the barrier has acknowledged it, or its registration has
// run out. On Cluster nothing is cached and there is nothing to wait for.
func (r *Redis) settle(ctx context.Context, op string) error {
	if r.cluster {
		return nil
	}
	op += ": wait for replica caches"
	token := rand.Text()
	ackKey := r.prefix + "ack:" + token
	keys := []string{r.prefix + "caches", r.sessionKey(barrierInfix + token)}
	deadline := time.Now().Add(barrierWait)
	// waiting holds the caches registered when the barrier was set: a
	// cache registered later sets a barrier of its own before it serves.
	var waiting map[string]bool
	for {
		vals, err := barrierScript.Run(ctx, r.client, keys, (barrierWait + time.Second).Milliseconds()).Slice()
		if err != nil {
			return storeErr(op, err)
		}
		now, _ := vals[0].(int64)
		running := map[string]int64{}
		for i := 1; i+1 < len(vals); i += 2 {
			id, _ := vals[i].(string)
			running[id], _ = vals[i+1].(int64)
		}
		if waiting == nil {
			keys = keys[:1] // the barrier is set once; later rounds only read the registry
			waiting = map[string]bool{}
			for id := range running {
				waiting[id] = true
			}
		}
		var wait int64
		for id := range waiting {
			if exp, ok := running[id]; ok {
				wait = max(wait, exp-now)
			} else {
				delete(waiting, id) // withdrawn or run out: no longer serving
			}
		}
		if len(waiting) == 0 || wait <= 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %w: a replica keeps its cache registered but has not acknowledged the change within %s",
				op, ErrUnavailable, barrierWait)
		}
		// Wait for the next acknowledgement, or until the registrations
		// that have not acknowledged may have run out.
		res, err := r.client.Do(ctx, "BLPOP", ackKey, strconv.FormatFloat(float64(min(wait, 500))/1000, 'f', 3, 64)).StringSlice()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return storeErr(op, err)
		case len(res) == 2:
			delete(waiting, res[1])
		}
	}
}

// forget drops a session (every session when hash is empty) from the
// replica-local cache after a write made here.
func (r *Redis) forget(hash string) {
	if r.cache != nil {
		r.cache.drop(hash)
	}
}

type storedFields struct {
	data     []byte
	lastSeen time.Time
	created  time.Time
	user     string
}

// fields reads an HMGET of d, t, c, u. A hash missing any of them is
// treated as absent (it can only be a key a half-done write left behind).
func fields(vals []any) (storedFields, bool) {
	if len(vals) != 4 {
		return storedFields{}, false
	}
	var s [4]string
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			return storedFields{}, false
		}
		s[i] = str
	}
	t, err1 := strconv.ParseInt(s[1], 10, 64)
	c, err2 := strconv.ParseInt(s[2], 10, 64)
	if err1 != nil || err2 != nil || s[3] == "" {
		return storedFields{}, false
	}
	return storedFields{data: []byte(s[0]), lastSeen: fromMicro(t), created: fromMicro(c), user: s[3]}, true
}

// revokedAt returns the user's revocation time, zero if never revoked.
func (r *Redis) revokedAt(ctx context.Context, op, user string) (time.Time, error) {
	v, err := r.client.Get(ctx, r.revokedKey(user)).Int64()
	switch {
	case errors.Is(err, redis.Nil):
		return time.Time{}, nil
	case err != nil:
		// A marker that cannot be read (or parsed) must not read as "never
		// revoked".
		return time.Time{}, storeErr(op+": revocation marker", err)
	}
	return fromMicro(v), nil
}

// Update implements Store.
func (r *Redis) Update(ctx context.Context, s *Session, ttl time.Duration) error {
	const op = "update session"
	data, err := encode(op, s, ttl, false)
	if err != nil {
		return err
	}
	h, user := HashID(s.ID), s.Subject.ID
	defer r.forget(h)
	if s.SID != "" {
		// Indexed before the record carries the sid, as in Create: a
		// failure here leaves at worst an entry ListSID drops, never a
		// session its IdP session's logout cannot find. An entry under a
		// previous sid stays until read, where the record's sid rules it out.
		p := r.client.Pipeline()
		r.sidIndex(ctx, p, s.SID, h, ttl)
		if _, err := p.Exec(ctx); err != nil {
			return storeErr(op+": sid index", err)
		}
	}
	n, err := updateScript.Run(ctx, r.client, []string{r.sessionKey(h)}, data, user, ms(ttl), s.SID).Int()
	if err != nil {
		return storeErr(op, err)
	}
	switch n {
	case 0:
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	case -1:
		return fmt.Errorf("%s: session belongs to another user", op)
	}
	if err := r.extendIndexes(ctx, op, h, user, s.SID, ttl); err != nil {
		return err
	}
	s.Hash = h
	// A changed record may take access away (roles dropped at a refresh).
	return r.settle(ctx, op)
}

// extendIndexes keeps the indexes naming a session alive as long as it:
// a sid index that expired under a session touched past its first ttl
// would let that IdP session's logout miss it. The sid entry is added
// again, not only extended, so one lost by a half-done write comes back at
// the session's next request.
func (r *Redis) extendIndexes(ctx context.Context, op, hash, user, sid string, ttl time.Duration) error {
	p := r.client.Pipeline()
	p.ZAddXX(ctx, r.allKey(), redis.Z{Score: float64(r.now().Add(ttl).UnixMilli()), Member: hash})
	r.indexTTL(ctx, p, user, ttl)
	r.sidIndex(ctx, p, sid, hash, ttl)
	if _, err := p.Exec(ctx); err != nil {
		return storeErr(op+": extend indexes", err)
	}
	return nil
}

// Touch implements Store.
func (r *Redis) Touch(ctx context.Context, id string, lastSeen time.Time, ttl time.Duration) error {
	const op = "touch session"
	if ttl <= 0 {
		return fmt.Errorf("%s: ttl %s is not positive", op, ttl)
	}
	h := HashID(id)
	defer r.forget(h)
	vals, err := touchScript.Run(ctx, r.client, []string{r.sessionKey(h)}, micro(lastSeen), ms(ttl)).StringSlice()
	if err != nil {
		return storeErr(op, err)
	}
	if len(vals) != 2 {
		return storeErr(op, fmt.Errorf("unexpected reply of %d values", len(vals)))
	}
	return r.extendIndexes(ctx, op, h, vals[0], vals[1], ttl)
}

// Delete implements Store.
func (r *Redis) Delete(ctx context.Context, id string) error {
	return r.deleteHash(ctx, "delete session", HashID(id))
}

// DeleteHash implements Store.
func (r *Redis) DeleteHash(ctx context.Context, hash string) error {
	const op = "delete session by hash"
	if !validHash(hash) {
		return fmt.Errorf("%s: %q is not a session hash", op, hash)
	}
	return r.deleteHash(ctx, op, hash)
}

func (r *Redis) deleteHash(ctx context.Context, op, hash string) error {
	defer r.forget(hash)
	k := r.sessionKey(hash)
	user, err := r.client.HGet(ctx, k, "u").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return storeErr(op, err)
	}
	// The session goes first: if the pipeline stops half way, what is left
	// is an index entry pointing nowhere, which readers skip.
	p := r.pipe()
	p.Del(ctx, k)
	p.ZRem(ctx, r.allKey(), hash)
	if user != "" {
		p.SRem(ctx, r.userKey(user), hash)
	}
	if _, err := p.Exec(ctx); err != nil {
		return storeErr(op, err)
	}
	return r.settle(ctx, op)
}

// RevokeUser implements Store. It returns once no replica can still serve
// the user's sessions from its cache.
func (r *Redis) RevokeUser(ctx context.Context, userID string) (int, error) {
	const op = "revoke user sessions"
	if userID == "" {
		return 0, fmt.Errorf("%s: empty user id", op)
	}
	defer r.forget("")
	// The marker first: from here on every replica refuses the user's
	// existing sessions, whatever happens to the deletes below.
	if err := maxStringScript.Run(ctx, r.client, []string{r.revokedKey(userID)}, micro(r.now())).Err(); err != nil {
		return 0, storeErr(op+": set marker", err)
	}
	r.forget("")
	hashes, err := r.client.SMembers(ctx, r.userKey(userID)).Result()
	if err != nil {
		return 0, storeErr(op+": read index", err)
	}
	if len(hashes) == 0 {
		return 0, r.settle(ctx, op)
	}
	owners, err := r.owners(ctx, op, hashes)
	if err != nil {
		return 0, err
	}
	p := r.pipe()
	var dels []*redis.IntCmd
	for i, h := range hashes {
		// Only sessions that really are the user's: an index entry is a
		// hint, the session's own u field is the truth.
		if owners[i] == userID {
			dels = append(dels, p.Del(ctx, r.sessionKey(h)))
			p.ZRem(ctx, r.allKey(), h)
		}
	}
	p.SRem(ctx, r.userKey(userID), toAny(hashes)...)
	if _, err := p.Exec(ctx); err != nil {
		return 0, storeErr(op+": delete", err)
	}
	n := 0
	for _, d := range dels {
		n += int(d.Val())
	}
	return n, r.settle(ctx, op)
}

// owners returns the u field of each session hash ("" when gone).
func (r *Redis) owners(ctx context.Context, op string, hashes []string) ([]string, error) {
	p := r.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(hashes))
	for i, h := range hashes {
		cmds[i] = p.HGet(ctx, r.sessionKey(h), "u")
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, storeErr(op+": read owners", err)
	}
	out := make([]string, len(hashes))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// ListUser implements Store.
func (r *Redis) ListUser(ctx context.Context, userID string) ([]*Session, error) {
	const op = "list user sessions"
	hashes, err := r.client.SMembers(ctx, r.userKey(userID)).Result()
	if err != nil {
		return nil, storeErr(op, err)
	}
	out, stale, err := r.load(ctx, op, hashes, userID)
	if err != nil {
		return nil, err
	}
	if len(stale) > 0 {
		// Housekeeping only; a failure here changes no answer.
		_ = r.client.SRem(ctx, r.userKey(userID), toAny(stale)...).Err()
	}
	return out, nil
}

// ListSID implements Store.
func (r *Redis) ListSID(ctx context.Context, sid string) ([]*Session, error) {
	const op = "list sessions by sid"
	if sid == "" {
		return nil, fmt.Errorf("%s: empty sid", op)
	}
	k := r.sidKey(sid)
	hashes, err := r.client.SMembers(ctx, k).Result()
	if err != nil {
		return nil, storeErr(op, err)
	}
	found, stale, err := r.load(ctx, op, hashes, "")
	if err != nil {
		return nil, err
	}
	// The index is a hint (an Update may have moved the session to another
	// sid); the record's own sid is the truth.
	out := found[:0]
	for _, s := range found {
		if s.SID == sid {
			out = append(out, s)
		} else {
			stale = append(stale, s.Hash)
		}
	}
	if len(stale) > 0 {
		// Housekeeping only; a failure here changes no answer.
		_ = r.client.SRem(ctx, k, toAny(stale)...).Err()
	}
	return out, nil
}

// List implements Store.
func (r *Redis) List(ctx context.Context, limit int) ([]*Session, error) {
	const op = "list sessions"
	if limit <= 0 {
		return nil, fmt.Errorf("%s: limit %d is not positive", op, limit)
	}
	now := strconv.FormatInt(r.now().UnixMilli(), 10)
	hashes, err := r.client.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: r.allKey(), Start: "+inf", Stop: "(" + now, ByScore: true, Rev: true, Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, storeErr(op, err)
	}
	out, _, err := r.load(ctx, op, hashes, "")
	return out, err
}

// load fetches sessions by hash in one round trip and their users'
// revocation markers in another, dropping those that are gone, revoked or
// (when user is set) someone else's. It returns the hashes it dropped.
func (r *Redis) load(ctx context.Context, op string, hashes []string, user string) ([]*Session, []string, error) {
	if len(hashes) == 0 {
		return nil, nil, nil
	}
	p := r.client.Pipeline()
	cmds := make([]*redis.SliceCmd, len(hashes))
	for i, h := range hashes {
		cmds[i] = p.HMGet(ctx, r.sessionKey(h), "d", "t", "c", "u")
	}
	if _, err := p.Exec(ctx); err != nil {
		return nil, nil, storeErr(op, err)
	}
	found := make([]storedFields, len(hashes))
	ok := make([]bool, len(hashes))
	markers := map[string]*redis.StringCmd{}
	mp := r.client.Pipeline()
	for i, c := range cmds {
		found[i], ok[i] = fields(c.Val())
		if ok[i] && user != "" && found[i].user != user {
			ok[i] = false
		}
		if u := found[i].user; ok[i] && markers[u] == nil {
			markers[u] = mp.Get(ctx, r.revokedKey(u))
		}
	}
	if len(markers) > 0 {
		if _, err := mp.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, nil, storeErr(op+": revocation markers", err)
		}
	}
	var out []*Session
	var stale []string
	for i, h := range hashes {
		if !ok[i] {
			stale = append(stale, h)
			continue
		}
		var revokedAt time.Time
		if v, err := markers[found[i].user].Int64(); err == nil {
			revokedAt = fromMicro(v)
		} else if !errors.Is(err, redis.Nil) {
			return nil, nil, storeErr(op+": revocation marker", err)
		}
		if revokedBy(found[i].created, revokedAt) {
			stale = append(stale, h)
			continue
		}
		s, err := decode(op, h, found[i].data, found[i].lastSeen)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, s)
	}
	return out, stale, nil
}

// Count implements Store.
func (r *Redis) Count(ctx context.Context) (int, error) {
	const op = "count sessions"
	now := "(" + strconv.FormatInt(r.now().UnixMilli(), 10)
	p := r.client.Pipeline()
	p.ZRemRangeByScore(ctx, r.allKey(), "-inf", now)
	card := p.ZCard(ctx, r.allKey())
	if _, err := p.Exec(ctx); err != nil {
		return 0, storeErr(op, err)
	}
	return int(card.Val()), nil
}

// SeenUser implements Store.
func (r *Redis) SeenUser(ctx context.Context, userID string, at time.Time) error {
	const op = "record user activity"
	if userID == "" {
		return fmt.Errorf("%s: empty user id", op)
	}
	if err := maxFieldScript.Run(ctx, r.client, []string{r.seenKey()}, userID, at.Unix()).Err(); err != nil {
		return storeErr(op, err)
	}
	return nil
}

// LastSeen implements Store.
func (r *Redis) LastSeen(ctx context.Context) (map[string]time.Time, error) {
	const op = "last seen"
	all, err := r.client.HGetAll(ctx, r.seenKey()).Result()
	if err != nil {
		return nil, storeErr(op, err)
	}
	out := make(map[string]time.Time, len(all))
	for u, v := range all {
		sec, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: user %q: %w", op, u, err)
		}
		out[u] = time.Unix(sec, 0)
	}
	return out, nil
}

// unlockTimeout bounds the release of a lease. A release that fails or
// times out is harmless beyond delay: the lease runs out by itself.
const unlockTimeout = 2 * time.Second

// Lock implements Store.
func (r *Redis) Lock(ctx context.Context, hash string, ttl time.Duration) (func(), bool, error) {
	const op = "lock session"
	if !validHash(hash) {
		return nil, false, fmt.Errorf("%s: %q is not a session hash", op, hash)
	}
	if ttl <= 0 {
		return nil, false, fmt.Errorf("%s: ttl %s is not positive", op, ttl)
	}
	k, token := r.lockKey(hash), rand.Text()
	ok, err := r.client.SetNX(ctx, k, token, time.Duration(ms(ttl))*time.Millisecond).Result()
	if err != nil {
		return nil, false, storeErr(op, err)
	}
	if !ok {
		return nil, false, nil
	}
	// The release must happen even when the request that took the lease
	// was cancelled meanwhile, or others wait out the whole ttl.
	uctx := context.WithoutCancel(ctx)
	unlock := func() {
		c, cancel := context.WithTimeout(uctx, unlockTimeout)
		defer cancel()
		_ = unlockScript.Run(c, r.client, []string{k}, token).Err()
	}
	return unlock, true, nil
}

// Ping implements Store.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return storeErr("ping session store", err)
	}
	return nil
}

// Close implements Store: it closes the client.
func (r *Redis) Close() error {
	if r.cache != nil {
		r.cache.close()
	}
	if err := r.client.Close(); err != nil {
		return fmt.Errorf("close session store: %w", err)
	}
	return nil
}
