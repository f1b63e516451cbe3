package policy

import (
	"maps"
	"slices"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// maxCachedDecisions bounds one revision's decision cache. When it is full
// the cache starts over: simpler than LRU and cheap at this size, since a
// cached decision is only a handful of short strings.
const maxCachedDecisions = 8192

// decisionCache memoizes module-level decisions within one revision.
//
// A decision is a function of the policy, its data and the input; the first
// two are fixed for a revision, and Load works out (inputPaths) exactly which
// parts of the input the contract rules and everything they use can read.
// Two inputs that agree on those parts get the same decision, so the key is
// the canonical text of the values at those paths. Policies the analysis
// cannot bound (reading the whole input, using `with`, or calling a
// non-deterministic builtin such as time.now_ns or http.send) get no cache.
type decisionCache struct {
	paths []ast.Ref
	// names are the paths' text, written into every key.
	names []string
	mu    sync.RWMutex
	m     map[string]Decision
}

// newDecisionCache returns nil when decisions of this policy must not be
// cached.
func newDecisionCache(reached map[*ast.Rule]bool) *decisionCache {
	paths, ok := inputPaths(reached)
	if !ok {
		return nil
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = p.String()
	}
	return &decisionCache{paths: paths, names: names, m: make(map[string]Decision)}
}

// key is the canonical text of every input value the policy can read, with
// a marker for absent values (which no Rego value prints as). An error is
// a part of the input that cannot be built.
func (dc *decisionCache) key(in *inputView, buf []byte) ([]byte, error) {
	for i, p := range dc.paths {
		buf = append(buf, dc.names[i]...)
		buf = append(buf, 0)
		var found bool
		var err error
		if buf, found, err = in.appendText(buf, p); err != nil {
			return nil, err
		}
		if !found {
			buf = append(buf, "\x01undefined"...)
		}
		buf = append(buf, 0)
	}
	return buf, nil
}

func (dc *decisionCache) get(key []byte) (Decision, bool) {
	dc.mu.RLock()
	d, ok := dc.m[string(key)]
	dc.mu.RUnlock()
	if !ok {
		return Decision{}, false
	}
	return cloneDecision(d), true
}

func (dc *decisionCache) put(key []byte, d Decision) {
	d = cloneDecision(d)
	dc.mu.Lock()
	if len(dc.m) >= maxCachedDecisions {
		clear(dc.m)
	}
	dc.m[string(key)] = d
	dc.mu.Unlock()
}

// cloneDecision copies the slices and the map so that a caller changing its
// Decision can never change what the cache hands to the next caller.
func cloneDecision(d Decision) Decision {
	d.Reasons = slices.Clone(d.Reasons)
	d.HiddenFields = slices.Clone(d.HiddenFields)
	d.MaskedFields = maps.Clone(d.MaskedFields)
	d.VisibleFields = slices.Clone(d.VisibleFields)
	d.ReadonlyFields = slices.Clone(d.ReadonlyFields)
	return d
}

// inputPaths lists the input paths the reached rules read, reduced to the
// shortest prefixes. ok is false when the reads cannot be bounded.
func inputPaths(reached map[*ast.Rule]bool) (paths []ast.Ref, ok bool) {
	ok = true
	var vis *ast.GenericVisitor
	vis = ast.NewGenericVisitor(func(x any) bool {
		if !ok {
			return true
		}
		switch x := x.(type) {
		case *ast.Expr:
			if len(x.With) > 0 || (x.IsCall() && nondeterministic(x.Operator())) {
				ok = false
			}
		case ast.Call:
			if op, isRef := x[0].Value.(ast.Ref); !isRef || nondeterministic(op) {
				ok = false
			}
		case ast.Var:
			// A bare input (passed to a function, iterated, compared)
			// can read everything.
			if x.Equal(ast.InputRootDocument.Value) {
				ok = false
			}
		case ast.Ref:
			if !x.HasPrefix(ast.InputRootRef) {
				return false
			}
			p := groundPrefix(x)
			if len(p) < 2 {
				ok = false
				return true
			}
			paths = append(paths, p)
			// The head is input itself, not a bare read of it; the other
			// terms may hold refs of their own.
			for _, t := range x[1:] {
				vis.Walk(t)
			}
			return true
		}
		return false
	})
	for r := range reached {
		vis.Walk(r)
		if !ok {
			return nil, false
		}
	}
	slices.SortFunc(paths, func(a, b ast.Ref) int { return a.Compare(b) })
	var out []ast.Ref
	for _, p := range paths {
		if len(out) > 0 && p.HasPrefix(out[len(out)-1]) {
			continue
		}
		out = append(out, p)
	}
	return out, true
}

// groundPrefix is the part of a ref before its first term that is not a
// constant string (input.resource.body[f] → input.resource.body).
func groundPrefix(r ast.Ref) ast.Ref {
	for i := 1; i < len(r); i++ {
		if _, ok := r[i].Value.(ast.String); !ok {
			return r[:i].Copy()
		}
	}
	return r.Copy()
}

// nondeterministic reports whether a call's operator is a builtin whose
// result may differ between two evaluations of the same input. Operators
// that are not builtins are the policy's own functions, which the caller
// reaches through the dependency graph.
func nondeterministic(ref ast.Ref) bool {
	b, ok := ast.BuiltinMap[ref.String()]
	if !ok {
		return false
	}
	if b.Nondeterministic {
		return true
	}
	// Builtins that read the clock without being marked so.
	switch b.Name {
	case "time.now_ns", "opa.runtime", "trace", "print":
		return true
	}
	return false
}
