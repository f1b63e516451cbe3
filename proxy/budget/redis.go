package budget

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Store shared by every replica on the same Redis and key
// prefix. Each subject has one hash, {prefix}b:{subject id}, holding used
// (records counted) and win (the window's id, Redis TIME at its start), with
// the window's length as the key's TTL: a fixed window starting at the
// subject's first read.
//
// Reserve is one Lua script rather than INCRBY+EXPIRE in MULTI/EXEC: how many
// records are granted depends on how many are used (min(want, limit-used)),
// and a transaction cannot branch on a value it reads without WATCH and a
// retry loop that replicas racing for the last records would keep failing.
// A script runs atomically on the server, so two replicas can never both
// take the last record. Its clock is the server's (TIME), so replicas with
// skewed clocks still agree on the window. Each call touches one key, which
// keeps it valid on a Cluster.
type Redis struct {
	client redis.UniversalClient
	prefix string
}

// NewRedis returns a store on client with keys under prefix. The caller
// keeps ownership of the client.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix}
}

func (r *Redis) key(subject string) string { return r.prefix + "b:" + subject }

// reserveScript: KEYS[1] the subject's hash; ARGV limit, window ms, want.
// Returns {granted, used, pttl, window id}.
var reserveScript = redis.NewScript(`
local limit = tonumber(ARGV[1])
local want = tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 'used', 'win')
local used = tonumber(h[1]) or 0
local win = h[2]
if not win then
  local t = redis.call('TIME')
  win = t[1] .. '.' .. t[2]
  used = 0
  redis.call('HSET', KEYS[1], 'used', 0, 'win', win)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local grant = limit - used
if grant > want then grant = want end
if grant < 0 then grant = 0 end
if grant > 0 then used = redis.call('HINCRBY', KEYS[1], 'used', grant) end
return {grant, used, redis.call('PTTL', KEYS[1]), win}
`)

// refundScript: KEYS[1] the subject's hash; ARGV n, window id. A window
// that ended (or was replaced by a newer one) is left alone: a refund into
// the next window would hand out records twice.
var refundScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'win') ~= ARGV[2] then return 0 end
local used = redis.call('HINCRBY', KEYS[1], 'used', -tonumber(ARGV[1]))
if used < 0 then redis.call('HSET', KEYS[1], 'used', 0) end
return 1
`)

// Reserve implements Store.
func (r *Redis) Reserve(ctx context.Context, subject string, limit int64, per time.Duration, want int64) (Grant, error) {
	v, err := reserveScript.Run(ctx, r.client, []string{r.key(subject)}, limit, per.Milliseconds(), want).Slice()
	if err != nil {
		return Grant{}, fmt.Errorf("%w: reserve: %w", ErrStore, err)
	}
	if len(v) != 4 {
		return Grant{}, fmt.Errorf("%w: reserve: unexpected reply %v", ErrStore, v)
	}
	g, ok1 := v[0].(int64)
	used, ok2 := v[1].(int64)
	ttl, ok3 := v[2].(int64)
	win, ok4 := v[3].(string)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return Grant{}, fmt.Errorf("%w: reserve: unexpected reply %v", ErrStore, v)
	}
	if ttl < 0 {
		// A key without expiry would never reset; it cannot come from the
		// script, so treat the window as a full one.
		ttl = per.Milliseconds()
	}
	return Grant{Granted: g, Used: used, Reset: time.Duration(ttl) * time.Millisecond, Window: win}, nil
}

// Refund implements Store.
func (r *Redis) Refund(ctx context.Context, subject, window string, n int64) error {
	if n <= 0 {
		return nil
	}
	if err := refundScript.Run(ctx, r.client, []string{r.key(subject)}, n, window).Err(); err != nil {
		return fmt.Errorf("%w: refund: %w", ErrStore, err)
	}
	return nil
}
