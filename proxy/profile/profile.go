package profile

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Sentinel errors. Classify and ClassifyBody wrap them with detail; callers
// inspect them with errors.Is and deny the request on any of them.
var (
	// ErrUnknownRoute means no route of the profile matches the method and
	// path (or the matching route is marked Refuse).
	ErrUnknownRoute = errors.New("unknown route")
	// ErrBadPath means the path is not in the canonical form crmgate
	// accepts (dot segments, escapes, doubled slashes, bad ids, ...).
	ErrBadPath = errors.New("bad path")
	// ErrMethodOverride means the request tries to change its method by a
	// header, a _method parameter or a _METHOD body field.
	ErrMethodOverride = errors.New("method override")
	// ErrBadBody means the request body cannot be classified: not JSON,
	// duplicate names, a missing or non-string module/id, or an id that
	// contradicts the path.
	ErrBadBody = errors.New("bad body")
)

// Limits on what Classify looks at. Real CRM API paths are far shorter; the
// caps keep a hostile path from costing more than a few microseconds.
const (
	maxPathLen  = 2048
	maxSegments = 32
	maxNameLen  = 64
)

// Profile is one CRM's route table and JSON shape. Build it with Builtin or
// New; treat it as immutable afterwards (the exported fields describe it,
// the classifier uses the compiled copy made at construction).
type Profile struct {
	// Name is the profile name (suitecrm8, espocrm, generic, ...).
	Name string
	// Routes are the routes as declared.
	Routes []Route
	// Shape says where records and fields live in the CRM's JSON.
	Shape Shape
	// Modules are the module names the profile knows, in canonical
	// spelling. Other syntactically valid names are still classified.
	Modules []string
	// Dialect reads and rewrites the CRM's list queries; nil for a
	// declared profile, whose query language crmgate does not know (it
	// then neither reads list parameters nor pushes record rules).
	Dialect Dialect

	routes  []*compiled
	modules map[string]string // lower-case name → canonical spelling
	// odataKeys: record keys are OData key predicates, entityset(guid),
	// inside one segment (profile dynamics).
	odataKeys bool
	// idFields name each module's primary key where it is not
	// Shape.IDField (Dataverse: accountid, contactid, activityid...).
	idFields map[string]string
	// aliases are other names the CRM takes for a module in paths
	// (HubSpot's object type ids such as 0-1 for contacts), lower-case →
	// canonical module; set by Builtin.
	aliases map[string]string
	// checkBody refuses write bodies carrying members the CRM acts on
	// that crmgate does not check (HubSpot's associations on a create);
	// nil accepts any.
	checkBody func(m Match, doc map[string]any) error
	// idCheck, when set, replaces validID for {id} segments (Salesforce
	// accepts only 18-character ids with their checksum).
	idCheck func(string) bool
	// version is the API version ReadPath writes for a {version}
	// segment.
	version string
}

type segKind int

const (
	segLiteral segKind = iota
	segModule
	segID
	segAny
	// segModuleKey is "{module}({id})": an OData entity set and key.
	segModuleKey
	// segVersion is an API version such as v62.0 (Salesforce), kept as
	// sent.
	segVersion
)

type segment struct {
	kind segKind
	lit  string
}

// compiled is a validated route ready for matching.
type compiled struct {
	route Route
	segs  []segment
	// shape is the pattern with placeholders replaced by "*": two routes
	// with the same shape answer the same paths and differ by method only.
	shape string
	body  *bodySpec
}

// bodySpec tells ClassifyBody where the module and id live in the body.
type bodySpec struct {
	module []string
	id     []string
}

