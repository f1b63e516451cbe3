package policy

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// DefaultPackage is the package root policies are read from when
// Options.Package is empty.
const DefaultPackage = "crmgate"

// Module-level and record-level rules crmgate reads (DESIGN.md §2).
var (
	decisionRules = []string{"allow", "require_mfa", "reasons", "hidden_fields", "masked_fields", "visible_fields", "readonly_fields", "read_budget"}
	recordRules   = []string{"record_allow", "record_hidden_fields"}
)

// Options configure Load.
type Options struct {
	Source Source
	// Package is the Rego package root holding the contract rules, e.g.
	// "crmgate" (the default) or "acme.crm".
	Package string
}

// Engine evaluates a compiled policy. It is safe for concurrent use; Reload
// swaps the compiled state atomically, so every evaluation sees one whole
// revision.
type Engine struct {
	opts  Options
	state atomic.Pointer[compiled]
	// reload serialises Reload so a slow, older read can never replace a
	// newer one.
	reload sync.Mutex
}

// compiled is one immutable revision of the policy, ready to evaluate.
type compiled struct {
	revision string
	root     ast.Ref
	compiler *ast.Compiler
	store    storage.Store
	decide   rego.PreparedEvalQuery
	record   rego.PreparedEvalQuery
	// whole evaluates the package root, for Explain.
	whole    rego.PreparedEvalQuery
	warnings []string
	// cache memoizes Decide; nil when the policy's reads cannot be bounded.
	cache *decisionCache
	// filters caches compiled record filters (RecordFilter).
	filters *filterCache
}

var packagePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)

