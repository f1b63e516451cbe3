// Package app assembles a running crmgate from a validated configuration:
// policy engine, CRM profile, authenticators, upstream, decision log,
// metrics, and the two listeners. main and the demo both build through it,
// so there is one way to turn a config into a proxy.
package app

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy"
	"github.com/crmgate/crmgate/proxy/audit"
	"github.com/crmgate/crmgate/proxy/identity"
	"github.com/crmgate/crmgate/proxy/metrics"
	"github.com/crmgate/crmgate/proxy/page"
	"github.com/crmgate/crmgate/proxy/profile"
)

// Deps are what the caller supplies beyond the config.
type Deps struct {
	Logger *zap.Logger
	// PolicyFS, when set, replaces policy.paths (the demo's embedded policy).
	PolicyFS fs.FS
	// DecisionLogWriter overrides the stdout decision-log output (tests).
	DecisionLogWriter zapcore.WriteSyncer
	// HTTPClient is used for OIDC discovery and upstream tokens.
	HTTPClient *http.Client
	// Version labels decision-log events.
	Version string
	// Now is the proxy's clock (input.request.time and latencies); nil is
	// time.Now. Tests of time-dependent policies fix it.
	Now func() time.Time
}

// App is an assembled crmgate.
type App struct {
	Config   *config.Config
	Handler  *proxy.Handler
	Admin    http.Handler
	Policy   *policy.Engine
	Registry *prometheus.Registry
	Metrics  *metrics.Metrics
	log      *zap.Logger
	audit    *audit.Logger
	// sessions is the browser login, nil without identity.oidc.
	sessions *sessions
	// lifecycle reloads the policy (watch, bundle polls, admin, SIGHUP).
	lifecycle *policyLifecycle
	// closeBudgets closes the read budgets' Redis client, if any.
	closeBudgets func()
}

