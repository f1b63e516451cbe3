package policy

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/crmgate/crmgate/policy/cond"
)

// maxCachedFilters bounds one revision's filter cache; when it is full the
// cache starts over, as the decision cache does.
const maxCachedFilters = 1024

// RecordFilter is record_allow and record_hidden_fields compiled for one
// request (subject, request, resource known; record unknown).
//
// The engine partially evaluates both rules with input.record unknown and
// translates the residual into a predicate over the record's fields, so a
// list of a thousand records costs one partial evaluation instead of a
// thousand evaluations. The predicate reproduces Rego's semantics exactly:
// undefined is not false, "1" is not 1, a missing field makes an
// expression undefined. Whatever the translator does not understand is
// never guessed: the filter then evaluates every record with the engine
// (Exact reports false), and a record for which the predicate meets a
// builtin error, conflicting rule values or a wrongly typed result is
// evaluated by the engine too, which reports the error.
//
// For related lists the proxy compiles the filter with the parent module in
// input.resource.module: the policy sees the parent module there.
//
// A RecordFilter is safe for concurrent use. It keeps the context it was
// created with for the records it evaluates with the engine, so it must
// not outlive its request.
type RecordFilter struct {
	ctx context.Context
	c   *compiled
	// in is the request's input; Check sets Record on a copy.
	in Input
	cf *compiledFilter
}

// maxMemoDecisions bounds one compiled filter's memo; past it, new value
// combinations are evaluated but not remembered.
const maxMemoDecisions = 256

// compiledFilter is the translated predicate for one set of known input
// values. It is shared by every request with those values and, but for its
// memo, immutable.
type compiledFilter struct {
	prog   *program
	allow  step
	hidden step
	// allowAcc and hiddenAcc are the accumulators the queries' results
	// are collected in.
	allowAcc, hiddenAcc int
	// hiddenDefined: the policy has record_hidden_fields rules, so its
	// value is a set (maybe empty) rather than undefined.
	hiddenDefined bool
	hazards       []hazard
	fields        []string
	// reason says why the filter falls back, for tests and debugging.
	reason string
	// push is record_allow as a condition for the CRM's list query.
	push cond.Pushdown
	// mayHide: record_hidden_fields can hide a field of some record.
	mayHide bool
	// frames are reused between records: a frame is a dozen slices.
	frames sync.Pool

	// memo holds the decisions for the values of fields seen so far, for
	// every request sharing the filter: lists repeat their owners, teams
	// and statuses, and records their owners. When the rules translated
	// (every builtin they call is pure) and read no field but fields, a
	// decision is a function of those values and of the input values the
	// filter was compiled for.
	memoMu sync.RWMutex
	memo   map[string]RecordDecision
}

// RecordFilter compiles the record rules for in (in.Record is ignored).
// Filters are cached per policy revision and per the input values the
// record rules can read, so the same subject listing the same module again
// reuses the compiled predicate. An error means the input could not be
// built or ctx ended; a policy the translator does not understand is not an
// error but a filter with Exact false.
func (e *Engine) RecordFilter(ctx context.Context, in *Input) (*RecordFilter, error) {
	c := e.state.Load()
	view, err := newInputView(in)
	if err != nil {
		return nil, fmt.Errorf("record filter: build input: %w", err)
	}
	cf, err := c.filters.get(ctx, c, view)
	if err != nil {
		return nil, fmt.Errorf("record filter: %w", err)
	}
	rf := &RecordFilter{ctx: ctx, c: c, in: *in, cf: cf}
	rf.in.Record = nil
	return rf, nil
}

// Fields lists the record fields the predicate reads, sorted: Check must
// be given at least these fields of each record. Nil means it needs every
// field: the filter falls back to evaluating records with the engine, or
// the policy reads the record as a whole or through computed field names.
func (f *RecordFilter) Fields() []string { return slices.Clone(f.cf.fields) }

// Exact reports whether Check runs the compiled predicate (true) or
// evaluates every record with the engine (false).
func (f *RecordFilter) Exact() bool { return f.cf.prog != nil }

// Check decides one record: the same RecordDecision and error as
// Engine.Record with in.Record set to record.
func (f *RecordFilter) Check(record map[string]any) (RecordDecision, error) {
	cf := f.cf
	if cf.prog == nil || cf.fields == nil || record == nil {
		return f.check(record)
	}
	var kb [128]byte
	key, ok := appendMemoKey(kb[:0], cf.fields, record)
	if !ok {
		return f.check(record)
	}
	cf.memoMu.RLock()
	d, hit := cf.memo[string(key)]
	cf.memoMu.RUnlock()
	if hit {
		d.HiddenFields = slices.Clone(d.HiddenFields)
		return d, nil
	}
	d, err := f.check(record)
	if err != nil {
		return d, err
	}
	cf.memoMu.Lock()
	if cf.memo == nil {
		cf.memo = make(map[string]RecordDecision)
	}
	if len(cf.memo) < maxMemoDecisions {
		cf.memo[string(key)] = RecordDecision{Allow: d.Allow, HiddenFields: slices.Clone(d.HiddenFields)}
	}
	cf.memoMu.Unlock()
	return d, nil
}

