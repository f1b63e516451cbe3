package session

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// sweepEvery bounds how many creates may pass between two sweeps of expired
// sessions, so a node whose users never come back does not grow forever
// while no sweep costs more than one pass over the map now and then.
const sweepEvery = 1024

// Memory is a Store for a single crmgate node. It keeps the same stored form
// as Redis (encoded records keyed by id hash), so the two behave alike and
// callers get copies they cannot use to change the store behind its back.
type Memory struct {
	now func() time.Time

	mu       sync.Mutex
	closed   bool
	sessions map[string]*memEntry           // hash → entry
	byUser   map[string]map[string]struct{} // user id → hashes
	bySID    map[string]map[string]struct{} // IdP session id → hashes
	revoked  map[string]time.Time           // user id → last revocation
	seen     map[string]int64               // user id → unix seconds
	leases   map[string]memLease            // hash → refresh lease (Lock)
	leaseSeq uint64
	creates  int
}

// memLease is a Lock lease; token tells a holder's lease from a later one
// under the same hash.
type memLease struct {
	token   uint64
	expires time.Time
}

// toMicro keeps times at the microsecond resolution Redis stores, so both
// stores break ties between a login and a revocation the same way.
func toMicro(t time.Time) time.Time { return fromMicro(micro(t)) }

type memEntry struct {
	data     []byte
	user     string
	sid      string    // the record's SID, kept to find its bySID entry
	created  time.Time // store clock, compared with revocations
	lastSeen time.Time
	expires  time.Time
}

// NewMemory returns an empty in-memory store reading time from now (which
// tests replace with a fake clock).
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{
		now:      now,
		sessions: make(map[string]*memEntry),
		byUser:   make(map[string]map[string]struct{}),
		bySID:    make(map[string]map[string]struct{}),
		revoked:  make(map[string]time.Time),
		seen:     make(map[string]int64),
		leases:   make(map[string]memLease),
	}
}

var _ Store = (*Memory)(nil)

func (m *Memory) lock(op string) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return fmt.Errorf("%s: %w: store closed", op, ErrUnavailable)
	}
	return nil
}

// live returns the entry for hash if it exists, has not expired and was not
// revoked; a dead entry found on the way is removed. m.mu must be held.
func (m *Memory) live(hash string, now time.Time) *memEntry {
	e, ok := m.sessions[hash]
	if !ok {
		return nil
	}
	if !now.Before(e.expires) || revokedBy(e.created, m.revoked[e.user]) {
		m.remove(hash, e)
		return nil
	}
	return e
}

// remove deletes a session and its index entries. m.mu must be held.
func (m *Memory) remove(hash string, e *memEntry) {
	delete(m.sessions, hash)
	unindex(m.byUser, e.user, hash)
	unindex(m.bySID, e.sid, hash)
}

// index and unindex keep a key → set of hashes map, with no empty sets
// left behind; an empty key (a session without SID) is never indexed.
func index(idx map[string]map[string]struct{}, key, hash string) {
	if key == "" {
		return
	}
	if idx[key] == nil {
		idx[key] = make(map[string]struct{})
	}
	idx[key][hash] = struct{}{}
}

func unindex(idx map[string]map[string]struct{}, key, hash string) {
	if set := idx[key]; set != nil {
		delete(set, hash)
		if len(set) == 0 {
			delete(idx, key)
		}
	}
}

// sweep drops every expired or revoked session. m.mu must be held.
func (m *Memory) sweep(now time.Time) {
	for h := range m.sessions {
		m.live(h, now)
	}
}

// Create implements Store.
func (m *Memory) Create(ctx context.Context, s *Session, ttl time.Duration) error {
	const op = "create session"
	data, err := encodeNew(op, s, ttl, m.now)
	if err != nil {
		return err
	}
	if err := m.lock(op); err != nil {
		return err
	}
	defer m.mu.Unlock()
	now := m.now()
	if m.creates++; m.creates%sweepEvery == 0 {
		m.sweep(now)
	}
	h := HashID(s.ID)
	if m.live(h, now) != nil {
		return fmt.Errorf("%s: id already in use", op)
	}
	user := s.Subject.ID
	m.sessions[h] = &memEntry{data: data, user: user, sid: s.SID, created: toMicro(now), lastSeen: toMicro(s.LastSeen), expires: now.Add(ttl)}
	index(m.byUser, user, h)
	index(m.bySID, s.SID, h)
	s.Hash = h
	return nil
}