// Build wires every component. It fails, rather than starting a
// half-working proxy, if any part cannot be built.
func Build(ctx context.Context, cfg *config.Config, deps Deps) (*App, error) {
	log := deps.Logger
	if log == nil {
		log = zap.NewNop()
	}
	client := deps.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}

	clientAddr, err := buildClientAddr(cfg.Listen)
	if err != nil {
		return nil, err
	}
	prof, err := buildProfile(cfg.CRM)
	if err != nil {
		return nil, err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg, cfg.Metrics.Roles, prof.KnownModule)

	lifecycle, err := loadPolicy(ctx, cfg.Policy, deps.PolicyFS, client, m, log.Named("policy"))
	if err != nil {
		return nil, err
	}
	engine := lifecycle.engine

	var bearer proxy.BearerAuthenticator
	if cfg.Identity.Bearer.Enabled {
		issuer := cfg.Identity.Bearer.Issuer
		if issuer == "" {
			issuer = cfg.Identity.OIDC.Issuer
		}
		b, err := identity.NewBearer(ctx, identity.BearerConfig{
			Issuer:     issuer,
			Audiences:  cfg.Identity.Bearer.Audiences,
			Algorithms: cfg.Identity.Bearer.Algorithms,
			Mapper:     Mapper(cfg.Identity),
			HTTPClient: client,
		})
		if err != nil {
			return nil, fmt.Errorf("bearer authentication: %w", err)
		}
		bearer = b
	}

	upstreamURL, err := url.Parse(cfg.Upstream.URL)
	if err != nil {
		return nil, fmt.Errorf("upstream.url: %w", err)
	}
	cred, err := buildCredential(cfg.Upstream.Auth, client)
	if err != nil {
		return nil, err
	}

	sink, err := buildSink(cfg.DecisionLog, deps.DecisionLogWriter, client)
	if err != nil {
		return nil, err
	}
	// With decision_log.output none the logger stays nil: events are not
	// even built, so "logging off" costs nothing on any core.
	var auditLog *audit.Logger
	if sink != nil {
		auditLog = audit.New(sink, audit.Options{
			BufferSize:   cfg.DecisionLog.BufferSize,
			MaskPaths:    cfg.DecisionLog.MaskPaths,
			MaxRecordIDs: cfg.DecisionLog.MaxRecordIDs,
			Labels:       map[string]string{"app": "crmgate", "version": deps.Version},
		}, m, log.Named("audit"))
	}

	hashKey, err := sessionDerivedKey(cfg.Session, "crmgate mask hash v1")
	var cursorKey []byte
	if err == nil {
		cursorKey, err = sessionDerivedKey(cfg.Session, "crmgate list cursor v1")
	}
	if err != nil {
		_ = auditLog.Close(ctx)
		return nil, err
	}
	sess, err := buildSessions(ctx, cfg, client, m, log)
	if err != nil {
		_ = auditLog.Close(ctx)
		return nil, err
	}
	budgets, closeBudgets := buildBudgets(cfg)
	var sessionsSeam proxy.Sessions
	var problemPage proxy.ProblemPage
	// Without browser sessions there is no store to record last-seen times
	// in (and no dormant report to feed), so bearer activity goes unrecorded.
	var seen func(string)
	if sess != nil {
		sessionsSeam, problemPage, seen = sess.login, page.Problem, sess.seen.Seen
	}
	h, err := proxy.New(proxy.Options{
		Profile:  prof,
		Policy:   engine,
		Bearer:   bearer,
		Sessions: sessionsSeam,
		Seen:     seen,
		Page:     problemPage,
		Upstream: proxy.UpstreamOptions{
			URL:                   upstreamURL,
			DialTimeout:           cfg.Upstream.DialTimeout,
			ResponseHeaderTimeout: cfg.Upstream.ResponseHeaderTimeout,
			IdleConnTimeout:       cfg.Upstream.IdleConnTimeout,
			Timeout:               cfg.Upstream.Timeout,
			MaxIdleConnsPerHost:   cfg.Upstream.MaxIdleConnsPerHost,
			Credential:            cred,
		},
		PublicPath:              cfg.PublicPath,
		PublicURL:               cfg.PublicURL,
		MaxRequestBody:          cfg.Upstream.MaxRequestBody,
		HashKey:                 hashKey,
		CursorKey:               cursorKey,
		MaxRecordIDs:            cfg.DecisionLog.MaxRecordIDs,
		NoPushdown:              cfg.CRM.Pushdown != nil && !*cfg.CRM.Pushdown,
		ClientAddr:              clientAddr,
		Now:                     deps.Now,
		Budgets:                 budgets,
		BudgetReserve:           cfg.Budgets.Reserve,
		BudgetAllowOnStoreError: cfg.Budgets.OnStoreError == config.BudgetAllow,
		StepUpACR:               cfg.Identity.MFA.StepUpACR,
		StepUpMaxAge:            cfg.Identity.MFA.StepUpMaxAge,
		PolicyPath:              cfg.Policy.Package,
		DecisionLog:             auditLog,
		Metrics:                 m,
		Logger:                  log.Named("proxy"),
	})
	if err != nil {
		_ = auditLog.Close(ctx)
		closeBudgets()
		if sess != nil {
			_ = sess.close()
		}
		return nil, err
	}
	var extra map[string]http.Handler
	if sess != nil {
		extra = sess.adminHandlers(log)
	}
	extra = withReports(extra, cfg, engine, prof, sess, log)
	if extra == nil {
		extra = map[string]http.Handler{}
	}
	extra["POST /admin/policy/reload"] = lifecycle.adminHandler()
	admin := proxy.NewAdmin(proxy.AdminOptions{
		Token:    cfg.Admin.Token,
		Gatherer: reg,
		Ready: func(ctx context.Context) error {
			if engine.Revision() == "" {
				return errors.New("no policy loaded")
			}
			if sess != nil {
				return sess.ready(ctx)
			}
			return nil
		},
		Extra: extra,
	})
	if err := lifecycle.start(); err != nil {
		_ = auditLog.Close(ctx)
		closeBudgets()
		if sess != nil {
			_ = sess.close()
		}
		return nil, err
	}
	return &App{Config: cfg, Handler: h, Admin: admin, Policy: engine, Registry: reg, Metrics: m, log: log, audit: auditLog,
		sessions: sess, lifecycle: lifecycle, closeBudgets: closeBudgets}, nil
}

// Mapper turns the identity config into the claims mapper both login and
// bearer authentication use.
func Mapper(id config.Identity) *identity.Mapper {
	return &identity.Mapper{
		Claims: identity.Claims{
			ID: id.Claims.ID, Email: id.Claims.Email, Name: id.Claims.Name,
			Roles: id.Claims.Roles, Groups: id.Claims.Groups, Teams: id.Claims.Teams,
			Attributes: id.Claims.Attributes,
		},
		Roles: id.Roles,
		MFA:   identity.MFAEvidence{AMR: id.MFA.AMR, ACR: id.MFA.ACR},
	}
}

// sessionDerivedKey derives a key for one use (label) from the session
// key, so every replica hashes a masked value and signs a list cursor the
// same way; without a session key each process draws its own (hashes then
// differ between replicas and restarts, and a cursor works only on the
// replica that signed it).
func sessionDerivedKey(s config.Session, label string) ([]byte, error) {
	if s.EncryptionKey == "" {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return nil, fmt.Errorf("mask hash key: %w", err)
		}
		return k, nil
	}
	key, err := s.EncryptionKeyBytes()
	if err != nil {
		return nil, fmt.Errorf("session.encryption_key: %w", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(label))
	return mac.Sum(nil), nil
}

