// Package demo runs crmgate on embedded defaults with nothing to install: a
// SuiteCRM-shaped demo CRM with department-store data, a demo OpenID issuer
// that mints tokens for five personas and signs browsers in as them (a
// persona picker, with or without MFA), the reference policy from rego/, and
// the proxy, all on loopback. Demo identities exist only here.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/proxy/app"
	"github.com/crmgate/crmgate/proxy/emulator"
	"github.com/crmgate/crmgate/proxy/issuer"
	"github.com/crmgate/crmgate/proxy/login"
)

// Options configure the demo.
type Options struct {
	// Listen is the proxy's address; it must be a loopback address.
	Listen  string
	Out     io.Writer
	Logger  *zap.Logger
	Version string
	// DecisionLog receives decision-log lines (default stderr).
	DecisionLog zapcore.WriteSyncer
	// Ready, when set, receives the running demo once it serves (tests).
	Ready func(*Env)
	// CRM names the demo CRM (CRMs); empty is the first, SuiteCRM.
	CRM string
}

// Persona is a demo user with a ready-made bearer token.
type Persona struct {
	Name   string
	Who    string
	Claims map[string]any
	Token  string
	// SignIn describes the persona on the demo issuer's sign-in page;
	// empty for token-only variants (sam-nomfa is sam signing in with the
	// page's password-only button).
	SignIn string
}

// Env is a running demo.
type Env struct {
	ProxyURL  string
	AdminURL  string
	AdminKey  string
	CRMURL    string
	Personas  []Persona
	Dataset   *emulator.Dataset
	CRM       CRM
	issuerURL string
}

// Audience is the audience demo tokens carry.
const Audience = "crmgate-demo"

// Personas returns the department store's six kinds of user, plus the admin
// without MFA to show step-up.
func Personas() []Persona {
	return []Persona{
		{Name: "pat", Who: "portal customer (account acc-1)", Claims: map[string]any{
			"sub": "pat", "name": "Pat Customer", "email": "pat@customer.example", "roles": []string{"customer"},
			"account_id": "acc-1", "contact_id": "c-1", "amr": []string{"pwd"}}, SignIn: "portal customer (account acc-1)"},
		{Name: "alice", Who: "sales, team store-12", Claims: map[string]any{
			"sub": "alice", "name": "Alice Sales", "email": "alice@shop.example", "roles": []string{"sales"},
			"teams": []string{"store-12"}, "crm_user_id": "u-sales1", "amr": []string{"pwd"}}, SignIn: "sales, team store-12"},
		{Name: "morgan", Who: "line manager of store-12", Claims: map[string]any{
			"sub": "morgan", "name": "Morgan Lee", "email": "morgan@shop.example", "roles": []string{"line_manager"},
			"teams": []string{"store-12"}, "crm_user_id": "u-mgr", "amr": []string{"pwd", "otp"}}, SignIn: "line manager of store-12"},
		{Name: "ivan", Who: "inventory manager", Claims: map[string]any{
			"sub": "ivan", "name": "Ivan Stock", "email": "ivan@shop.example", "roles": []string{"inventory_manager"},
			"crm_user_id": "u-inv", "amr": []string{"pwd"}}, SignIn: "inventory manager"},
		{Name: "sky", Who: "support, works the Helpdesk", Claims: map[string]any{
			"sub": "sky", "name": "Sky Support", "email": "sky@shop.example", "roles": []string{"support"},
			"teams": []string{"helpdesk"}, "crm_user_id": "u-support", "amr": []string{"pwd"}}, SignIn: "support, works the Helpdesk"},
		{Name: "sam", Who: "senior admin, signed in with MFA", Claims: map[string]any{
			"sub": "sam", "name": "Sam Admin", "email": "sam@shop.example", "roles": []string{"admin"},
			"crm_user_id": "u-admin", "amr": []string{"pwd", "otp"}}, SignIn: "senior admin (personnel records need MFA)"},
		{Name: "sam-nomfa", Who: "senior admin, password only", Claims: map[string]any{
			"sub": "sam", "name": "Sam Admin", "email": "sam@shop.example", "roles": []string{"admin"},
			"crm_user_id": "u-admin", "amr": []string{"pwd"}}},
	}
}

