// Package session keeps crmgate's browser sessions on the server side, so a
// cookie carries nothing but an opaque random id and every replica sharing a
// store sees the same logins, logouts and revocations.
//
// Two stores implement Store: Memory for a single node and Redis for any
// number of replicas. Both key sessions by the SHA-256 of the id, never the
// id itself, so whoever can read the store (a backup, a MONITOR session, an
// admin listing) cannot replay a cookie. Both refuse, on Get, any session of
// a user that was created at or before that user's last revocation, so a
// lockout holds even when an index entry was missed in a race.
package session

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/crmgate/crmgate/policy"
)

// Errors every store returns, wrapped with the operation; test them with
// errors.Is.
var (
	// ErrNotFound means the session does not exist, has expired, was deleted
	// or belongs to a revoked user. Callers treat it as "not logged in".
	ErrNotFound = errors.New("session not found")
	// ErrUnavailable means the store could not be asked (connection refused,
	// timeout, store closed, server error). Callers must fail closed: no
	// request is let through on a session that could not be loaded.
	ErrUnavailable = errors.New("session store unavailable")
)

// idBytes is the entropy of a session id: 256 bits, so ids can neither be
// guessed nor collide.
const idBytes = 32

// Session is one browser login. Stores return fresh copies: modifying a
// returned Session changes nothing until it is written back with Update.
type Session struct {
	// ID is the opaque random id carried by the cookie (see NewID). Stores
	// never persist it; they key by its hash. Sessions returned by List and
	// ListUser have no ID, only Hash.
	ID string
	// Hash is the hex SHA-256 of ID: the key the store uses, safe to show to
	// administrators and to pass to DeleteHash. Stores fill it in.
	Hash    string
	Subject *policy.Subject
	// IDToken is kept as the id_token_hint for RP-initiated logout.
	IDToken string
	// RefreshToken must be encrypted by the caller before it is stored:
	// the store treats it as opaque bytes.
	RefreshToken []byte
	TokenExpiry  time.Time
	// CreatedAt is when the user logged in; LastSeen is the last Touch.
	CreatedAt time.Time
	LastSeen  time.Time
	AMR       []string
	ACR       string
	AuthTime  time.Time
	// SID is the IdP's session id (the ID token's sid claim), so a
	// back-channel logout naming that IdP session ends this one.
	SID string
}

// Store is where sessions live. Every method is safe for concurrent use.
// Errors wrap ErrNotFound or ErrUnavailable where the doc says so.
//
// The ttl a caller passes is the time until the session expires if nothing
// else happens: min(idle timeout, time left of the absolute lifetime). The
// store does not know the lifetimes; it expires what it is told.
type Store interface {
	// Create stores a new session under s.ID (which must come from NewID)
	// for ttl. s.Subject.ID is required: it is the user the session is
	// indexed, listed and revoked under. A zero CreatedAt or LastSeen is set
	// to the store's clock.
	Create(ctx context.Context, s *Session, ttl time.Duration) error
	// Get loads the session with this id, or returns ErrNotFound when it is
	// missing, expired, deleted or its user was revoked after it was made.
	Get(ctx context.Context, id string) (*Session, error)
	// Update replaces the stored fields of an existing session (tokens after
	// a refresh) and sets its ttl. It returns ErrNotFound when the session is
	// gone, and refuses to move a session to another user.
	Update(ctx context.Context, s *Session, ttl time.Duration) error
	// Touch records activity and extends the session to ttl from now. It
	// returns ErrNotFound rather than resurrect a session that is gone.
	// LastSeen never moves backwards. Touch is not an authentication
	// check (it need not consult revocations): call Get first.
	Touch(ctx context.Context, id string, lastSeen time.Time, ttl time.Duration) error
	// Delete ends the session with this id (logout). Deleting a missing
	// session is not an error, so logout is idempotent.
	Delete(ctx context.Context, id string) error
	// DeleteHash ends the session whose Hash is given (admin revocation of
	// one session seen in a listing). Unknown hashes are not an error.
	DeleteHash(ctx context.Context, hash string) error
	// RevokeUser deletes every session of the user and refuses any session
	// of theirs created up to now that a race kept out of the index. It
	// returns how many live sessions it deleted.
	RevokeUser(ctx context.Context, userID string) (int, error)
	// ListUser returns the user's live sessions, without IDs.
	ListUser(ctx context.Context, userID string) ([]*Session, error)
	// ListSID returns the live sessions whose SID is sid (those of one IdP
	// session, whatever their user), without IDs, found through an index
	// so that a back-channel logout naming only a sid misses none of them
	// however many sessions the store holds. An empty sid is an error:
	// sessions without one are not an IdP session's.
	ListSID(ctx context.Context, sid string) ([]*Session, error)
	// List returns up to limit live sessions, those expiring last first,
	// without IDs.
	List(ctx context.Context, limit int) ([]*Session, error)
	// Count returns the number of live sessions (the active-sessions gauge).
	Count(ctx context.Context) (int, error)
	// SeenUser records that the user was active at the given time (kept to
	// the second; an earlier time never replaces a later one).
	SeenUser(ctx context.Context, userID string, at time.Time) error
	// LastSeen returns every recorded user's last activity, for the
	// dormant-user report.
	LastSeen(ctx context.Context) (map[string]time.Time, error)
	// Lock takes a short lease on the session whose Hash is given, held by
	// at most one caller across every replica sharing the store, so that
	// only one of them uses a rotating refresh token. ok is false when
	// someone else holds the lease; err (wrapping ErrUnavailable when the
	// store could not be asked) means nobody knows, and the caller must not
	// proceed as if it held it. The lease ends after ttl even if never
	// released, so a crashed holder blocks others for ttl at most. unlock
	// releases this caller's lease only: once it has expired and another
	// caller took it, unlock leaves the new lease alone.
	Lock(ctx context.Context, hash string, ttl time.Duration) (unlock func(), ok bool, err error)
	// Ping reports whether the store can be used (readiness).
	Ping(ctx context.Context) error
	// Close releases the store; later calls return ErrUnavailable.
	Close() error
}