func buildProfile(c config.CRM) (*profile.Profile, error) {
	routes := make([]profile.Route, 0, len(c.Routes))
	for _, r := range c.Routes {
		routes = append(routes, profile.Route{
			Method: r.Method, Pattern: r.Path, Action: r.Action, Kind: profile.Kind(r.Kind), Module: r.Module,
			ModuleFromBody: r.ModuleFromBody, IDFromBody: r.IDFromBody,
		})
	}
	if c.Profile == "generic" {
		var shape profile.Shape
		if c.Shape != nil {
			shape = profile.Shape{ListPath: c.Shape.ListPath, RecordPath: c.Shape.RecordPath, FieldsPath: c.Shape.FieldsPath,
				IDField: c.Shape.IDField, TotalPaths: c.Shape.TotalPaths}
		}
		p, err := profile.New("generic", routes, shape, c.Modules)
		if err != nil {
			return nil, fmt.Errorf("crm profile generic: %w", err)
		}
		return p, nil
	}
	p, err := profile.Builtin(c.Profile)
	if err != nil {
		return nil, fmt.Errorf("crm.profile: %w", err)
	}
	if len(routes) > 0 || len(c.Modules) > 0 {
		if p, err = p.WithRoutes(routes, c.Modules); err != nil {
			return nil, fmt.Errorf("crm.routes: %w", err)
		}
	}
	return p, nil
}

func buildCredential(a config.UpstreamAuth, client *http.Client) (proxy.Credential, error) {
	switch a.Type {
	case "", "none":
		return proxy.NoCredential{}, nil
	case "header":
		return proxy.HeaderCredential{Name: a.Header, Value: a.Value}, nil
	case "oauth2_client_credentials":
		return proxy.NewClientCredentials(clientcredentials.Config{
			ClientID: a.ClientID, ClientSecret: a.ClientSecret, TokenURL: a.TokenURL, Scopes: a.Scopes,
		}, client), nil
	}
	return nil, fmt.Errorf("upstream.auth.type: unknown %q", a.Type)
}

// buildSink returns nil for output none: no events are built at all.
func buildSink(c config.DecisionLog, override zapcore.WriteSyncer, client *http.Client) (audit.Sink, error) {
	if c.Output == "none" {
		return nil, nil
	}
	switch c.Output {
	case "stdout", "":
		// The override stands in for stdout only: a test that configures a
		// file or an http collector must exercise that sink.
		if override != nil {
			return audit.NewZapSink(override), nil
		}
		return audit.NewZapSink(zapcore.Lock(os.Stdout)), nil
	case "file":
		s, err := audit.NewFileSink(c.File, 100, 10)
		if err != nil {
			return nil, fmt.Errorf("decision_log.file: %w", err)
		}
		return s, nil
	case "http":
		return audit.NewHTTPSink(c.URL, client, ""), nil
	}
	return nil, fmt.Errorf("decision_log.output: unknown %q", c.Output)
}

// Serve runs the main and admin listeners until ctx ends, then drains them.
func (a *App) Serve(ctx context.Context, mainLn, adminLn net.Listener) error {
	srv := &http.Server{Handler: a.Handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		MaxHeaderBytes: 64 << 10, ErrorLog: zap.NewStdLog(a.log.Named("http"))}
	adm := &http.Server{Handler: a.Admin, ReadHeaderTimeout: 10 * time.Second, ErrorLog: zap.NewStdLog(a.log.Named("admin"))}
	errc := make(chan error, 2)
	go func() { errc <- serve(srv, mainLn, a.Config.TLS) }()
	go func() { errc <- adm.Serve(adminLn) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	_ = adm.Shutdown(shutdownCtx)
	if cerr := a.Close(shutdownCtx); err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func serve(srv *http.Server, ln net.Listener, tls config.TLS) error {
	if tls.CertFile != "" {
		return srv.ServeTLS(ln, tls.CertFile, tls.KeyFile)
	}
	return srv.Serve(ln)
}

// Close flushes the decision log and closes the session store.
func (a *App) Close(ctx context.Context) error {
	a.lifecycle.stop()
	err := a.audit.Close(ctx)
	if a.closeBudgets != nil {
		a.closeBudgets()
	}
	if a.sessions != nil {
		a.sessions.once.Do(func() { err = errors.Join(err, a.sessions.close()) })
	}
	return err
}

// buildClientAddr is listen.trusted_proxies and client_ip_header as the
// handler uses them.
func buildClientAddr(l config.Listener) (proxy.ClientAddr, error) {
	ca := proxy.ClientAddr{Forwarded: l.ClientIPHeader == config.ClientIPForwarded}
	for _, s := range l.TrustedProxies {
		p, err := config.ParseTrustedProxy(s)
		if err != nil {
			return proxy.ClientAddr{}, fmt.Errorf("listen.trusted_proxies: %w", err)
		}
		ca.Trusted = append(ca.Trusted, p)
	}
	return ca, nil
}