// New validates routes and modules and returns a profile. Every problem is
// reported, joined, with the route's index.
func New(name string, routes []Route, shape Shape, modules []string) (*Profile, error) {
	if name == "" {
		return nil, errors.New("new profile: empty name")
	}
	p := &Profile{
		Name:    name,
		Routes:  append([]Route(nil), routes...),
		Shape:   shape,
		Modules: append([]string(nil), modules...),
		modules: make(map[string]string, len(modules)),
	}
	var errs []error
	if shape.IDField == "" {
		errs = append(errs, errors.New("shape: empty id_field"))
	}
	for i, m := range modules {
		if !validModuleName(m) {
			errs = append(errs, fmt.Errorf("modules[%d]: %q is not a module name", i, m))
			continue
		}
		low := strings.ToLower(m)
		if prev, ok := p.modules[low]; ok {
			// Two spellings of one name would make canonicalisation
			// ambiguous: which one does a policy about "accounts" mean?
			errs = append(errs, fmt.Errorf("modules[%d]: %q duplicates %q case-insensitively", i, m, prev))
			continue
		}
		p.modules[low] = m
	}
	seen := make(map[string]int)
	for i, r := range routes {
		c, err := compile(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("routes[%d] %s %s: %w", i, r.Method, r.Pattern, err))
			continue
		}
		key := c.route.Method + " " + c.shape
		if j, ok := seen[key]; ok {
			errs = append(errs, fmt.Errorf("routes[%d] %s %s: same method and shape as routes[%d]", i, r.Method, r.Pattern, j))
			continue
		}
		if c.route.Method == "*" {
			for m := range writeAndReadMethods {
				if j, ok := seen[m+" "+c.shape]; ok {
					errs = append(errs, fmt.Errorf("routes[%d] %s %s: method * overlaps routes[%d]", i, r.Method, r.Pattern, j))
				}
			}
		} else if j, ok := seen["* "+c.shape]; ok {
			errs = append(errs, fmt.Errorf("routes[%d] %s %s: overlaps method * of routes[%d]", i, r.Method, r.Pattern, j))
		}
		seen[key] = i
		p.routes = append(p.routes, c)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("new profile %s: %w", name, errors.Join(errs...))
	}
	return p, nil
}

// WithRoutes returns a new profile with the receiver's routes and modules
// plus extra ones (a built-in profile extended from crm.routes and
// crm.modules). The receiver is not changed.
func (p *Profile) WithRoutes(extra []Route, modules []string) (*Profile, error) {
	routes := append(append([]Route(nil), p.Routes...), extra...)
	mods := append(append([]string(nil), p.Modules...), modules...)
	np, err := New(p.Name, routes, p.Shape, mods)
	if err != nil {
		return nil, fmt.Errorf("extend profile: %w", err)
	}
	np.Dialect, np.odataKeys, np.idFields = p.Dialect, p.odataKeys, p.idFields
	np.aliases, np.checkBody, np.idCheck, np.version = p.aliases, p.checkBody, p.idCheck, p.version
	return np, nil
}

// KnownModule reports whether name is one of the profile's modules, exactly
// as spelled canonically. It bounds metric label values.
func (p *Profile) KnownModule(name string) bool {
	c, ok := p.modules[strings.ToLower(name)]
	return ok && c == name
}

// canonicalModule returns the known spelling of name when the profile knows
// it case-insensitively, or name itself when it is a valid unknown module.
func (p *Profile) canonicalModule(name string) (string, bool) {
	if c, ok := p.aliases[strings.ToLower(name)]; ok {
		// An alias must mean the same policy class as the name, so it is
		// rewritten to the name before the policy or the CRM sees it.
		return c, true
	}
	if !validModuleName(name) {
		return "", false
	}
	if c, ok := p.modules[strings.ToLower(name)]; ok {
		return c, true
	}
	return name, true
}

var writeAndReadMethods = map[string]bool{
	http.MethodGet: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true,
}

var validKinds = map[Kind]bool{KindList: true, KindRecord: true, KindRelated: true, KindOther: true}

