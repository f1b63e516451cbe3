package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/session"
	"github.com/crmgate/crmgate/test/testredis"
)

func TestSessionsRevoke(t *testing.T) {
	addr := testredis.Addr()
	prefix := testredis.Prefix(t, testredis.Client(t))
	ctx := context.Background()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	redisCfg := validConfig + `
session:
  store: redis
  encryption_key: ` + base64.StdEncoding.EncodeToString(key) + `
  redis:
    addrs: [` + addr + `]
    key_prefix: "` + prefix + `"
`
	st := session.NewRedis(redis.NewClient(&redis.Options{Addr: addr}), prefix, nil)
	t.Cleanup(func() { _ = st.Close() })
	ids := map[string]string{}
	for _, user := range []string{"alice", "alice", "bob"} {
		id, err := session.NewID()
		if err != nil {
			t.Fatal(err)
		}
		s := &session.Session{ID: id, Subject: &policy.Subject{ID: user, Auth: "session"}}
		if err := st.Create(ctx, s, time.Hour); err != nil {
			t.Fatal(err)
		}
		ids[id] = user
	}

	cases := []struct {
		name    string
		cfg     string
		args    []string
		code    int
		wantOut string
		wantErr string
	}{
		{"memory store cannot be revoked from outside", validConfig, []string{"--user", "alice"}, 1, "",
			"only inside the running crmgate process"},
		{"user required", redisCfg, nil, 2, "", "--user is required"},
		{"unknown subcommand", redisCfg, nil, 2, "", "Usage: crmgate sessions revoke"},
		{"redis", redisCfg, []string{"--user", "alice"}, 0, "revoked 2 session(s) of alice", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeSetup(t, c.cfg, map[string]string{"p.rego": "package crmgate\n"})
			args := append([]string{"sessions", "revoke", "--config", path}, c.args...)
			if c.name == "unknown subcommand" {
				args = []string{"sessions", "list", "--config", path}
			}
			code, out, errOut := runCLI(args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, c.code, out, errOut)
			}
			if !strings.Contains(out, c.wantOut) || !strings.Contains(errOut, c.wantErr) {
				t.Errorf("stdout %q (want %q), stderr %q (want %q)", out, c.wantOut, errOut, c.wantErr)
			}
		})
	}
	for id, user := range ids {
		_, err := st.Get(ctx, id)
		switch {
		case user == "alice" && !errors.Is(err, session.ErrNotFound):
			t.Errorf("alice's session survived the revocation: %v", err)
		case user == "bob" && err != nil:
			t.Errorf("bob's session was touched: %v", err)
		}
	}
}
