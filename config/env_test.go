package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestExpand(t *testing.T) {
	t.Parallel()
	vars := env(map[string]string{
		"HOST":    "crm.internal",
		"EMPTY":   "",
		"NESTED":  "${HOST}",
		"DOLLARS": "p$ss$${x}",
	})
	tests := []struct {
		in, want string
		wantErr  string
	}{
		{in: "no variables", want: "no variables"},
		{in: "http://${HOST}:8080", want: "http://crm.internal:8080"},
		{in: "${HOST}${HOST}", want: "crm.internalcrm.internal"},
		{in: "${MISSING:-fallback}", want: "fallback"},
		{in: "${EMPTY:-fallback}", want: "fallback"},
		{in: "${EMPTY}", want: ""},
		{in: "${MISSING:-}", want: ""},
		{in: "${MISSING:-a:-b}", want: "a:-b"},
		{in: "$${HOST}", want: "${HOST}"},
		{in: "$$${HOST}", want: "$${HOST}"}, // read left to right: "$", then "$${"
		{in: "cost $5 and $HOST", want: "cost $5 and $HOST"},
		{in: "trailing $", want: "trailing $"},
		{in: "$$", want: "$$"},
		{in: "${NESTED}", want: "${HOST}"},
		{in: "${DOLLARS}", want: "p$ss$${x}"},
		{in: "${MISSING}", wantErr: "not set: MISSING"},
		{in: "x ${HOST", wantErr: "unterminated"},
		{in: "${}", wantErr: "invalid variable name"},
		{in: "${1X}", wantErr: "invalid variable name"},
		{in: "${A-B}", wantErr: "invalid variable name"},
		{in: "${HOST:=x}", wantErr: "invalid variable name"},
		{in: "${MISSING:-${HOST}}", wantErr: "nested"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := expand(tc.in, vars)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("expand(%q) = %q, %v; want error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("expand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParseExpandsEnv(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"CRM":      "http://crm.internal",
		"T":        "45s",
		"ENABLED":  "true",
		"AUD":      "crmgate",
		"KEY_NAME": "listen",
	}
	doc := `
upstream:
  url: ${CRM}
  timeout: ${T}
  max_request_body: ${BODY:-}
  auth: {type: header, header: X-Api-Key, value: "pa$$word$${LITERAL}"}
identity:
  bearer:
    enabled: ${ENABLED}
    issuer: https://id.example
    audiences: ["${AUD}", "${AUD}-2"]
  roles:
    sales: ["${AUD}"]
policy: {paths: [rego]}
`
	cfg, err := Parse([]byte(doc), env(vars), "")
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"url", cfg.Upstream.URL, "http://crm.internal"},
		{"typed duration from env", cfg.Upstream.Timeout, 45 * time.Second},
		{"empty typed value falls back to default", cfg.Upstream.MaxRequestBody, int64(DefaultMaxRequestBody)},
		{"typed bool from env", cfg.Identity.Bearer.Enabled, true},
		{"list items", cfg.Identity.Bearer.Audiences[1], "crmgate-2"},
		{"map values", cfg.Identity.Roles["sales"][0], "crmgate"},
		{"lone dollars and escape", cfg.Upstream.Auth.Value, "pa$$word${LITERAL}"},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Errorf("got %#v, want %#v", c.got, c.want)
			}
		})
	}
}

func TestParseEnvErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		vars map[string]string
		path string
		msg  string
	}{
		{"unset variable names path and variable", "upstream:\n  url: ${CRM_URL}\n", nil, "upstream.url", "CRM_URL"},
		{"unset in list item", "policy:\n  paths: [a, \"${POLICY_DIR}\"]\n", nil, "policy.paths[1]", "POLICY_DIR"},
		{"keys are never expanded", "${KEY}: x\n", map[string]string{"KEY": "listen"}, `["${KEY}"]`, "unknown key"},
		{"env value is type-checked", "upstream:\n  timeout: ${T}\n", map[string]string{"T": "5 parsecs"}, "upstream.timeout", `invalid duration "5 parsecs"`},
		{"env value is validated", "upstream:\n  url: ${U}\n", map[string]string{"U": "ftp://x"}, "upstream.url", "http"},
		{"unterminated", "listen: \"${X\"\n", nil, "listen", "unterminated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tc.doc), env(tc.vars), "")
			wantProblem(t, err, tc.path, tc.msg)
		})
	}
	_, err := Parse([]byte("upstream:\n  url: ${CRM_URL}\n"), env(nil), "")
	if !errors.Is(err, ErrUnsetEnv) {
		t.Errorf("errors.Is(err, ErrUnsetEnv) = false for %v", err)
	}
}