func compile(r Route) (*compiled, error) {
	switch {
	case r.Method == "*":
		if !r.Refuse {
			return nil, errors.New("method * is only allowed on refuse routes")
		}
	case !writeAndReadMethods[r.Method]:
		// HEAD follows GET; OPTIONS, TRACE and CONNECT are never CRM API calls.
		return nil, fmt.Errorf("method %q not one of GET POST PUT PATCH DELETE", r.Method)
	}
	if !strings.HasPrefix(r.Pattern, "/") || len(r.Pattern) > maxPathLen {
		return nil, errors.New("pattern must start with / and be at most 2048 bytes")
	}
	parts := strings.Split(r.Pattern[1:], "/")
	if len(parts) > maxSegments {
		return nil, errors.New("pattern has too many segments")
	}
	c := &compiled{route: r}
	var shape strings.Builder
	var nModule, nID int
	for _, s := range parts {
		var seg segment
		switch s {
		case "{module}":
			seg.kind = segModule
			nModule++
		case "{id}":
			seg.kind = segID
			nID++
		case "{any}":
			seg.kind = segAny
		case "{version}":
			seg.kind = segVersion
		case "{module}({id})":
			seg.kind = segModuleKey
			nModule++
			nID++
		default:
			if !validLiteral(s) {
				return nil, fmt.Errorf("segment %q is neither a placeholder nor a plain literal", s)
			}
			seg = segment{kind: segLiteral, lit: s}
		}
		shape.WriteByte('/')
		switch seg.kind {
		case segLiteral:
			shape.WriteString(s)
		case segModuleKey:
			shape.WriteString("*()")
		default:
			shape.WriteByte('*')
		}
		c.segs = append(c.segs, seg)
	}
	c.shape = shape.String()
	if nModule > 1 || nID > 1 {
		return nil, errors.New("at most one {module} and one {id}")
	}
	if r.Refuse {
		return c, nil
	}
	if !validAction(r.Action) {
		return nil, fmt.Errorf("action %q must be lower-case letters and _", r.Action)
	}
	if !validKinds[r.Kind] {
		return nil, fmt.Errorf("kind %q not one of list record related other", r.Kind)
	}
	sources := 0
	if nModule == 1 {
		sources++
	}
	if r.Module != "" {
		if !validModuleName(r.Module) {
			return nil, fmt.Errorf("module %q is not a module name", r.Module)
		}
		sources++
	}
	if len(r.ModuleFromBody) > 0 {
		sources++
	}
	if r.ModuleFromQuery {
		sources++
	}
	if sources != 1 {
		// A route with no module cannot be decided; one with two could
		// be decided on one and executed on the other.
		return nil, errors.New("exactly one of {module}, module, module_from_body and a query naming the module must be set")
	}
	if nID == 1 && len(r.IDFromBody) > 0 {
		return nil, errors.New("{id} and id_from_body are exclusive")
	}
	for _, path := range [][]string{r.ModuleFromBody, r.IDFromBody} {
		for _, k := range path {
			if k == "" {
				return nil, errors.New("empty key in a body path")
			}
		}
	}
	if len(r.ModuleFromBody) > 0 || len(r.IDFromBody) > 0 {
		c.body = &bodySpec{module: r.ModuleFromBody, id: r.IDFromBody}
	}
	return c, nil
}

// Classify maps a request to a Match. escapedPath is the path as sent
// (r.URL.EscapedPath()); header is checked for method-override headers.
// The query is checked separately by CheckQuery. A Match with NeedsBody
// must be completed by ClassifyBody before it is used.
//
// Paths are accepted only in canonical form; anything a CRM or a web server
// in front of it might normalise differently is refused (ErrBadPath) rather
// than guessed at. A trailing slash is refused too: neither CRM routes it,
// and canonicalising it would forward a path the client did not send.
func (p *Profile) Classify(method, escapedPath string, header http.Header) (Match, error) {
	if err := checkOverrideHeaders(header); err != nil {
		return Match{}, fmt.Errorf("classify: %w", err)
	}
	m := method
	if m == http.MethodHead {
		m = http.MethodGet
	}
	if !writeAndReadMethods[m] {
		return Match{}, fmt.Errorf("classify: method %q: %w", truncate(method), ErrUnknownRoute)
	}
	segs, err := splitPath(escapedPath, p.odataKeys)
	if err != nil {
		return Match{}, fmt.Errorf("classify: %w", err)
	}
	best := p.bestShape(segs)
	if best == nil {
		return Match{}, fmt.Errorf("classify: %s %s: %w", m, truncate(escapedPath), ErrUnknownRoute)
	}
	var route *compiled
	for _, c := range p.routes {
		if c.shape == best.shape && (c.route.Method == m || c.route.Method == "*") {
			route = c
			break
		}
	}
	if route == nil || route.route.Refuse {
		return Match{}, fmt.Errorf("classify: %s %s: %w", m, truncate(escapedPath), ErrUnknownRoute)
	}
	return p.bind(route, segs)
}