// NewID returns a new session id: 256 random bits, base64url without
// padding (43 characters, cookie-safe).
func NewID() (string, error) {
	b := make([]byte, idBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new session id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// HashID returns the key a store uses for a session id: the hex SHA-256.
func HashID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// validID reports whether id has NewID's shape. Create insists on it so a
// caller cannot store a session under an empty, short or client-chosen id.
func validID(id string) bool {
	if len(id) != base64.RawURLEncoding.EncodedLen(idBytes) {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(id)
	return err == nil && len(b) == idBytes
}

// validHash reports whether h is a lower-case hex SHA-256, so admin input
// never reaches a key it was not meant to name.
func validHash(h string) bool {
	if len(h) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// record is the stored form of a session. It is separate from Session so
// the stored format is explicit and versioned, and so the raw id and the
// mutable LastSeen (kept beside it) are never part of it.
type record struct {
	V            int             `json:"v"`
	Subject      *policy.Subject `json:"subject"`
	IDToken      string          `json:"id_token,omitempty"`
	RefreshToken []byte          `json:"refresh_token,omitempty"`
	TokenExpiry  time.Time       `json:"token_expiry,omitzero"`
	CreatedAt    time.Time       `json:"created_at"`
	AMR          []string        `json:"amr,omitempty"`
	ACR          string          `json:"acr,omitempty"`
	AuthTime     time.Time       `json:"auth_time,omitzero"`
	SID          string          `json:"sid,omitempty"`
}

const recordVersion = 1

// encode checks s for storing and returns its record bytes. create also
// requires a NewID-shaped id.
func encode(op string, s *Session, ttl time.Duration, create bool) ([]byte, error) {
	switch {
	case s == nil:
		return nil, fmt.Errorf("%s: nil session", op)
	case s.Subject == nil || s.Subject.ID == "":
		return nil, fmt.Errorf("%s: session has no subject id", op)
	case ttl <= 0:
		return nil, fmt.Errorf("%s: ttl %s is not positive", op, ttl)
	case create && !validID(s.ID):
		return nil, fmt.Errorf("%s: id is not a value from NewID", op)
	case !create && s.ID == "":
		return nil, fmt.Errorf("%s: session has no id", op)
	}
	b, err := json.Marshal(record{
		V:            recordVersion,
		Subject:      s.Subject,
		IDToken:      s.IDToken,
		RefreshToken: s.RefreshToken,
		TokenExpiry:  s.TokenExpiry,
		CreatedAt:    s.CreatedAt,
		AMR:          s.AMR,
		ACR:          s.ACR,
		AuthTime:     s.AuthTime,
		SID:          s.SID,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: encode: %w", op, err)
	}
	return b, nil
}

// decode rebuilds a Session from its stored parts. A record that does not
// decode, or has no subject, is an error rather than an anonymous session.
//
// Every call returns a Session of its own, down to the Subject's slices and
// attributes, also when the record comes from the memo (see decoded).
func decode(op, hash string, data []byte, lastSeen time.Time) (*Session, error) {
	r, ok := decodedRecord(hash, data)
	if !ok {
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("%s: decode session %s: %w", op, hash, err)
		}
		if r.V != recordVersion {
			return nil, fmt.Errorf("%s: decode session %s: unknown record version %d", op, hash, r.V)
		}
		if r.Subject == nil || r.Subject.ID == "" {
			return nil, fmt.Errorf("%s: decode session %s: no subject", op, hash)
		}
		decoded.Add(hash, memoRecord{data: bytes.Clone(data), rec: r})
	}
	return &Session{
		Hash:         hash,
		Subject:      r.Subject.Clone(),
		IDToken:      r.IDToken,
		RefreshToken: slices.Clone(r.RefreshToken),
		TokenExpiry:  r.TokenExpiry,
		CreatedAt:    r.CreatedAt,
		LastSeen:     lastSeen,
		AMR:          slices.Clone(r.AMR),
		ACR:          r.ACR,
		AuthTime:     r.AuthTime,
		SID:          r.SID,
	}, nil
}

// decoded remembers the last record decoded for each session hash. Every
// request of a browser session reads its record, and parsing it (a
// kilobyte and more of JSON, with the ID token) cost more than the policy
// decision; a copy costs a tenth of that. A record is reused only for
// exactly the same stored bytes, so an Update, a refresh or another
// store's record is decoded anew. The memo's records are never handed out.
var decoded = func() *lru.Cache[string, memoRecord] {
	c, err := lru.New[string, memoRecord](maxMemoRecords)
	if err != nil {
		panic(err) // a constant, positive size
	}
	return c
}()

// maxMemoRecords bounds the memo: the least recently used go first.
const maxMemoRecords = 4096

type memoRecord struct {
	data []byte // a private copy of the stored bytes
	rec  record
}

// decodedRecord returns the record decoded from exactly data, if any.
func decodedRecord(hash string, data []byte) (record, bool) {
	e, ok := decoded.Get(hash)
	if !ok || !bytes.Equal(e.data, data) {
		return record{}, false
	}
	return e.rec, true
}

// revokedBy reports whether a session the store created at created is
// covered by a revocation at revokedAt. "At or before" rather than "before"
// because a clock with coarse resolution may give both the same instant,
// and the safe reading of a tie is "revoked".
func revokedBy(created, revokedAt time.Time) bool {
	return !revokedAt.IsZero() && !created.After(revokedAt)
}
