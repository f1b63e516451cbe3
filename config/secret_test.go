package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSecretFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "secrets/api-key", "s3cr3t-api-key\n")
	writeFile(t, dir, "secrets/oidc", "oidc-secret\r\n")
	writeFile(t, dir, "secrets/two-newlines", "redis-pass\n\n")
	writeFile(t, dir, "secrets/session", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	abs := writeFile(t, t.TempDir(), "admin", "admin-token-0123456789\n")
	cfgPath := writeFile(t, dir, "crmgate.yaml", `
upstream:
  url: http://crm.internal
  auth:
    type: header
    header: X-Api-Key
    value_file: secrets/api-key
identity:
  oidc:
    issuer: https://id.example
    client_id: crmgate
    client_secret_file: ./secrets/oidc
  bearer: {enabled: true, audiences: [crmgate]}
public_url: https://crm.example
session:
  store: redis
  redis:
    addrs: [127.0.0.1:6379]
    password_file: secrets/two-newlines
  encryption_key_file: secrets/session
policy: {paths: [rego]}
admin:
  token_file: `+abs+`
`)
	cfg, err := Load(cfgPath)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	checks := []struct{ name, got, want string }{
		{"relative to the config file, newline trimmed", cfg.Upstream.Auth.Value, "s3cr3t-api-key"},
		{"crlf trimmed", cfg.Identity.OIDC.ClientSecret, "oidc-secret"},
		{"only one newline trimmed", cfg.Session.Redis.Password, "redis-pass\n"},
		{"no newline", cfg.Session.EncryptionKey, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
		{"absolute path", cfg.Admin.Token, "admin-token-0123456789"},
		{"file path kept, resolved", cfg.Upstream.Auth.ValueFile, filepath.Join(dir, "secrets", "api-key")},
		{"policy path resolved", cfg.Policy.Paths[0], filepath.Join(dir, "rego")},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Errorf("got %q, want %q", c.got, c.want)
			}
		})
	}
}

func TestSecretFileProblems(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "token", "the-actual-secret-value\n")
	writeFile(t, dir, "empty", "\n")
	writeFile(t, dir, "huge", strings.Repeat("x", maxSecretFile+1))
	tests := []struct {
		name string
		doc  string
		path string
		msg  string
	}{
		{"both set names both paths", "admin: {token: inline-token-0123456789, token_file: token}\n", "admin.token", "admin.token_file"},
		{"both set nested", "policy: {bundle: {url: https://b.example/b.tar.gz, token: x, token_file: token}}\n", "policy.bundle.token", "policy.bundle.token_file"},
		{"both set from env", "upstream: {auth: {type: header, header: X-K, value: \"${K:-v}\", value_file: token}}\n", "upstream.auth.value", "upstream.auth.value_file"},
		{"missing file", "session: {redis: {password_file: nope}}\n", "session.redis.password_file", "no such file"},
		{"directory", "identity: {oidc: {client_secret_file: .}}\n", "identity.oidc.client_secret_file", "read secret"},
		{"empty file", "admin: {token_file: empty}\n", "admin.token_file", "empty"},
		{"oversized file", "session: {encryption_key_file: huge}\n", "session.encryption_key_file", "larger than"},
		{"secret is still validated", "session: {encryption_key_file: token}\n", "session.encryption_key", "base64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tc.doc), env(nil), dir)
			wantProblem(t, err, tc.path, tc.msg)
			if strings.Contains(err.Error(), "the-actual-secret-value") {
				t.Errorf("error reveals the secret: %v", err)
			}
		})
	}
	_, err := Parse([]byte(minimalYAML+"admin: {token_file: nope}\n"), env(nil), dir)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(err, fs.ErrNotExist) = false for %v", err)
	}
}

func TestRelativePaths(t *testing.T) {
	t.Parallel()
	doc := minimalYAML + `
tls: {cert_file: tls/crt.pem, key_file: /abs/key.pem}
decision_log: {output: file, file: logs/decisions.log}
`
	cfg, err := Parse([]byte(doc), env(nil), "/etc/crmgate")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ got, want string }{
		{cfg.TLS.CertFile, "/etc/crmgate/tls/crt.pem"},
		{cfg.TLS.KeyFile, "/abs/key.pem"},
		{cfg.DecisionLog.File, "/etc/crmgate/logs/decisions.log"},
		{cfg.Policy.Paths[0], "/etc/crmgate/rego"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	cfg, err = Parse([]byte(doc), env(nil), "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS.CertFile != "tls/crt.pem" {
		t.Errorf("empty baseDir changed the path to %q", cfg.TLS.CertFile)
	}
}