// bestShape returns a route whose pattern matches segs and is the most
// literal: at the first segment where two matching patterns differ, the
// literal one wins. The method is ignored on purpose: if the most literal
// pattern has no route for the request's method, the request is unknown,
// rather than falling through to a placeholder route that would read the
// CRM's literal (EspoCRM "action") as a record id.
func (p *Profile) bestShape(segs []string) *compiled {
	var best *compiled
	for _, c := range p.routes {
		if !c.matches(segs) {
			continue
		}
		if best == nil || moreLiteral(c, best) {
			best = c
		}
	}
	return best
}

func (c *compiled) matches(segs []string) bool {
	if len(segs) != len(c.segs) {
		return false
	}
	for i, s := range c.segs {
		if s.kind == segLiteral && s.lit != segs[i] {
			return false
		}
		// Only an entityset(key) segment holds parentheses.
		if (s.kind == segModuleKey) != strings.HasSuffix(segs[i], ")") {
			return false
		}
	}
	return true
}

func moreLiteral(a, b *compiled) bool {
	for i := range a.segs {
		al, bl := a.segs[i].kind == segLiteral, b.segs[i].kind == segLiteral
		if al != bl {
			return al
		}
	}
	return false
}

// bind fills a Match from the winning route, validating every captured
// segment and rebuilding the canonical path from the captures.
func (p *Profile) bind(c *compiled, segs []string) (Match, error) {
	m := Match{
		Action:    c.route.Action,
		Kind:      c.route.Kind,
		Route:     c.route.Pattern,
		Module:    c.route.Module,
		QueryBody: c.route.QueryBody,
		IDsOnly:   c.route.IDsOnly,
		body:      c.body,
		NeedsBody: c.body != nil,

		ModuleFromQuery: c.route.ModuleFromQuery,
		Cursor:          c.route.Cursor,
	}
	var path strings.Builder
	for i, s := range c.segs {
		v := segs[i]
		switch s.kind {
		case segModule:
			mod, ok := p.canonicalModule(v)
			if !ok {
				return Match{}, fmt.Errorf("classify: module segment %q: %w", truncate(v), ErrBadPath)
			}
			m.Module, v = mod, mod
		case segID:
			if !p.validRecordID(v) {
				return Match{}, fmt.Errorf("classify: id segment %q: %w", truncate(v), ErrBadPath)
			}
			m.ID = v
		case segVersion:
			if !apiVersion(v) {
				return Match{}, fmt.Errorf("classify: API version %q: %w", truncate(v), ErrBadPath)
			}
		case segAny:
			// Link names and related ids: the same conservative charset
			// as ids, so nothing a CRM might decode reaches it.
			if !validID(v) {
				return Match{}, fmt.Errorf("classify: segment %q: %w", truncate(v), ErrBadPath)
			}
		case segModuleKey:
			name, key, err := splitODataKey(v)
			if err != nil {
				return Match{}, fmt.Errorf("classify: %w", err)
			}
			mod, ok := p.canonicalModule(name)
			if !ok {
				return Match{}, fmt.Errorf("classify: entity set %q: %w", truncate(name), ErrBadPath)
			}
			m.Module, m.ID = mod, key
			v = mod + "(" + key + ")"
		}
		path.WriteByte('/')
		path.WriteString(v)
	}
	m.Path = path.String()
	return m, nil
}

// Header names that let a client change the method or path the CRM's
// framework sees after crmgate has classified the request.
var overrideHeaders = []string{
	"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override",
}

var pathOverrideHeaders = []string{"X-Original-URL", "X-Rewrite-URL"}

func checkOverrideHeaders(h http.Header) error {
	// Ranging over the map, not Header.Get: a header map built by hand
	// (or by a test) may hold non-canonical keys that Get would miss.
	for k := range h {
		for _, o := range overrideHeaders {
			if strings.EqualFold(k, o) {
				return fmt.Errorf("header %s: %w", o, ErrMethodOverride)
			}
		}
		for _, o := range pathOverrideHeaders {
			if strings.EqualFold(k, o) {
				return fmt.Errorf("header %s: %w", o, ErrBadPath)
			}
		}
	}
	return nil
}