// encodeNew fills in a new session's zero times from the store clock and
// encodes it. Shared by both stores so they default identically.
func encodeNew(op string, s *Session, ttl time.Duration, now func() time.Time) ([]byte, error) {
	if s != nil {
		t := now()
		if s.CreatedAt.IsZero() {
			s.CreatedAt = t
		}
		if s.LastSeen.IsZero() {
			s.LastSeen = t
		}
	}
	return encode(op, s, ttl, true)
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, id string) (*Session, error) {
	const op = "get session"
	if err := m.lock(op); err != nil {
		return nil, err
	}
	h := HashID(id)
	e := m.live(h, m.now())
	if e == nil {
		m.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	data, lastSeen := e.data, e.lastSeen
	m.mu.Unlock()
	s, err := decode(op, h, data, lastSeen)
	if err != nil {
		return nil, err
	}
	s.ID = id
	return s, nil
}

// Update implements Store.
func (m *Memory) Update(ctx context.Context, s *Session, ttl time.Duration) error {
	const op = "update session"
	data, err := encode(op, s, ttl, false)
	if err != nil {
		return err
	}
	if err := m.lock(op); err != nil {
		return err
	}
	defer m.mu.Unlock()
	now := m.now()
	h := HashID(s.ID)
	e := m.live(h, now)
	if e == nil {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	if e.user != s.Subject.ID {
		return fmt.Errorf("%s: session belongs to another user", op)
	}
	e.data = data
	e.expires = now.Add(ttl)
	if e.sid != s.SID {
		unindex(m.bySID, e.sid, h)
		index(m.bySID, s.SID, h)
		e.sid = s.SID
	}
	s.Hash = h
	return nil
}

// Touch implements Store.
func (m *Memory) Touch(ctx context.Context, id string, lastSeen time.Time, ttl time.Duration) error {
	const op = "touch session"
	if ttl <= 0 {
		return fmt.Errorf("%s: ttl %s is not positive", op, ttl)
	}
	if err := m.lock(op); err != nil {
		return err
	}
	defer m.mu.Unlock()
	now := m.now()
	e := m.live(HashID(id), now)
	if e == nil {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	if t := toMicro(lastSeen); t.After(e.lastSeen) {
		e.lastSeen = t
	}
	e.expires = now.Add(ttl)
	return nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, id string) error {
	return m.deleteHash("delete session", HashID(id))
}

// DeleteHash implements Store.
func (m *Memory) DeleteHash(ctx context.Context, hash string) error {
	const op = "delete session by hash"
	if !validHash(hash) {
		return fmt.Errorf("%s: %q is not a session hash", op, hash)
	}
	return m.deleteHash(op, hash)
}

func (m *Memory) deleteHash(op, hash string) error {
	if err := m.lock(op); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if e, ok := m.sessions[hash]; ok {
		m.remove(hash, e)
	}
	return nil
}

// RevokeUser implements Store.
func (m *Memory) RevokeUser(ctx context.Context, userID string) (int, error) {
	const op = "revoke user sessions"
	if userID == "" {
		return 0, fmt.Errorf("%s: empty user id", op)
	}
	if err := m.lock(op); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	now := m.now()
	n := 0
	for h := range m.byUser[userID] {
		if m.live(h, now) != nil {
			n++
		}
	}
	// The marker is what refuses the user's sessions; deleting them is
	// housekeeping. Set it first so the order matches the Redis store.
	if t := toMicro(now); t.After(m.revoked[userID]) {
		m.revoked[userID] = t
	}
	for h := range m.byUser[userID] {
		m.remove(h, m.sessions[h])
	}
	delete(m.byUser, userID)
	return n, nil
}

// ListUser implements Store.
func (m *Memory) ListUser(ctx context.Context, userID string) ([]*Session, error) {
	const op = "list user sessions"
	return m.listIndexed(op, func() map[string]struct{} { return m.byUser[userID] })
}

// ListSID implements Store.
func (m *Memory) ListSID(ctx context.Context, sid string) ([]*Session, error) {
	const op = "list sessions by sid"
	if sid == "" {
		return nil, fmt.Errorf("%s: empty sid", op)
	}
	return m.listIndexed(op, func() map[string]struct{} { return m.bySID[sid] })
}

// listIndexed returns the live sessions among the hashes of one index
// entry; index reads it with m.mu held.
func (m *Memory) listIndexed(op string, index func() map[string]struct{}) ([]*Session, error) {
	if err := m.lock(op); err != nil {
		return nil, err
	}
	now := m.now()
	var picked []memPick
	for h := range index() {
		if e := m.live(h, now); e != nil {
			picked = append(picked, memPick{h, e.data, e.lastSeen, e.expires})
		}
	}
	m.mu.Unlock()
	return decodePicks(op, picked, 0)
}

// List implements Store.
func (m *Memory) List(ctx context.Context, limit int) ([]*Session, error) {
	const op = "list sessions"
	if limit <= 0 {
		return nil, fmt.Errorf("%s: limit %d is not positive", op, limit)
	}
	if err := m.lock(op); err != nil {
		return nil, err
	}
	now := m.now()
	picked := make([]memPick, 0, len(m.sessions))
	for h := range m.sessions {
		if e := m.live(h, now); e != nil {
			picked = append(picked, memPick{h, e.data, e.lastSeen, e.expires})
		}
	}
	m.mu.Unlock()
	return decodePicks(op, picked, limit)
}

type memPick struct {
	hash     string
	data     []byte
	lastSeen time.Time
	expires  time.Time
}

// decodePicks orders sessions as Redis does (latest expiry first, then by
// hash), keeps at most limit (0 = all) and decodes them outside the lock.
func decodePicks(op string, picked []memPick, limit int) ([]*Session, error) {
	slices.SortFunc(picked, func(a, b memPick) int {
		if c := b.expires.Compare(a.expires); c != 0 {
			return c
		}
		return cmp.Compare(b.hash, a.hash)
	})
	if limit > 0 && len(picked) > limit {
		picked = picked[:limit]
	}
	out := make([]*Session, 0, len(picked))
	for _, p := range picked {
		s, err := decode(op, p.hash, p.data, p.lastSeen)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Count implements Store.
func (m *Memory) Count(ctx context.Context) (int, error) {
	if err := m.lock("count sessions"); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	m.sweep(m.now())
	return len(m.sessions), nil
}

// SeenUser implements Store.
func (m *Memory) SeenUser(ctx context.Context, userID string, at time.Time) error {
	const op = "record user activity"
	if userID == "" {
		return fmt.Errorf("%s: empty user id", op)
	}
	if err := m.lock(op); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if sec := at.Unix(); sec > m.seen[userID] {
		m.seen[userID] = sec
	}
	return nil
}

// LastSeen implements Store.
func (m *Memory) LastSeen(ctx context.Context) (map[string]time.Time, error) {
	if err := m.lock("last seen"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	out := make(map[string]time.Time, len(m.seen))
	for u, sec := range m.seen {
		out[u] = time.Unix(sec, 0)
	}
	return out, nil
}

// Lock implements Store.
func (m *Memory) Lock(ctx context.Context, hash string, ttl time.Duration) (func(), bool, error) {
	const op = "lock session"
	if !validHash(hash) {
		return nil, false, fmt.Errorf("%s: %q is not a session hash", op, hash)
	}
	if ttl <= 0 {
		return nil, false, fmt.Errorf("%s: ttl %s is not positive", op, ttl)
	}
	if err := m.lock(op); err != nil {
		return nil, false, err
	}
	defer m.mu.Unlock()
	now := m.now()
	if l, held := m.leases[hash]; held && now.Before(l.expires) {
		return nil, false, nil
	}
	// An expired lease is simply replaced: its holder's unlock then finds
	// another token and leaves the new lease alone.
	m.leaseSeq++
	token := m.leaseSeq
	m.leases[hash] = memLease{token: token, expires: now.Add(ttl)}
	unlock := func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if l, held := m.leases[hash]; held && l.token == token {
			delete(m.leases, hash)
		}
	}
	return unlock, true, nil
}

// Ping implements Store.
func (m *Memory) Ping(ctx context.Context) error {
	if err := m.lock("ping session store"); err != nil {
		return err
	}
	m.mu.Unlock()
	return nil
}

// Close implements Store. The sessions are dropped: a closed Memory cannot
// be reopened.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.sessions, m.byUser, m.bySID, m.leases = nil, nil, nil, nil
	return nil
}
