package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/policy"
)

const (
	composeFile    = "compose/compose.yaml"
	composeEnvFile = "compose/example.env"
)

// exampleEnv reads compose/example.env (KEY=VALUE lines) and fills the
// values a user is told to fill in, with values of the right shape.
func exampleEnv(t *testing.T, fill bool) []string {
	t.Helper()
	var env []string
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, composeEnvFile)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not KEY=VALUE: %q", composeEnvFile, line)
		}
		if v == "" && fill {
			v = "filled-" + strings.ToLower(k) + "-0123456789"
			if k == "SESSION_KEY" {
				v = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
			}
		}
		env = append(env, k+"="+v)
	}
	return env
}

// loadCompose loads the compose file the way `docker compose config` does
// (compose-go: the Compose Specification schema, interpolation, path
// resolution), with env as the only environment.
func loadCompose(t *testing.T, env []string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{composeFile}, cli.WithEnv(env), cli.WithName("crmgate"), cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

// composeProblems checks the crmgate, redis and idp services: the crmgate
// container's hardening, what it mounts, and that its configuration, read
// with the service's own environment, loads with the mounted policy.
func composeProblems(t *testing.T, p *types.Project, configPath string) []string {
	t.Helper()
	var probs []string
	add := func(format string, a ...any) { probs = append(probs, fmt.Sprintf(format, a...)) }
	for _, name := range []string{"crmgate", "redis", "idp"} {
		if _, ok := p.Services[name]; !ok {
			add("service %s missing", name)
		}
	}
	gw, ok := p.Services["crmgate"]
	if !ok {
		return probs
	}
	if !gw.ReadOnly {
		add("crmgate: read_only is not true")
	}
	if !slices.Contains(gw.CapDrop, "ALL") || len(gw.CapAdd) > 0 {
		add("crmgate: must drop ALL capabilities and add none")
	}
	if !slices.Contains(gw.SecurityOpt, "no-new-privileges:true") {
		add("crmgate: security_opt lacks no-new-privileges:true")
	}
	if u, _, _ := strings.Cut(gw.User, ":"); u == "" || u == "0" || u == "root" {
		add("crmgate: user %q is root", gw.User)
	}
	if gw.Build == nil || filepath.Base(gw.Build.Dockerfile) != "Dockerfile" {
		add("crmgate: not built from deploy/Dockerfile")
	} else if _, err := os.Stat(filepath.Join(gw.Build.Context, gw.Build.Dockerfile)); err != nil {
		add("crmgate: build: %v", err)
	}
	if d, ok := gw.DependsOn["redis"]; !ok || d.Condition != types.ServiceConditionHealthy {
		add("crmgate: does not wait for a healthy redis")
	}
	if r, ok := p.Services["redis"]; ok {
		if r.HealthCheck == nil || len(r.HealthCheck.Test) == 0 {
			add("redis: no healthcheck (crmgate waits on it)")
		}
		if !slices.Contains(r.Command, "--requirepass") {
			add("redis: runs without a password")
		}
	}
	// Published ports stay on loopback: the admin listener and a test IdP
	// with public passwords must not face the network.
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				add("%s: port %d published on %q, not 127.0.0.1", name, port.Target, port.HostIP)
			}
		}
	}

	// The configuration as the container sees it.
	root := t.TempDir()
	var cfgSrc string
	for _, v := range gw.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if !v.ReadOnly {
			add("crmgate: mount %s is writable", v.Target)
		}
		// Copied, not symlinked: a bind mount is a real directory, and the
		// policy loader does not follow a symlinked root.
		dst := filepath.Join(root, filepath.FromSlash(v.Target))
		if fi, err := os.Stat(v.Source); err != nil {
			add("crmgate: mount source: %v", err)
			continue
		} else if fi.IsDir() {
			if err := os.CopyFS(dst, os.DirFS(v.Source)); err != nil {
				t.Fatal(err)
			}
		} else {
			writeTestFile(t, dst, string(readFile(t, v.Source)))
		}
		if v.Target == configPath {
			cfgSrc = v.Source
		}
	}
	if cfgSrc == "" {
		add("crmgate: nothing mounted at %s (the image's --config)", configPath)
		return probs
	}
	env := map[string]string{}
	for k, v := range gw.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	data, err := os.ReadFile(cfgSrc)
	if err != nil {
		add("crmgate: %v", err)
		return probs
	}
	cfg, err := config.Parse(data, func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		filepath.Dir(filepath.Join(root, filepath.FromSlash(configPath))))
	if err != nil {
		add("crmgate: its configuration does not load with the service environment: %v", err)
		return probs
	}
	if _, err := policy.Load(context.Background(), policy.Options{Source: policy.Source{Paths: cfg.Policy.Paths}, Package: cfg.Policy.Package}); err != nil {
		add("crmgate: the mounted policy does not load: %v", err)
	}
	// crmgate shares the IdP's network namespace, so its listeners are
	// published there, and the issuer is the same URL for browser and proxy.
	if gw.NetworkMode != "service:idp" {
		add("crmgate: network_mode %q: the issuer URL would differ between browser and crmgate", gw.NetworkMode)
	}
	published := map[int]bool{}
	for _, port := range p.Services["idp"].Ports {
		n, _ := strconv.Atoi(port.Published)
		if n == int(port.Target) {
			published[n] = true
		}
	}
	for what, port := range map[string]int{"listen": hostPort(cfg.Listen.Address), "public_url": urlPort(cfg.PublicURL), "identity.oidc.issuer": urlPort(cfg.Identity.OIDC.Issuer)} {
		if !published[port] {
			add("%s port %d is not published", what, port)
		}
	}
	if cfg.Session.Store != "redis" || !slices.ContainsFunc(cfg.Session.Redis.Addrs, func(a string) bool { return strings.HasPrefix(a, "redis:") }) {
		add("crmgate: sessions are not in the redis service")
	}
	return probs
}