func truncate(s string) string {
	const n = 80
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// ReadPath is the path that reads one record of module: the profile's GET
// route of kind record and action read with {module} and {id} placeholders
// (or a fixed module). crmgate uses it to fetch the target of an update,
// delete or relate and check the record rule before the write is sent.
func (p *Profile) ReadPath(module, id string) (string, error) {
	if !p.validRecordID(id) {
		return "", fmt.Errorf("read path: id %q: %w", truncate(id), ErrBadPath)
	}
	for _, c := range p.routes {
		r := c.route
		if r.Refuse || r.Method != http.MethodGet || r.Kind != KindRecord || r.Action != "read" {
			continue
		}
		if r.Module != "" && r.Module != module {
			continue
		}
		var path strings.Builder
		hasID, hasModule, extra := false, r.Module != "", false
		for _, s := range c.segs {
			path.WriteByte('/')
			switch s.kind {
			case segLiteral:
				path.WriteString(s.lit)
			case segModule:
				path.WriteString(module)
				hasModule = true
			case segID:
				path.WriteString(id)
				hasID = true
			case segVersion:
				path.WriteString(p.version)
			case segModuleKey:
				path.WriteString(module + "(" + id + ")")
				hasID, hasModule = true, true
			default:
				extra = true // a route needing more than module and id is not a plain read
			}
		}
		if hasID && hasModule && !extra {
			return path.String(), nil
		}
	}
	return "", fmt.Errorf("read path: no record read route for module %q: %w", truncate(module), ErrUnknownRoute)
}

// splitODataKey reads "entityset(guid)". Dataverse also takes alternate
// keys (accounts(accountnumber='A-1')) and compound keys; crmgate does
// not classify them: a record addressed by a value other than its id
// could not be matched with the id the policy and the target check see.
// The GUID is lower-cased, the form Dataverse answers with.
func splitODataKey(seg string) (string, string, error) {
	open := strings.IndexByte(seg, '(')
	if open <= 0 || !strings.HasSuffix(seg, ")") {
		return "", "", fmt.Errorf("segment %q is not entityset(key): %w", truncate(seg), ErrBadPath)
	}
	key := seg[open+1 : len(seg)-1]
	if !IsGUID(key) {
		return "", "", fmt.Errorf("key %q is not a GUID (alternate keys are not accepted): %w", truncate(key), ErrBadPath)
	}
	return seg[:open], strings.ToLower(key), nil
}

// IDField is the name of module's primary key in its records: the
// shape's id_field, or the module's own key where the CRM names keys per
// entity (Dataverse's accountid, contactid...).
func (p *Profile) IDField(module string) string {
	if f, ok := p.idFields[module]; ok {
		return f
	}
	return p.Shape.IDField
}

// ShapeFor is the profile's shape with module's id field.
func (p *Profile) ShapeFor(module string) Shape {
	s := p.Shape
	s.IDField = p.IDField(module)
	return s
}

// validRecordID checks an {id} segment: the profile's own id check, or
// the conservative charset of validID.
func (p *Profile) validRecordID(s string) bool {
	if p.idCheck != nil {
		return p.idCheck(s)
	}
	return validID(s)
}

// apiVersion accepts v<major>.<minor> with a 1–3 digit major and a
// one-digit minor (Salesforce's v62.0).
func apiVersion(s string) bool {
	if len(s) < 4 || s[0] != 'v' {
		return false
	}
	major := digitsAt(s[1:])
	return major >= 1 && major <= 3 && len(s) == 1+major+2 && s[1+major] == '.' && s[2+major] >= '0' && s[2+major] <= '9'
}

// ClassifyQuery completes a Match whose route names its module in the
// query (Route.ModuleFromQuery): the profile's Dialect reads the module,
// which is then spelled as the profile knows it, like a path's. Other
// matches are returned unchanged.
func (p *Profile) ClassifyQuery(m Match, rawQuery string) (Match, error) {
	if !m.ModuleFromQuery {
		return m, nil
	}
	qc, ok := p.Dialect.(QueryClassifier)
	if !ok {
		return Match{}, fmt.Errorf("classify query: profile %s reads no module from a query: %w", p.Name, ErrUnknownRoute)
	}
	name, err := qc.QueryModule(m, rawQuery)
	if err != nil {
		return Match{}, fmt.Errorf("classify query: %w", err)
	}
	mod, ok := p.canonicalModule(name)
	if !ok {
		return Match{}, fmt.Errorf("classify query: object %q: %w", truncate(name), ErrBadQuery)
	}
	m.Module, m.ModuleFromQuery = mod, false
	return m, nil
}