// Load reads, compiles (strict, Rego v1) and prepares the policy in
// opts.Source. Test files (*_test.rego) are parsed but never evaluated.
// Errors name the file and position, e.g.
// "load policy: rego/crmgate.rego:12: rego_parse_error: ...".
func Load(ctx context.Context, opts Options) (*Engine, error) {
	if opts.Package == "" {
		opts.Package = DefaultPackage
	}
	if !packagePattern.MatchString(opts.Package) {
		return nil, fmt.Errorf("load policy: package %q is not a dotted Rego identifier", opts.Package)
	}
	c, err := build(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	e := &Engine{opts: opts}
	e.state.Store(c)
	return e, nil
}

// Reload re-reads the Source and, when it compiles, atomically replaces the
// policy. On any error the engine keeps serving the previous revision and the
// error is returned.
func (e *Engine) Reload(ctx context.Context) error {
	e.reload.Lock()
	defer e.reload.Unlock()
	c, err := build(ctx, e.opts)
	if err != nil {
		return fmt.Errorf("reload policy: %w", err)
	}
	e.state.Store(c)
	return nil
}

// ReloadSource is Reload from src, which becomes the Source of later
// Reloads if it compiles; on any error the engine keeps serving the previous
// revision and Source. The bundle poller swaps policies this way.
func (e *Engine) ReloadSource(ctx context.Context, src Source) error {
	e.reload.Lock()
	defer e.reload.Unlock()
	opts := e.opts
	opts.Source = src
	c, err := build(ctx, opts)
	if err != nil {
		return fmt.Errorf("reload policy: %w", err)
	}
	// Only Reload and ReloadSource read opts.Source, both under e.reload.
	e.opts.Source = src
	e.state.Store(c)
	return nil
}

// Revision identifies the loaded policy: a short hex sha256 of the policy
// and data files (names and contents, tests excluded) and the package root.
// It changes if and only if what is evaluated changes.
func (e *Engine) Revision() string { return e.state.Load().revision }

// Package returns the package root the contract rules are read from.
func (e *Engine) Package() string { return e.opts.Package }

// Warnings lists rules in the package root that crmgate does not read and
// that no contract rule uses, e.g. a misspelled record_alow, which would
// otherwise silently disable record filtering. Each entry names the file and
// line of the rule.
func (e *Engine) Warnings() []string { return slices.Clone(e.state.Load().warnings) }

// build reads, compiles and prepares one revision.
func build(ctx context.Context, opts Options) (*compiled, error) {
	src, err := readSource(opts.Source, opts.Package, false)
	if err != nil {
		return nil, err
	}
	root, err := ast.ParseRef("data." + opts.Package)
	if err != nil {
		return nil, fmt.Errorf("package %q: %w", opts.Package, err)
	}
	found := false
	for _, m := range src.modules {
		found = found || m.Package.Path.Equal(root)
	}
	if !found {
		return nil, fmt.Errorf("no policy module declares package %s", opts.Package)
	}

	compiler := ast.NewCompiler().
		WithStrict(true).
		WithDefaultRegoVersion(ast.RegoV1).
		WithEnablePrintStatements(false)
	compiler.Compile(src.modules)
	if compiler.Failed() {
		return nil, compiler.Errors
	}

	// Data is stored as AST values: reads then cost no conversion, which
	// matters because the policy reads data on every evaluation.
	store := inmem.NewFromObjectWithOpts(src.data, inmem.OptReturnASTValuesOnRead(true))
	c := &compiled{
		revision: src.revision,
		root:     root,
		compiler: compiler,
		store:    store,
	}
	allContract := append(slices.Clone(decisionRules), recordRules...)
	c.warnings = unreadRules(compiler, root, reachedRules(compiler, root, allContract))
	c.cache = newDecisionCache(reachedRules(compiler, root, decisionRules))
	c.filters = newFilterCache(compiler, root)
	prepare := func(query string) (rego.PreparedEvalQuery, error) {
		return rego.New(
			rego.Query(query),
			rego.Compiler(compiler),
			rego.Store(store),
			rego.StrictBuiltinErrors(true),
			rego.GenerateJSON(keepTerm),
		).PrepareForEval(ctx)
	}
	if c.decide, err = prepare(contractQuery(root, decisionRules)); err != nil {
		return nil, fmt.Errorf("prepare decision query: %w", err)
	}
	if c.record, err = prepare(contractQuery(root, recordRules)); err != nil {
		return nil, fmt.Errorf("prepare record query: %w", err)
	}
	if c.whole, err = prepare("result := " + root.String()); err != nil {
		return nil, fmt.Errorf("prepare explain query: %w", err)
	}
	return c, nil
}

// keepTerm hands result terms back untouched, so decisions are decoded
// straight from the AST instead of through generic Go values.
func keepTerm(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }

// contractQuery reads each contract rule in one evaluation, as an array
// with one element per rule. Each element is a comprehension: an empty array
// when the policy leaves the rule undefined, else the rule's value, so
// "undefined" is told apart from any value (including a wrongly typed one,
// which the decoder reports). Only these rules and what they use are
// evaluated, never the package's other helpers.
func contractQuery(root ast.Ref, rules []string) string {
	parts := make([]string, len(rules))
	for i, r := range rules {
		parts[i] = fmt.Sprintf("[v | v := %s.%s]", root, r)
	}
	return "result := [" + strings.Join(parts, ", ") + "]"
}

// reachedRules is every rule a contract rule uses, directly or not,
// contract rules included.
func reachedRules(c *ast.Compiler, root ast.Ref, names []string) map[*ast.Rule]bool {
	reached := map[*ast.Rule]bool{}
	var visit func(r *ast.Rule)
	visit = func(r *ast.Rule) {
		if reached[r] {
			return
		}
		reached[r] = true
		for dep := range c.Graph.Dependencies(r) {
			if d, ok := dep.(*ast.Rule); ok {
				visit(d)
			}
		}
	}
	for _, n := range names {
		// GetRules, not GetRulesExact: it includes rules with ref heads
		// such as masked_fields[f] := "last4".
		for _, r := range c.GetRules(root.Append(ast.StringTerm(n))) {
			visit(r)
		}
	}
	return reached
}

// unreadRules finds rules in the root package that neither are contract
// rules nor are reached from one.
func unreadRules(c *ast.Compiler, root ast.Ref, reached map[*ast.Rule]bool) []string {
	contractNames := map[string]bool{}
	for _, n := range append(slices.Clone(decisionRules), recordRules...) {
		contractNames[n] = true
	}
	var out []string
	seen := map[string]bool{}
	names := make([]string, 0, len(c.Modules))
	for name := range c.Modules {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, file := range names {
		m := c.Modules[file]
		if !m.Package.Path.Equal(root) {
			continue
		}
		for _, r := range m.Rules {
			name := ruleName(r)
			if contractNames[name] || seen[name] || usedElsewhere(r, reached) {
				continue
			}
			seen[name] = true
			msg := fmt.Sprintf("%s:%d: rule %s is not read by crmgate and no contract rule uses it", r.Location.File, r.Location.Row, name)
			if near := nearest(name, contractNames); near != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", near)
			}
			out = append(out, msg)
		}
	}
	return out
}

// usedElsewhere reports whether r or any rule of its else-chain was reached.
func usedElsewhere(r *ast.Rule, reached map[*ast.Rule]bool) bool {
	for x := r; x != nil; x = x.Else {
		if reached[x] {
			return true
		}
	}
	return false
}

func ruleName(r *ast.Rule) string {
	ref := r.Head.Ref()
	if len(ref) == 0 {
		return r.Head.Name.String()
	}
	return ref[0].Value.String()
}

// nearest suggests the contract rule a name is probably a typo of.
func nearest(name string, names map[string]bool) string {
	best, bestDist := "", 3
	for n := range names {
		if d := editDistance(name, n); d < bestDist || (d == bestDist && best != "" && n < best) {
			best, bestDist = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// errNoResult means the wrapper query produced nothing, which cannot happen
// with a well-formed contract module; callers deny.
var errNoResult = errors.New("policy produced no result")
