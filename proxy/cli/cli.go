// Package cli is crmgate's command line: it parses the subcommands, loads
// the configuration and hands everything to proxy/app. main only calls Run.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/app"
	"github.com/crmgate/crmgate/proxy/demo"
)

const usage = `crmgate — identity-aware reverse proxy for CRMs

Usage:
  crmgate serve   --config FILE    run the proxy
  crmgate check   --config FILE    validate config, compile the policy, run its tests
  crmgate demo    [--listen ADDR] [--crm suitecrm8|dynamics]
                                   run a self-contained demo (demo CRM, demo IdP, reference policy)
  crmgate sessions revoke --user ID --config FILE
                                   end every browser session of a user (redis session store)
  crmgate explain --config FILE --subject FILE_OR_JSON --path PATH [--method M] [--body JSON] [--record JSON]
                                   what the proxy would decide for one request, and why
  crmgate report access  --config FILE [--format markdown|csv|html] [--diff OLD_POLICY_DIR]
                                   role × module × action matrix with field rules, by evaluating the policy
  crmgate report dormant --days N --config FILE
                                   users not seen for N days (redis session store)
  crmgate report reads (--user ID | --record ID) [--since T] (--config FILE | --log PATH...)
                                   who read a record, what a user read: from the decision-log files
  crmgate version                  print the version

Run "crmgate COMMAND --help" for a command's flags.
`

// Run executes one crmgate command and returns the process exit code: 0
// ok, 1 failure, 2 usage error. version is the build's version string.
func Run(args []string, stdout, stderr io.Writer, version string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stderr, version)
	case "check":
		err = cmdCheck(ctx, args[1:], stdout, stderr)
	case "demo":
		err = cmdDemo(ctx, args[1:], stdout, stderr, version)
	case "sessions":
		err = cmdSessions(ctx, args[1:], stdout, stderr)
	case "explain":
		err = cmdExplain(ctx, args[1:], stdout, stderr)
	case "report":
		err = cmdReport(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "crmgate", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "crmgate: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "crmgate %s: %v\n", args[0], err)
		return 1
	}
}

var errUsage = errors.New("usage")

func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: crmgate %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}

func loadConfig(fs *flag.FlagSet, path string) (*config.Config, error) {
	if path == "" {
		fmt.Fprintln(fs.Output(), "--config is required")
		fs.Usage()
		return nil, errUsage
	}
	return config.Load(path)
}

func newLogger(stderr io.Writer) *zap.Logger {
	cfg := zap.NewProductionEncoderConfig()
	cfg.TimeKey = "ts"
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(cfg), zapcore.Lock(zapcore.AddSync(stderr)), zap.InfoLevel))
}

func cmdServe(ctx context.Context, args []string, stderr io.Writer, version string) error {
	fs := newFlags("serve", "serve --config FILE", stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(fs, *cfgPath)
	if err != nil {
		return err
	}
	log := newLogger(stderr)
	defer func() { _ = log.Sync() }()
	// SIGHUP reloads the policy, as operators expect of a daemon; caught
	// from here on so that one sent during start-up cannot kill the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	a, err := app.Build(ctx, cfg, app.Deps{Logger: log, Version: version})
	if err != nil {
		return err
	}
	mainLn, err := net.Listen("tcp", cfg.Listen.Address)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen.Address, err)
	}
	adminLn, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		mainLn.Close()
		return fmt.Errorf("admin listen %s: %w", cfg.AdminListen, err)
	}
	log.Info("crmgate serving", zap.String("listen", mainLn.Addr().String()), zap.String("admin", adminLn.Addr().String()),
		zap.String("profile", cfg.CRM.Profile), zap.String("policy_revision", a.Policy.Revision()))
	go a.ReloadOnSignal(ctx, hup)
	return a.Serve(ctx, mainLn, adminLn)
}

func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", "check --config FILE", stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(fs, *cfgPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "config %s: ok\n", *cfgPath)
	src := policy.Source{Paths: cfg.Policy.Paths}
	engine, err := policy.Load(ctx, policy.Options{Source: src, Package: cfg.Policy.Package})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "policy: compiled, revision %s\n", engine.Revision())
	for _, w := range engine.Warnings() {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	results, err := policy.Test(ctx, src)
	if err != nil {
		return err
	}
	failed := 0
	for _, r := range results {
		if !r.Pass {
			failed++
			fmt.Fprintf(stdout, "FAIL %s.%s\n", r.Package, r.Name)
			if r.Err != nil {
				fmt.Fprintf(stdout, "  %v\n", r.Err)
			}
		}
	}
	fmt.Fprintf(stdout, "policy tests: %d passed, %d failed\n", len(results)-failed, failed)
	if failed > 0 {
		return fmt.Errorf("%d policy test(s) failed", failed)
	}
	return nil
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer, version string) error {
	fs := newFlags("demo", "demo [--listen ADDR] [--crm suitecrm8|dynamics|hubspot]", stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address of the demo proxy (loopback only)")
	crm := fs.String("crm", "suitecrm8", "the demo CRM crmgate runs in front of (suitecrm8, dynamics, hubspot)")
	if err := parse(fs, args); err != nil {
		return err
	}
	log := newLogger(stderr)
	defer func() { _ = log.Sync() }()
	return demo.Run(ctx, demo.Options{Listen: *listen, Out: stdout, Logger: log, Version: version, CRM: *crm})
}

func cmdSessions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "revoke" {
		fmt.Fprintln(stderr, "Usage: crmgate sessions revoke --user ID --config FILE")
		return errUsage
	}
	fs := newFlags("sessions revoke", "sessions revoke --user ID --config FILE", stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	user := fs.String("user", "", "the user (subject id) whose sessions end")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *user == "" {
		fmt.Fprintln(stderr, "--user is required")
		fs.Usage()
		return errUsage
	}
	cfg, err := loadConfig(fs, *cfgPath)
	if err != nil {
		return err
	}
	store, err := app.OpenStore(ctx, cfg.Session, true, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	n, err := store.RevokeUser(ctx, *user)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "revoked %d session(s) of %s; every replica refuses them from its next request\n", n, *user)
	return nil
}
