package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/crmgate/crmgate/policy/report"
	"github.com/crmgate/crmgate/proxy"
	"github.com/crmgate/crmgate/proxy/app"
)

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func cmdReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "access":
			return cmdReportAccess(ctx, args[1:], stdout, stderr)
		case "dormant":
			return cmdReportDormant(ctx, args[1:], stdout, stderr)
		case "reads":
			return cmdReportReads(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintln(stderr, "Usage: crmgate report access|dormant|reads ...")
	return errUsage
}

const samplesHelp = `sample subjects per role (YAML or JSON: role: {id, teams, groups, attributes});
default: samples for the reference policy (customer account_id acc-1; sales crm_user_id u-sales1,
team store-12; line_manager u-mgr, store-12; inventory_manager u-inv; support u-support, helpdesk; admin u-admin)`

func cmdReportAccess(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("report access", "report access --config FILE [--format markdown|csv|html] [--diff OLD_POLICY_DIR] [--subjects FILE] [--role ROLE]... [--remote-ip IP]", stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	format := fs.String("format", "markdown", "output format: markdown, csv or html")
	diff := fs.String("diff", "", "an older policy directory: print what the configured policy grants (+) or removes (−) compared with it")
	subjects := fs.String("subjects", "", samplesHelp)
	remoteIP := fs.String("remote-ip", "", "input.request.remote_ip of every evaluation (e.g. an office address, for policies that admit some networks only); empty sends none")
	var roles stringList
	fs.Var(&roles, "role", "a further role to report on (repeatable); identity.roles and metrics.roles are always included")
	if err := parse(fs, args); err != nil {
		return err
	}
	f, err := report.ParseFormat(*format)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errUsage
	}
	cfg, err := loadConfig(fs, *cfgPath)
	if err != nil {
		return err
	}
	var samples report.Samples
	if *subjects != "" {
		file, err := os.Open(*subjects)
		if err != nil {
			return fmt.Errorf("subjects: %w", err)
		}
		samples, err = report.ParseSamples(file)
		file.Close()
		if err != nil {
			return fmt.Errorf("subjects %s: %w", *subjects, err)
		}
	}
	prof, err := app.BuildProfile(cfg.CRM)
	if err != nil {
		return err
	}
	engine, err := app.LoadPolicy(ctx, cfg)
	if err != nil {
		return err
	}
	current, err := app.AccessReport(ctx, cfg, engine, prof, samples, *remoteIP, roles...)
	if err != nil {
		return err
	}
	if *diff == "" {
		return current.Write(stdout, f)
	}
	oldEngine, err := app.LoadPolicy(ctx, cfg, *diff)
	if err != nil {
		return fmt.Errorf("--diff: %w", err)
	}
	old, err := app.AccessReport(ctx, cfg, oldEngine, prof, samples, *remoteIP, roles...)
	if err != nil {
		return fmt.Errorf("--diff: %w", err)
	}
	return report.CompareAccess(old, current).Write(stdout, f)
}

func cmdReportDormant(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("report dormant", "report dormant --days N --config FILE [--format markdown|csv|html]", stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	days := fs.Int("days", 0, "list users not seen for at least this many days")
	format := fs.String("format", "markdown", "output format: markdown, csv or html")
	if err := parse(fs, args); err != nil {
		return err
	}
	f, err := report.ParseFormat(*format)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errUsage
	}
	if *days < 1 {
		fmt.Fprintln(stderr, "--days must be at least 1")
		fs.Usage()
		return errUsage
	}
	cfg, err := loadConfig(fs, *cfgPath)
	if err != nil {
		return err
	}
	d, err := app.DormantReport(ctx, cfg, *days, time.Now())
	if err != nil {
		return err
	}
	return d.Write(stdout, f)
}

func cmdExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("explain", "explain --config FILE --subject FILE_OR_JSON --path PATH [--method GET] [--body JSON] [--record JSON] [--rules] [--remote-ip IP] [--time RFC3339]", stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	subject := fs.String("subject", "", `the subject as the policy sees it: a JSON file, or inline JSON such as '{"id":"alice","roles":["sales"],"attributes":{"crm_user_id":"u-sales1"}}'`)
	method := fs.String("method", "GET", "HTTP method")
	target := fs.String("path", "", "request path with optional query, e.g. /Api/V8/module/Accounts/42")
	body := fs.String("body", "", "request body (JSON)")
	record := fs.String("record", "", "the target record as the CRM returns it, flattened to its fields and id (JSON)")
	rules := fs.Bool("rules", false, "also print the value of every rule of the policy package for this input")
	remoteIP := fs.String("remote-ip", "", "the client address (input.request.remote_ip); default 127.0.0.1")
	at := fs.String("time", "", "the request time (input.request.time), RFC 3339; default now")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *subject == "" || *target == "" {
		fmt.Fprintln(stderr, "--subject and --path are required")
		fs.Usage()
		return errUsage
	}
	cfg, err := loadConfig(fs, *cfgPath)
	if err != nil {
		return err
	}
	raw := []byte(*subject)
	if !strings.HasPrefix(strings.TrimSpace(*subject), "{") {
		if raw, err = os.ReadFile(*subject); err != nil {
			return fmt.Errorf("subject: %w", err)
		}
	}
	subj, err := proxy.ParseSubject(raw)
	if err != nil {
		return err
	}
	var rec map[string]any
	if *record != "" {
		if rec, err = decodeObject(*record); err != nil {
			return fmt.Errorf("record: %w", err)
		}
	}
	req, err := proxy.NewExplainRequest(*method, *target, []byte(*body))
	if err != nil {
		return err
	}
	if *remoteIP != "" {
		ip, err := netip.ParseAddr(*remoteIP)
		if err != nil {
			return fmt.Errorf("--remote-ip: %w", err)
		}
		req.RemoteAddr = netip.AddrPortFrom(ip, 0).String()
	}
	var now time.Time
	if *at != "" {
		if now, err = time.Parse(time.RFC3339, *at); err != nil {
			return fmt.Errorf("--time: %w", err)
		}
	}
	prof, err := app.BuildProfile(cfg.CRM)
	if err != nil {
		return err
	}
	engine, err := app.LoadPolicy(ctx, cfg)
	if err != nil {
		return err
	}
	e, err := proxy.Explain(ctx, proxy.ExplainOptions{Profile: prof, Policy: engine, MaxRequestBody: cfg.Upstream.MaxRequestBody, Now: now}, subj, req, rec)
	if err != nil {
		return err
	}
	return e.Write(stdout, *rules)
}

var _ flag.Value = (*stringList)(nil)

// decodeObject reads one JSON object.
func decodeObject(s string) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil || dec.More() {
		return nil, errors.New("want one JSON object")
	}
	return m, nil
}

func cmdReportReads(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("report reads", "report reads (--user ID | --record ID) [--module M] [--since T] [--until T] [--format text|json|csv] (--config FILE | --log PATH...)", stderr)
	user := fs.String("user", "", "what this subject id read")
	record := fs.String("record", "", "who read this record id")
	module := fs.String("module", "", "only this module")
	since := fs.String("since", "", "from: RFC 3339 time, date (UTC) or a duration back from now (36h, 7d)")
	until := fs.String("until", "", "until (exclusive), same forms as --since")
	format := fs.String("format", "text", "output format: text, json (one object per line) or csv")
	cfgPath := fs.String("config", "", "configuration file whose decision_log.file (and its rotated backups) is read")
	var logs stringList
	fs.Var(&logs, "log", "a decision-log file (with its rotated backups) or a directory of them; repeatable, instead of --config")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *user == "" && *record == "" {
		fmt.Fprintln(stderr, "--user or --record is required")
		fs.Usage()
		return errUsage
	}
	now := time.Now()
	q := report.ReadQuery{User: *user, Record: *record, Module: *module}
	for _, t := range []struct {
		flag string
		val  string
		dst  *time.Time
	}{{"--since", *since, &q.Since}, {"--until", *until, &q.Until}} {
		if t.val == "" {
			continue
		}
		var err error
		if *t.dst, err = report.ParseSince(t.val, now); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", t.flag, err)
			return errUsage
		}
	}
	w, err := report.NewReadWriter(stdout, *format)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errUsage
	}
	if len(logs) == 0 {
		if *cfgPath == "" {
			fmt.Fprintln(stderr, "--log or --config is required")
			fs.Usage()
			return errUsage
		}
		cfg, err := loadConfig(fs, *cfgPath)
		if err != nil {
			return err
		}
		if cfg.DecisionLog.File == "" {
			return fmt.Errorf("%s writes no decision-log file (decision_log.output is %s): pass the logs with --log", *cfgPath, cfg.DecisionLog.Output)
		}
		logs = stringList{cfg.DecisionLog.File}
	}
	files, err := report.LogFiles(logs)
	if err != nil {
		return err
	}
	st, err := report.ScanReads(ctx, files, q, w.Write)
	fmt.Fprintf(stderr, "%d reads (%d more may include the record: truncated id lists) in %d lines of %d files", st.Matched, st.Maybe, st.Lines, st.Files)
	if st.Malformed > 0 || st.TooLong > 0 {
		fmt.Fprintf(stderr, "; skipped %d malformed and %d over-long lines", st.Malformed, st.TooLong)
	}
	fmt.Fprintln(stderr)
	for _, d := range st.Damaged {
		fmt.Fprintf(stderr, "damaged, read up to the damage: %s\n", d)
	}
	return err
}
