package app_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/app"
	"github.com/crmgate/crmgate/proxy/demo"
	"github.com/crmgate/crmgate/proxy/emulator"
	"github.com/crmgate/crmgate/proxy/session"
	"github.com/crmgate/crmgate/test/testredis"
)

// BenchmarkSessionPipeline is one browser request through the whole
// pipeline (session lookup, classify, policy, upstream emulator, response
// enforcement), with the session in the memory store or in Redis, at the
// same concurrency.
func BenchmarkSessionPipeline(b *testing.B) {
	for _, store := range []string{config.StoreMemory, config.StoreRedis} {
		b.Run(store, func(b *testing.B) {
			ds := emulator.DepartmentStore()
			up := httptest.NewServer(emulator.NewSuiteCRM(ds, emulator.SuiteOptions{ClientID: "crmgate", ClientSecret: "s3cret"}))
			defer up.Close()
			cfg := demo.Config("127.0.0.1:1", "127.0.0.1:2", up.URL, "http://127.0.0.1:1", "admin-token", "s3cret")
			cfg.Identity.Bearer = config.Bearer{}
			// Discovery fails at once (nothing listens): sessions that need
			// no refresh are served all the same.
			cfg.Identity.OIDC = config.OIDC{Issuer: "http://127.0.0.1:1", ClientID: "crmgate", ClientSecret: "x"}
			cfg.DecisionLog.Output = config.LogNone
			if store == config.StoreRedis {
				k := make([]byte, 32)
				_, _ = rand.Read(k)
				cfg.Session.Store = config.StoreRedis
				cfg.Session.Redis = config.Redis{Addrs: []string{testredis.Addr()}, KeyPrefix: testredis.Prefix(b, testredis.Client(b))}
				cfg.Session.EncryptionKey = base64.StdEncoding.EncodeToString(k)
			}
			config.ApplyDefaults(cfg)
			if err := cfg.Validate(); err != nil {
				b.Fatal(err)
			}
			a, err := app.Build(context.Background(), cfg, app.Deps{PolicyFS: demoPolicy(b), Version: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			defer a.Close(context.Background())
			id, _ := session.NewID()
			now := time.Now()
			s := &session.Session{ID: id, Subject: &policy.Subject{ID: "alice", Roles: []string{"sales"}, Teams: []string{"store-12"},
				Attributes: map[string]any{"crm_user_id": "u-sales1"}, AMR: []string{"pwd"}, Auth: "session"},
				TokenExpiry: now.Add(24 * time.Hour), CreatedAt: now, LastSeen: now}
			if err := a.SessionStore().Create(context.Background(), s, time.Hour); err != nil {
				b.Fatal(err)
			}
			defer a.SessionStore().RevokeUser(context.Background(), "alice")
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodGet, "/Api/V8/module/Accounts?page[size]=5", nil)
					req.AddCookie(&http.Cookie{Name: "crmgate_session", Value: id})
					req.Header.Set("Accept", "application/json")
					w := httptest.NewRecorder()
					a.Handler.ServeHTTP(w, req)
					if w.Code != 200 {
						b.Fatalf("status %d: %s", w.Code, w.Body)
					}
				}
			})
		})
	}
}