// appendMemoKey writes the record's values of fields, each tagged with its
// type (absent and null differ), strings length-prefixed so no two records
// write the same key unless they agree on every field. ok is false for a
// value that is not a JSON scalar: those are not memoized.
func appendMemoKey(b []byte, fields []string, record map[string]any) ([]byte, bool) {
	for _, name := range fields {
		v, present := record[name]
		if !present {
			b = append(b, 0)
			continue
		}
		switch v := v.(type) {
		case nil:
			b = append(b, 1)
		case bool:
			if v {
				b = append(b, 2)
			} else {
				b = append(b, 3)
			}
		case string:
			b = append(b, 4)
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		case json.Number:
			b = append(b, 5)
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		default:
			return b, false
		}
	}
	return b, true
}

// check decides one record without the memo.
func (f *RecordFilter) check(record map[string]any) (RecordDecision, error) {
	cf := f.cf
	if cf.prog == nil || record == nil || hazardous(cf.hazards, record) {
		return f.exact(record)
	}
	fr, _ := cf.frames.Get().(*frame)
	if fr == nil {
		fr = newFrame(cf.prog)
	}
	fr.reset(record)
	d, ok := cf.run(fr)
	fr.reset(nil)
	cf.frames.Put(fr)
	if !ok {
		return f.exact(record)
	}
	return d, nil
}

// run evaluates the predicate. ok is false when the record needs the
// engine: a builtin error, a conflict, or a result of the wrong type, all
// of which the engine reports as the error it is.
func (cf *compiledFilter) run(fr *frame) (RecordDecision, bool) {
	var d RecordDecision
	cf.allow(fr)
	if fr.abort {
		return d, false
	}
	switch vals := fr.accs[cf.allowAcc]; len(vals) {
	case 0:
		d.Allow = true
	case 1:
		b, ok := vals[0].Value.(ast.Boolean)
		if !ok {
			return d, false
		}
		d.Allow = bool(b)
	default:
		return d, false
	}
	if !cf.hiddenDefined {
		return d, true
	}
	cf.hidden(fr)
	if fr.abort {
		return d, false
	}
	vals := fr.accs[cf.hiddenAcc]
	d.HiddenFields = make([]string, 0, len(vals))
	for _, v := range vals {
		s, ok := v.Value.(ast.String)
		if !ok {
			return d, false
		}
		d.HiddenFields = append(d.HiddenFields, string(s))
	}
	slices.Sort(d.HiddenFields)
	d.HiddenFields = slices.Compact(d.HiddenFields)
	return d, true
}

// exact evaluates one record with the filter's revision of the policy, as
// Engine.Record does with the current one; a filter keeps answering from
// the revision it was compiled for even when the policy is reloaded.
func (f *RecordFilter) exact(record map[string]any) (RecordDecision, error) {
	in := f.in
	in.Record = record
	input, err := inputValue(&in, true)
	if err != nil {
		return RecordDecision{}, fmt.Errorf("record rule: build input: %w", err)
	}
	res, err := f.c.evalContract(f.ctx, f.c.record, &in, input, recordRules)
	if err != nil {
		return RecordDecision{}, fmt.Errorf("record rule: %w", err)
	}
	d, err := decodeRecord(res)
	if err != nil {
		return RecordDecision{}, fmt.Errorf("record rule: %w", err)
	}
	return d, nil
}

// filterCache holds one revision's compiled filters and what Load worked
// out about the record rules once: which input paths they read (the cache
// key), which record reads may raise builtin errors, and whether
// record_hidden_fields is a partial set.
type filterCache struct {
	root ast.Ref
	// paths are the known input paths the record rules read; cacheable is
	// false when they cannot be bounded.
	paths     []ast.Ref
	names     []string
	cacheable bool
	hazards   []hazard
	// unsafe, when set, is why no filter of this revision can be exact.
	unsafe string
	// pushUnsafe, when set, is why no input can push record_allow exactly.
	pushUnsafe    string
	hiddenDefined bool

	mu sync.Mutex
	m  map[string]*compiledFilter
}

func newFilterCache(compiler *ast.Compiler, root ast.Ref) *filterCache {
	fc := &filterCache{root: root, m: map[string]*compiledFilter{}}
	reached := reachedRules(compiler, root, recordRules)
	if paths, ok := inputPaths(reached); ok {
		fc.cacheable = true
		record := ast.InputRootRef.Append(ast.StringTerm("record"))
		for _, p := range paths {
			if p.HasPrefix(record) {
				continue
			}
			fc.paths = append(fc.paths, p)
			fc.names = append(fc.names, p.String())
		}
	}
	fc.hazards, fc.unsafe = analyseHazards(compiler, reached)
	hidden := compiler.GetRules(root.Append(ast.StringTerm("record_hidden_fields")))
	fc.hiddenDefined = len(hidden) > 0
	for _, r := range hidden {
		if r.Head.RuleKind() != ast.MultiValue || len(r.Head.Ref()) != 1 || len(r.Head.Args) > 0 {
			fc.unsafe = "record_hidden_fields is not a partial set rule"
		}
	}
	if usesName(compiler, outerKey) {
		fc.unsafe = "the policy uses the name " + outerKey
	}
	fc.pushUnsafe = fc.unsafe
	if fc.pushUnsafe == "" {
		fc.pushUnsafe = pushUnsafeReason(compiler, root)
	}
	return fc
}