// TestComposeFile loads the compose file with compose-go and checks it;
// then breaks it in copies to see each check fail.
func TestComposeFile(t *testing.T) {
	t.Parallel()
	p, err := loadCompose(t, exampleEnv(t, true))
	if err != nil {
		t.Fatalf("load %s: %v", composeFile, err)
	}
	for _, prob := range composeProblems(t, p, imageConfigPath(t)) {
		t.Error(prob)
	}

	t.Run("required secrets are required", func(t *testing.T) {
		if _, err := loadCompose(t, exampleEnv(t, false)); err == nil || !strings.Contains(err.Error(), "REDIS_PASSWORD") && !strings.Contains(err.Error(), "SESSION_KEY") {
			t.Fatalf("loading with the unfilled example.env: %v, want a required-variable error", err)
		}
	})

	src := string(readFile(t, composeFile))
	for _, c := range []struct{ name, from, to, want string }{
		{"writable root", "    read_only: true\n    user:", "    read_only: false\n    user:", "read_only"},
		{"root user", `user: "65532:65532"`, `user: "0:0"`, "root"},
		{"capability added", "    cap_drop: [ALL]\n    security_opt:\n      - no-new-privileges:true\n    depends_on:", "    cap_drop: [ALL]\n    cap_add: [NET_ADMIN]\n    security_opt:\n      - no-new-privileges:true\n    depends_on:", "capabilities"},
		{"admin on all interfaces", `"127.0.0.1:9090:9090"`, `"9090:9090"`, "not 127.0.0.1"},
		{"writable policy", "../../rego:/etc/crmgate/policy:ro", "../../rego:/etc/crmgate/policy", "writable"},
		{"config elsewhere", "./crmgate.yaml:/etc/crmgate/crmgate.yaml:ro", "./crmgate.yaml:/etc/crmgate/config.yaml:ro", "nothing mounted"},
		{"secret not passed", "      SESSION_KEY: ${SESSION_KEY:?set SESSION_KEY in .env (openssl rand -base64 32)}\n", "", "does not load"},
		{"redis without password", `"--requirepass", "${REDIS_PASSWORD:?set REDIS_PASSWORD in .env}", `, "", "password"},
	} {
		t.Run(c.name, func(t *testing.T) {
			broken := strings.Replace(src, c.from, c.to, 1)
			if broken == src {
				t.Fatalf("%q not found in %s", c.from, composeFile)
			}
			dir := t.TempDir()
			f := filepath.Join(dir, "compose.yaml")
			writeTestFile(t, f, broken)
			// Relative paths resolve against the original directory.
			abs, err := filepath.Abs(filepath.Dir(composeFile))
			if err != nil {
				t.Fatal(err)
			}
			opts, err := cli.NewProjectOptions([]string{f}, cli.WithEnv(exampleEnv(t, true)), cli.WithName("crmgate"),
				cli.WithWorkingDirectory(abs), cli.WithResolvedPaths(true))
			if err != nil {
				t.Fatal(err)
			}
			p, err := opts.LoadProject(context.Background())
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			probs := composeProblems(t, p, imageConfigPath(t))
			if !slices.ContainsFunc(probs, func(p string) bool { return strings.Contains(p, c.want) }) {
				t.Errorf("problems %q do not mention %q", probs, c.want)
			}
		})
	}
}