// Config returns the demo's configuration: the embedded defaults with the
// demo issuer, the demo CRM and loopback listeners.
func Config(listen, adminListen, crmURL, issuerURL, adminToken, clientSecret string) *config.Config {
	c := config.Default()
	c.Listen.Address = listen
	c.AdminListen = adminListen
	c.PublicURL = "http://" + listen
	c.Upstream.URL = crmURL
	c.Upstream.Auth = config.UpstreamAuth{Type: "oauth2_client_credentials", TokenURL: crmURL + "/Api/access_token",
		ClientID: "crmgate", ClientSecret: clientSecret}
	c.CRM.Profile = "suitecrm8"
	c.Identity.Bearer = config.Bearer{Enabled: true, Issuer: issuerURL, Audiences: []string{Audience}}
	c.Identity.Claims.Attributes = map[string]string{"crm_user_id": "crm_user_id", "account_id": "account_id", "contact_id": "contact_id"}
	c.Identity.MFA.AMR = []string{"otp", "mfa", "hwk"}
	// The acr crmgate asks for on step-up must itself count as MFA, or a
	// token that satisfies the challenge would be challenged again.
	c.Identity.MFA.StepUpACR = issuer.ACRMFA
	c.Identity.MFA.ACR = []string{issuer.ACRMFA}
	c.Policy.Paths = []string{"embedded:rego"}
	c.Metrics.Roles = []string{"customer", "sales", "line_manager", "inventory_manager", "support", "admin"}
	c.Admin.Token = adminToken
	config.ApplyDefaults(c)
	return c
}

// enableLogin turns on browser sign-in through the demo issuer's persona
// page, next to the bearer tokens Config already accepts.
func enableLogin(c *config.Config, clientID, clientSecret string) {
	c.Identity.OIDC = config.OIDC{Issuer: c.Identity.Bearer.Issuer, ClientID: clientID, ClientSecret: clientSecret}
	// The step-up must come back with the issuer's MFA acr: amr values
	// alone could describe an earlier sign-in (see package login).
	c.Identity.MFA.ACR = []string{issuer.ACRMFA}
	config.ApplyDefaults(c)
}

// signInPersonas are the personas the demo issuer's sign-in page offers.
func signInPersonas() []issuer.Persona {
	var out []issuer.Persona
	for _, p := range Personas() {
		if p.SignIn == "" {
			continue
		}
		out = append(out, issuer.Persona{Name: p.Name, Description: p.SignIn, Claims: p.Claims, MFA: true})
	}
	return out
}

// Run starts the demo and serves until ctx ends.
func Run(ctx context.Context, o Options) error {
	if err := loopbackOnly(o.Listen); err != nil {
		return err
	}
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	dlog := o.DecisionLog
	if dlog == nil {
		dlog = zapcore.Lock(os.Stderr)
	}

	crm, err := LookupCRM(o.CRM)
	if err != nil {
		return err
	}
	clientSecret := randomHex(16)
	ds := emulator.DepartmentStore()
	crmLn, crmSrv, err := serveLoopback(crm.Emulator(ds, clientSecret))
	if err != nil {
		return err
	}
	defer crmSrv.Close()

	// The proxy's address comes first: the issuer registers the proxy's
	// callback as the only place it may send a browser back to.
	mainLn, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", o.Listen, err)
	}
	proxyURL := "http://" + mainLn.Addr().String()
	loginClient := issuer.Client{ID: "crmgate-demo-" + randomHex(4), Secret: randomHex(16),
		RedirectURIs:           []string{proxyURL + login.CallbackPath},
		PostLogoutRedirectURIs: []string{proxyURL + login.SignedOutPath}}
	idpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		mainLn.Close()
		return fmt.Errorf("demo issuer: %w", err)
	}
	iss, err := issuer.New("http://"+idpLn.Addr().String(), issuer.WithPersonas(signInPersonas()...), issuer.WithClient(loginClient))
	if err != nil {
		mainLn.Close()
		idpLn.Close()
		return fmt.Errorf("demo issuer: %w", err)
	}
	idpSrv := &http.Server{Handler: iss.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = idpSrv.Serve(idpLn) }()
	defer idpSrv.Close()

	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		mainLn.Close()
		return fmt.Errorf("admin listen: %w", err)
	}
	adminToken := randomHex(16)
	cfg := Config(mainLn.Addr().String(), adminLn.Addr().String(), "http://"+crmLn.Addr().String(), iss.URL(), adminToken, clientSecret)
	cfg.CRM.Profile, cfg.Upstream.Auth = crm.Profile, crm.Auth(cfg.Upstream.URL, clientSecret)
	enableLogin(cfg, loginClient.ID, loginClient.Secret)
	if err := cfg.Validate(); err != nil {
		mainLn.Close()
		adminLn.Close()
		return fmt.Errorf("demo config: %w", err)
	}
	policyFS, err := PolicyFS()
	if err != nil {
		mainLn.Close()
		adminLn.Close()
		return err
	}
	a, err := app.Build(ctx, cfg, app.Deps{Logger: log, PolicyFS: policyFS, DecisionLogWriter: dlog, Version: o.Version})
	if err != nil {
		mainLn.Close()
		adminLn.Close()
		return err
	}

	env := &Env{ProxyURL: proxyURL, AdminURL: "http://" + adminLn.Addr().String(),
		AdminKey: adminToken, CRMURL: "http://" + crmLn.Addr().String(), Dataset: ds, CRM: crm, issuerURL: iss.URL()}
	for _, p := range Personas() {
		claims := map[string]any{"aud": Audience}
		for k, v := range p.Claims {
			claims[k] = v
		}
		tok, err := iss.Mint(claims, 8*time.Hour)
		if err != nil {
			mainLn.Close()
			adminLn.Close()
			return fmt.Errorf("mint demo token: %w", err)
		}
		p.Token = tok
		env.Personas = append(env.Personas, p)
	}
	printIntro(out, env)
	if o.Ready != nil {
		o.Ready(env)
	}
	return a.Serve(ctx, mainLn, adminLn)
}