// usesName reports whether any module mentions the string as a term, e.g.
// input.__crmgate_outer__.
func usesName(compiler *ast.Compiler, name string) bool {
	found := false
	for _, m := range compiler.Modules {
		ast.WalkTerms(m, func(t *ast.Term) bool {
			if s, ok := t.Value.(ast.String); ok && string(s) == name {
				found = true
			}
			return found
		})
	}
	return found
}

func (fc *filterCache) get(ctx context.Context, c *compiled, view *inputView) (*compiledFilter, error) {
	var kb [1024]byte
	var key []byte
	if fc.cacheable {
		var err error
		if key, err = fc.key(view, kb[:0]); err != nil {
			return nil, fmt.Errorf("build input: %w", err)
		}
		fc.mu.Lock()
		cf, ok := fc.m[string(key)]
		fc.mu.Unlock()
		if ok {
			return cf, nil
		}
	}
	input, err := view.value(false)
	if err != nil {
		return nil, fmt.Errorf("build input: %w", err)
	}
	cf, err := fc.compile(ctx, c, view.in, input)
	if err != nil {
		return nil, err
	}
	if fc.cacheable {
		fc.mu.Lock()
		if len(fc.m) >= maxCachedFilters {
			clear(fc.m)
		}
		fc.m[string(key)] = cf
		fc.mu.Unlock()
	}
	return cf, nil
}

// key is the canonical text of the known input values the record rules
// read, as the decision cache builds its keys.
func (fc *filterCache) key(view *inputView, buf []byte) ([]byte, error) {
	dc := decisionCache{paths: fc.paths, names: fc.names}
	return dc.key(view, buf)
}

// compile translates the record rules for one input. Only a cancelled
// context is an error; anything else makes a filter that falls back.
func (fc *filterCache) compile(ctx context.Context, c *compiled, in *Input, input ast.Value) (*compiledFilter, error) {
	push, err := fc.recordPushdown(ctx, c, in, input)
	if err != nil {
		return nil, err
	}
	mayHide, err := fc.mayHideFields(ctx, c, in, input)
	if err != nil {
		return nil, err
	}
	if fc.unsafe != "" {
		return &compiledFilter{reason: fc.unsafe, push: push, mayHide: true}, nil
	}
	cf, err := translateFilter(ctx, c, fc, in, input)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return &compiledFilter{reason: err.Error(), push: push, mayHide: mayHide}, nil
	}
	cf.push, cf.mayHide = push, mayHide
	return cf, nil
}

// translateFilter partially evaluates both record rules and translates the
// residuals into one program.
func translateFilter(ctx context.Context, c *compiled, fc *filterCache, in *Input, input ast.Value) (*compiledFilter, error) {
	t := &translator{
		ctx:        ctx,
		c:          c,
		input:      input,
		now:        in.Request.Time,
		p:          &program{fieldIdx: map[string]int{}},
		rules:      map[string]*supportRule{},
		closed:     map[string]valueFn{},
		closedDeps: map[string]*fieldDeps{},
	}
	cf := &compiledFilter{prog: t.p, hiddenDefined: fc.hiddenDefined, hazards: fc.hazards}
	v := ast.VarTerm("__crmgate_value__")
	collect := func(acc int) func(f *frame, x ast.Value) bool {
		return func(f *frame, x ast.Value) bool {
			for _, y := range f.accs[acc] {
				if ast.ValueEqual(x, y.Value) {
					return false
				}
			}
			f.accs[acc] = append(f.accs[acc], termOf(x))
			return false
		}
	}
	cf.allowAcc = t.p.naccs
	t.p.naccs++
	allowRef := ast.NewTerm(fc.root.Append(ast.StringTerm("record_allow")))
	var err error
	cf.allow, err = t.compileSubPartial(ast.NewBody(ast.Equality.Expr(v, allowRef)), newScope(nil), v, collect(cf.allowAcc))
	if err != nil {
		return nil, err
	}
	if fc.hiddenDefined {
		cf.hiddenAcc = t.p.naccs
		t.p.naccs++
		hiddenRef := ast.NewTerm(fc.root.Append(ast.StringTerm("record_hidden_fields")).Append(ast.VarTerm("__crmgate_key__")))
		cf.hidden, err = t.compileSubPartial(ast.NewBody(ast.Equality.Expr(v, hiddenRef)), newScope(nil), v, collect(cf.hiddenAcc))
		if err != nil {
			return nil, err
		}
	}
	if !t.p.readsAll {
		// Non-nil even when empty: "reads no field" is not "reads all".
		cf.fields = append([]string{}, t.p.fields...)
		for _, h := range fc.hazards {
			cf.fields = append(cf.fields, h.field)
		}
		slices.Sort(cf.fields)
		cf.fields = slices.Compact(cf.fields)
	}
	return cf, nil
}
