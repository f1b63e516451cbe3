package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/proxy/login"
	"github.com/crmgate/crmgate/proxy/metrics"
	"github.com/crmgate/crmgate/proxy/session"
)

// ErrMemoryStore is returned by OpenStore when asked to open a memory
// store from outside the process that holds it.
var ErrMemoryStore = errors.New("session.store is memory: its sessions exist only inside the running crmgate process, " +
	"so only redis sessions can be revoked from outside it; use DELETE /admin/sessions on the admin listener, or session.store redis")

// OpenStore opens the configured session store. With external true (a CLI
// command working on the sessions of running replicas) a memory store is
// refused with ErrMemoryStore, since a fresh memory store would silently
// hold none of them. log (may be nil) hears about the Redis session cache.
func OpenStore(ctx context.Context, c config.Session, external bool, log *zap.Logger) (session.Store, error) {
	if log == nil {
		log = zap.NewNop()
	}
	switch c.Store {
	case config.StoreMemory, "":
		if external {
			return nil, ErrMemoryStore
		}
		return session.NewMemory(nil), nil
	case config.StoreRedis:
		o := redisOptions(c.Redis)
		// A CLI command works once and exits: a cache would only add a
		// connection.
		st := session.OpenRedis(o, c.Redis.KeyPrefix, !external && (c.Redis.LocalCache == nil || *c.Redis.LocalCache),
			func(err error) {
				log.Warn("session cache not serving; sessions are read from Redis until its tracking connection is back",
					zap.Error(err))
			})
		if external {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := st.Ping(pctx); err != nil {
				_ = st.Close()
				return nil, fmt.Errorf("open session store: %w", err)
			}
		}
		return st, nil
	}
	return nil, fmt.Errorf("open session store: unknown store %q", c.Store)
}

// redisOptions is the go-redis client for session.redis, which the session
// store and the read budgets share.
func redisOptions(c config.Redis) *redis.UniversalOptions {
	o := &redis.UniversalOptions{
		Addrs:      c.Addrs,
		MasterName: c.MasterName,
		Username:   c.Username,
		Password:   c.Password,
		DB:         c.DB,
		// Every request waits on the store: when Redis is down, answer
		// 503 within about a second rather than after go-redis's default
		// retries and backoff.
		MaxRetries:   1,
		DialTimeout:  500 * time.Millisecond,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
	}
	if c.TLS {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return o
}

// sessions is the browser-login part of an App.
type sessions struct {
	store session.Store
	login *login.Login
	// seen records bearer-token users' activity in store (seen.go).
	seen *seenRecorder
	stop context.CancelFunc
	wg   sync.WaitGroup
	// once makes App.Close idempotent (tests close twice: to flush the
	// decision log, then in cleanup).
	once sync.Once
}

// gaugeInterval is how often the active-sessions gauge is refreshed.
const gaugeInterval = 15 * time.Second

// buildSessions assembles browser login when identity.oidc is configured
// (nil otherwise): the session store, the OIDC login with discovery (retried
// in the background when the IdP is down at start), the active-sessions
// gauge and the recorder of bearer-token users' last-seen times.
func buildSessions(ctx context.Context, cfg *config.Config, client *http.Client, m *metrics.Metrics, log *zap.Logger) (*sessions, error) {
	if cfg.Identity.OIDC.Issuer == "" {
		return nil, nil
	}
	var key []byte
	if cfg.Session.EncryptionKey != "" {
		k, err := cfg.Session.EncryptionKeyBytes()
		if err != nil {
			return nil, fmt.Errorf("session.encryption_key: %w", err)
		}
		key = k
	}
	store, err := OpenStore(ctx, cfg.Session, false, log)
	if err != nil {
		return nil, err
	}
	seen, err := newSeenRecorder(store, seenInterval, seenUsers, seenQueue, time.Now, log.Named("seen"))
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	id := cfg.Identity
	l, err := login.New(login.Options{
		Issuer: id.OIDC.Issuer, ClientID: id.OIDC.ClientID, ClientSecret: id.OIDC.ClientSecret, Scopes: id.OIDC.Scopes,
		PublicURL: cfg.PublicURL, RedirectPath: id.OIDC.RedirectPath, CookieName: cfg.Session.CookieName,
		IdleTimeout: cfg.Session.IdleTimeout, MaxLifetime: cfg.Session.MaxLifetime, Key: key,
		StepUpACR: id.MFA.StepUpACR, StepUpMaxAge: id.MFA.StepUpMaxAge, MFAACR: id.MFA.ACR,
		RequireMFARoles: id.MFA.RequireForRoles,
		Store:           store, Mapper: Mapper(id), Metrics: m, Logger: log.Named("login"), HTTPClient: client,
	})
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	if err := l.Start(dctx); err != nil {
		log.Warn("identity provider unavailable at start; logins answer 503 until discovery succeeds", zap.Error(err))
	}
	cancel()
	if rs, ok := store.(*session.Redis); ok && rs.Cached() {
		m.WatchSessionCache(rs.CacheServing,
			func() uint64 { h, _ := rs.CacheLookups(); return h },
			func() uint64 { _, mi := rs.CacheLookups(); return mi })
	}
	gctx, stop := context.WithCancel(context.Background())
	s := &sessions{store: store, login: l, seen: seen, stop: stop}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		seen.run(gctx)
	}()
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(gaugeInterval)
		defer t.Stop()
		for {
			cctx, cancel := context.WithTimeout(gctx, 5*time.Second)
			if n, err := store.Count(cctx); err == nil {
				m.SetActiveSessions(n)
			}
			cancel()
			select {
			case <-gctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s, nil
}

// adminHandlers are the session endpoints of the admin listener.
func (s *sessions) adminHandlers(log *zap.Logger) map[string]http.Handler {
	h := login.Admin(s.store, log.Named("admin"))
	return map[string]http.Handler{"GET /admin/sessions": h, "DELETE /admin/sessions": h}
}

// ready reports whether the session store answers.
func (s *sessions) ready(ctx context.Context) error {
	if err := s.store.Ping(ctx); err != nil {
		return fmt.Errorf("session store: %w", err)
	}
	return nil
}

func (s *sessions) close() error {
	s.stop()
	s.wg.Wait()
	s.login.Close()
	return s.store.Close()
}

// SessionStore returns the session store of the browser login, or nil when
// identity.oidc is not configured (tools and tests that create or inspect
// sessions directly).
func (a *App) SessionStore() session.Store {
	if a.sessions == nil {
		return nil
	}
	return a.sessions.store
}