// Commands are the SuiteCRM demo's suggested requests.
var Commands = []Command{
	{"pat", "a customer sees only her own account", "GET", "/Api/V8/module/Accounts", ""},
	{"pat", "a customer cannot read personnel records (403)", "GET", "/Api/V8/module/Employees", ""},
	{"alice", "sales lists accounts", "GET", "/Api/V8/module/Accounts", ""},
	{"alice", "sales reads a product (buy price hidden)", "GET", "/Api/V8/module/AOS_Products/p-1", ""},
	{"alice", "sales sees only her own personnel record", "GET", "/Api/V8/module/Employees", ""},
	{"alice", "sales cannot read CRM user records (403)", "GET", "/Api/V8/module/Users", ""},
	{"alice", "sales do not see the Helpdesk, not even through an account (403)", "GET", "/Api/V8/module/Accounts/acc-1/relationships/cases", ""},
	{"alice", "an account's contacts, each judged as a contact (phones masked)", "GET", "/Api/V8/module/Accounts/acc-1/relationships/contacts", ""},
	{"pat", "a customer's cases: the record rule runs in the CRM's query (full pages, true totals)", "GET", "/Api/V8/module/Cases?page[size]=20", ""},
	{"sky", "support works every case on the Helpdesk", "GET", "/Api/V8/module/Cases", ""},
	{"morgan", "a line manager sees his team's personnel records", "GET", "/Api/V8/module/Employees", ""},
	{"ivan", "inventory sees buy prices", "GET", "/Api/V8/module/AOS_Products/p-1", ""},
	{"ivan", "inventory cannot read customers (403)", "GET", "/Api/V8/module/Accounts", ""},
	{"sam", "an admin with MFA reads personnel", "GET", "/Api/V8/module/Employees", ""},
	{"sam-nomfa", "an admin without MFA is stepped up (401, RFC 9470)", "GET", "/Api/V8/module/Employees", ""},
}

func printIntro(w io.Writer, env *Env) {
	fmt.Fprintf(w, "crmgate demo is running.\n\n  proxy:      %s  (in front of %s)\n  admin:      %s/metrics  (Authorization: Bearer %s)\n  demo CRM:   %s  (needs crmgate's own upstream credentials)\n\n",
		env.ProxyURL, env.CRM.Title, env.AdminURL, env.AdminKey, env.CRMURL)
	fmt.Fprintf(w, "In a browser: open %s%s in a browser and pick a persona on the demo sign-in page\n  (\"sign in with MFA\" for admin-only data; sign out: %s%s).\n\n",
		env.ProxyURL, env.CRM.Browse, env.ProxyURL, login.LogoutPath)
	fmt.Fprintln(w, "Personas (tokens valid 8 hours):")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, p := range env.Personas {
		fmt.Fprintf(tw, "  %s\t%s\n", p.Name, p.Who)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "\nPaste these (each sets its token first); decisions are logged to stderr:")
	tokens := map[string]string{}
	for _, p := range env.Personas {
		tokens[p.Name] = p.Token
	}
	for _, c := range env.CRM.Commands {
		fmt.Fprintf(w, "\n# %s: %s\n", c.Persona, c.Shows)
		if c.Body != "" {
			fmt.Fprintf(w, "curl -s -X %s -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '%s' '%s%s'; echo\n",
				c.Method, tokens[c.Persona], c.Body, env.ProxyURL, c.Path)
			continue
		}
		fmt.Fprintf(w, "curl -s -X %s -H 'Authorization: Bearer %s' '%s%s'; echo\n", c.Method, tokens[c.Persona], env.ProxyURL, c.Path)
	}
	fmt.Fprintln(w, "\nPress Ctrl-C to stop.")
}

func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("demo listen %q: %w", addr, err)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return errors.New("demo listen: the demo binds to loopback only (its identities are public)")
	}
	return nil
}

func serveLoopback(h http.Handler) (net.Listener, *http.Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("demo crm: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln, srv, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}
