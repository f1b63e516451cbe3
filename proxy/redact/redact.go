// Package redact rewrites a CRM's JSON response as a stream after the policy
// has decided: hidden fields are removed, masked fields masked, the
// visible_fields allow-list applied, and in lists every record is checked with
// the record rule and dropped when it fails.
//
// Memory does not grow with the size of a list: the body is read token by
// token (internal/jsonscan, a decoder with jsontext's acceptance), each
// record is held once (bounded by the record's own size) while the record
// rule looks at it, and output is flushed between records.
//
// # Names
//
// Hidden and masked names apply to object members at any depth of the
// document, by name, inside and outside records (meta, links, error bodies,
// related records). Names are compared after JSON unescaping, so "co\u0073t"
// is "cost", and case-insensitively (Unicode simple folding, the relation
// strings.EqualFold uses): SuiteCRM and EspoCRM fields are columns of a
// MySQL/MariaDB table, whose names cannot differ only by case, so folding never
// merges two real fields but does protect a field a policy author spelled
// "Phone" when the CRM says "phone". The allow-list (Visible) is matched the
// same way and applies only to each record's fields object (Shape.FieldsPath);
// the record id (Shape.IDField) is always kept. A hidden name wins over a
// visible or masked one. Structural paths from the profile's Shape (ListPath,
// RecordPath, FieldsPath, IDField, TotalPaths) are matched exactly, as the
// CRM's clients read them.
//
// # Failing closed
//
// Input that is not exactly one valid JSON value (RFC 8259 with RFC 7493's
// restrictions: valid UTF-8 and unique member names after unescaping, so a
// second spelling of a name cannot smuggle a value past a client that keeps
// the last one) is refused with ErrNotJSON. In ModeList and ModeRecord
// nothing is written until the list or record has been found where the Shape
// says; a document without it fails with ErrUnexpectedShape, so records in an
// unexpected place never bypass the record rule or the allow-list. A record
// the rule denies in ModeRecord fails with ErrRecordDenied and nothing
// written. An error after output has begun (a malformed record in the middle
// of a list, a failing record rule) leaves dst with a truncated document: the
// caller must abort the response rather than complete it.
//
// # Totals
//
// When a record rule is present in ModeList, counts at Shape.TotalPaths would
// reveal how many records were dropped, so they are rewritten (without a
// record rule nothing is dropped and they are left untouched, and with
// KeepTotals the CRM counted only the subject's records):
//
//   - a member named "total" (EspoCRM) becomes -1 when more records may
//     follow this page and -2 when none do: EspoCRM's own values for a list
//     whose count is disabled (Espo\Core\Record\Collection TOTAL_HAS_MORE and
//     TOTAL_HAS_NO_MORE), which its clients already page with. More records
//     follow when the upstream page was not empty and Plan.Offset plus the
//     upstream page length is below the upstream total. A negative upstream
//     value (already no count) is kept; a value that is not an integer is
//     removed.
//   - a member named "records-on-this-page" (SuiteCRM V8 meta) becomes the
//     number of records actually returned.
//   - any other member, such as SuiteCRM's "total-pages", is removed:
//     SuiteCRM has no "count unknown" value, and JSON:API clients page with
//     links.next.
//
// A count that precedes the list in the stream is moved to the end of the
// object that holds it when the list lies inside that object (EspoCRM's
// {"total":N,"list":[...]}), since members are unordered; a count in a part
// of the document that closes before the list starts is removed.
package redact

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/profile"
)

// Errors Transform reports; inspect them with errors.Is.
var (
	// ErrNotJSON means the body is not exactly one valid JSON value (syntax,
	// invalid UTF-8, duplicate member names, trailing data, empty body).
	ErrNotJSON = errors.New("body is not valid json")
	// ErrRecordDenied means that in ModeRecord the record rule refused the
	// record; nothing has been written to dst, so the caller can still answer
	// 404.
	ErrRecordDenied = errors.New("record denied by the record rule")
	// ErrWithheld means that in ModeRecord Plan.Admit refused the record;
	// nothing has been written to dst.
	ErrWithheld = errors.New("record withheld: read budget spent")
	// ErrUnexpectedShape means the document is JSON but does not have the
	// profile's shape: no list or record where Shape says, a list that is not
	// an array, a record that is not an object, or more than MaxHeld bytes
	// before the list or record was found.
	ErrUnexpectedShape = errors.New("body does not have the expected shape")
)

// MaxHeld bounds the output held back before a list or record is found (and,
// in ModeRecord, the record itself): beyond it Transform fails with
// ErrUnexpectedShape instead of buffering without limit.
const MaxHeld = 16 << 20

// DefaultMaxRecordIDs is the bound on Stats.IDs when Plan.MaxRecordIDs is zero.
const DefaultMaxRecordIDs = 100

// RecordRule decides, record by record, what the record rule says.
type RecordRule interface {
	// Fields names the record fields Check needs; nil means all of them.
	Fields() []string
	// Check decides one record. record holds the record's fields (the object
	// at Shape.FieldsPath, restricted to Fields, with JSON numbers as
	// json.Number) plus Shape.IDField taken from the record object. The map
	// is reused for the next record once Check returns, so Check must not
	// keep it.
	Check(record map[string]any) (policy.RecordDecision, error)
}

// Plan is what must happen to one response body, built from the policy's
// Decision and the CRM profile's Shape.
type Plan struct {
	// Shape locates records, fields, the id and the counts.
	Shape profile.Shape
	// Hidden names are removed everywhere in the document, at any depth.
	Hidden []string
	// Masked maps a name to a mask style (policy.MaskLast4, MaskEmail,
	// MaskRedact or MaskHash), applied at any depth.
	Masked map[string]string
	// Visible is the allow-list for each record's fields object; it applies
	// only when VisibleDefined, since an empty defined list means "only the
	// id".
	Visible        []string
	VisibleDefined bool
	// Record is the record rule; nil means records are not filtered.
	Record RecordRule
	// KeepTotals leaves the counts at Shape.TotalPaths as the CRM wrote
	// them although Record is set: the CRM applied the record rule itself
	// (an exact pushdown), so its counts are the subject's. Records are
	// still checked; one the rule refuses is dropped, and the count is
	// then high by the records dropped, which Stats.Filtered reports.
	KeepTotals bool
	// HashKey is the HMAC-SHA256 key for MaskHash, so that a hash of a phone
	// number cannot be reversed by hashing every phone number. At least 16
	// bytes; required when any field is hash-masked.
	HashKey []byte
	// MaxRecordIDs bounds Stats.IDs; zero means DefaultMaxRecordIDs and a
	// negative value collects none.
	MaxRecordIDs int
	// Offset is how many upstream records precede this page (EspoCRM's
	// offset parameter); it tells a rewritten "total" whether more records
	// follow. Zero (first page, or unknown) at worst makes a last page say
	// "more" once, and the next, empty, page then says "no more".
	Offset int
	// RecordTypes, with Shape.TypeField, keeps only records whose type
	// member is exactly one of these names (a module's, see
	// profile.RecordTypes); a record of another type, or with none, is
	// dropped and counted as filtered. Related lists set it: the link
	// decided which module's rules apply, and a record of another module
	// must not pass under them.
	RecordTypes []string
	// Links rewrites each string at Shape.LinkPaths (a URL the CRM built
	// with its own address); ok false drops the member. With Links nil
	// the members are dropped: a link to the CRM is never passed on as
	// it came.
	Links func(link string) (rewritten string, ok bool)
	// Admit, when set, is asked before each record that passed every other
	// check is written (the read budget): false drops the record and counts
	// it in Stats.Withheld; in ModeRecord Transform then fails with
	// ErrWithheld and nothing written. It is called from Transform's
	// goroutine only.
	Admit func() bool
}

// Mode says which envelope Transform expects.
type Mode int

// Modes of Transform.
const (
	// ModeOther redacts names only (error bodies, metadata, related lists of
	// unknown modules); no record rule, no allow-list.
	ModeOther Mode = iota
	// ModeList expects the list at Shape.ListPath.
	ModeList
	// ModeRecord expects one record at Shape.RecordPath.
	ModeRecord
)

// String returns the mode's name for logs.
func (m Mode) String() string {
	switch m {
	case ModeOther:
		return "other"
	case ModeList:
		return "list"
	case ModeRecord:
		return "record"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// Stats reports what one Transform did, for the decision log and metrics.
type Stats struct {
	// Returned and Filtered count records written and dropped.
	Returned, Filtered int
	// Withheld counts records Plan.Admit held back; they are in neither
	// Returned nor Filtered.
	Withheld int
	// Redacted counts fields removed (hidden, record-hidden or outside the
	// allow-list) or masked in what was written; Masked is the part of
	// Redacted that was masked rather than removed.
	Redacted, Masked int
	// IDs are the ids of returned records, in order, at most
	// Plan.MaxRecordIDs; Truncated says more were returned.
	IDs       []string
	Truncated bool
}

// Compiled is a Plan turned into lookup tables. It is immutable and safe for
// concurrent use by any number of Transform calls.
type Compiled struct {
	*tables
	rule   RecordRule
	offset int
	admit  func() bool
	// typeField and recTypes are Plan.Shape.TypeField and
	// Plan.RecordTypes, kept here rather than in the shared tables (whose
	// cache key does not cover them); typeField is empty unless both are
	// set.
	typeField string
	recTypes  []string
	links     func(string) (string, bool)
}

// tables are what a plan compiles to apart from its record rule and offset.
// Every request that got the same decision has the same tables, so Compile
// shares them (see compiledTables); nothing writes to them once built.
type tables struct {
	names      map[string]entry // folded name → what happens to it
	filter     nameFilter
	visibleDef bool
	shape      profile.Shape
	listTrie   *pathNode
	recTrie    *pathNode
	wantAll    bool
	want       []string
	hashKey    []byte
	maxIDs     int
	// recLinks are link names (Shape.LinkPaths) met in a record object:
	// a single record at the document root carries them among its
	// fields (Dataverse's @odata.context). They are dropped there, not
	// passed on with the CRM's address.
	recLinks map[string]bool
}

// Compile validates p and builds its lookup tables, or reuses those of an
// earlier plan that was the same in every part the tables depend on.
func (p *Plan) Compile() (*Compiled, error) {
	if p.Offset < 0 {
		return nil, fmt.Errorf("compile plan: negative offset %d", p.Offset)
	}
	var fields []string
	if p.Record != nil {
		fields = p.Record.Fields()
	}
	// The reference policy's plans (allow-lists of a few dozen fields)
	// make keys of about a kilobyte: room for them on the stack.
	var kb [2048]byte
	key := p.appendKey(kb[:0], fields)
	t := compiledTables.get(key)
	if t == nil {
		var err error
		if t, err = p.tables(fields); err != nil {
			return nil, err
		}
		compiledTables.put(key, t)
	}
	c := &Compiled{tables: t, rule: p.Record, offset: p.Offset, links: p.Links, admit: p.Admit}
	if len(p.RecordTypes) > 0 {
		if p.Shape.TypeField == "" || len(p.Shape.FieldsPath) == 0 {
			// With the fields in the record object itself, the type
			// member could not be told from a field of that name.
			return nil, fmt.Errorf("compile plan: record types %q need a type field outside the fields object", p.RecordTypes)
		}
		c.typeField, c.recTypes = p.Shape.TypeField, p.RecordTypes
	}
	return c, nil
}

func (p *Plan) tables(fields []string) (*tables, error) {
	c := &tables{
		names:      make(map[string]entry, len(p.Hidden)+len(p.Masked)+len(p.Visible)),
		visibleDef: p.VisibleDefined,
		shape:      p.Shape,
		maxIDs:     p.MaxRecordIDs,
	}
	if c.maxIDs == 0 {
		c.maxIDs = DefaultMaxRecordIDs
	}
	var buf []byte
	for _, n := range p.Hidden {
		buf = appendFold(buf[:0], []byte(n))
		e := c.names[string(buf)]
		e.hidden = true
		c.names[string(buf)] = e
	}
	needKey := false
	for n, style := range p.Masked {
		m, err := parseMask(style)
		if err != nil {
			return nil, fmt.Errorf("compile plan: masked field %q: %w", n, err)
		}
		needKey = needKey || m == maskHash
		buf = appendFold(buf[:0], []byte(n))
		e := c.names[string(buf)]
		// Two spellings of one name with different styles: the strongest
		// wins, so the outcome does not depend on map order.
		e.mask = max(e.mask, m)
		c.names[string(buf)] = e
	}
	if needKey {
		if len(p.HashKey) < 16 {
			return nil, errors.New("compile plan: hash masking needs a hash key of at least 16 bytes")
		}
		c.hashKey = append([]byte(nil), p.HashKey...)
	}
	if p.VisibleDefined {
		for _, n := range p.Visible {
			buf = appendFold(buf[:0], []byte(n))
			e := c.names[string(buf)]
			e.visible = true
			c.names[string(buf)] = e
		}
	}
	if p.Record != nil {
		c.wantAll = fields == nil
		c.want = append([]string(nil), fields...)
	}
	for n := range c.names {
		c.filter.add(n)
	}
	var err error
	if c.listTrie, err = buildTrie(p.Shape.ListPath, nodeList, p.Record != nil && !p.KeepTotals, p.Shape.TotalPaths); err != nil {
		return nil, fmt.Errorf("compile plan: %w", err)
	}
	if err = addLinks(c.listTrie, p.Shape.LinkPaths); err != nil {
		return nil, fmt.Errorf("compile plan: %w", err)
	}
	for _, lp := range p.Shape.LinkPaths {
		if c.recLinks == nil {
			c.recLinks = map[string]bool{}
		}
		c.recLinks[lp[len(lp)-1]] = true
	}
	if c.recTrie, err = buildTrie(p.Shape.RecordPath, nodeRecord, false, nil); err != nil {
		return nil, fmt.Errorf("compile plan: %w", err)
	}
	return c, nil
}

// appendKey writes everything the tables depend on, each string with its
// length, so that two plans have the same key only if their tables are the
// same. fields are the record rule's.
func (p *Plan) appendKey(b []byte, fields []string) []byte {
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	list := func(l []string) {
		b = binary.AppendUvarint(b, uint64(len(l)))
		for _, s := range l {
			str(s)
		}
	}
	list(p.Shape.ListPath)
	list(p.Shape.RecordPath)
	list(p.Shape.FieldsPath)
	str(p.Shape.IDField)
	b = binary.AppendUvarint(b, uint64(len(p.Shape.TotalPaths)))
	for _, tp := range p.Shape.TotalPaths {
		list(tp)
	}
	b = binary.AppendUvarint(b, uint64(len(p.Shape.LinkPaths)))
	for _, lp := range p.Shape.LinkPaths {
		list(lp)
	}
	list(p.Hidden)
	// Map order is random; the key lists the masked names sorted. Plans
	// mask a handful of fields, so the names fit on the stack.
	var ka [16]string
	names := ka[:0]
	for n := range p.Masked {
		names = append(names, n)
	}
	slices.Sort(names)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, n := range names {
		str(n)
		str(p.Masked[n])
	}
	b = append(b, boolByte(p.VisibleDefined))
	list(p.Visible)
	b = append(b, boolByte(p.Record != nil), boolByte(fields == nil), boolByte(p.KeepTotals))
	list(fields)
	str(string(p.HashKey))
	b = binary.AppendVarint(b, int64(p.MaxRecordIDs))
	return b
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// maxCachedTables bounds the tables cache; when full it starts over, as
// the policy's decision cache does.
const maxCachedTables = 1024

// compiledTables maps a plan's key to its tables. Decisions repeat (one
// per persona, module and action, mostly), so nearly every request finds
// its tables here instead of building maps and path tries.
var compiledTables = tableCache{m: make(map[string]*tables)}

type tableCache struct {
	mu sync.RWMutex
	m  map[string]*tables
}

func (tc *tableCache) get(key []byte) *tables {
	tc.mu.RLock()
	t := tc.m[string(key)]
	tc.mu.RUnlock()
	return t
}

func (tc *tableCache) put(key []byte, t *tables) {
	tc.mu.Lock()
	if len(tc.m) >= maxCachedTables {
		clear(tc.m)
	}
	tc.m[string(key)] = t
	tc.mu.Unlock()
}

// nameFilter answers "certainly not a plan name" from a folded name's length
// and first byte, which spares the map lookup for most members of a record.
type nameFilter struct {
	lens  uint64 // bit l: some name is l bytes long (l < 64)
	long  bool   // some name is 64 bytes or longer
	first [4]uint64
}

func (f *nameFilter) add(folded string) {
	if l := len(folded); l < 64 {
		f.lens |= 1 << l
	} else {
		f.long = true
	}
	if len(folded) > 0 {
		f.first[folded[0]>>6] |= 1 << (folded[0] & 63)
	}
}

func (f *nameFilter) mayHold(folded []byte) bool {
	l := len(folded)
	if l >= 64 {
		return f.long
	}
	if f.lens&(1<<l) == 0 {
		return false
	}
	return l == 0 || f.first[folded[0]>>6]&(1<<(folded[0]&63)) != 0
}

// lookup returns what the plan does with a folded name.
func (c *Compiled) lookup(folded []byte) entry {
	if !c.filter.mayHold(folded) {
		return entry{}
	}
	return c.names[string(folded)]
}

// entry is what a plan does with one folded name.
type entry struct {
	hidden  bool
	visible bool
	mask    maskStyle
}

type nodeKind uint8

const (
	nodeInner nodeKind = iota
	nodeList
	nodeRecord
	nodeTotal
	nodeLink
)

// pathNode is one step of the structural paths of a Shape. Exactly one of
// the target kinds sits at the end of ListPath or RecordPath; holdsTarget marks
// the nodes on the way there.
type pathNode struct {
	children    map[string]*pathNode
	kind        nodeKind
	holdsTarget bool
	total       totalStyle
}

func buildTrie(target []string, kind nodeKind, withTotals bool, totals [][]string) (*pathNode, error) {
	root := &pathNode{}
	n := root
	for _, name := range target {
		n.holdsTarget = true
		n = n.child(name)
	}
	n.kind = kind
	if !withTotals {
		return root, nil
	}
	for _, tp := range totals {
		if len(tp) == 0 {
			return nil, errors.New("total path is empty")
		}
		n := root
		for i, name := range tp {
			if n.kind != nodeInner {
				return nil, fmt.Errorf("total path %q runs through the list", tp)
			}
			n = n.child(name)
			if i == len(tp)-1 {
				if n.kind != nodeInner || len(n.children) > 0 || n.holdsTarget {
					return nil, fmt.Errorf("total path %q overlaps another path", tp)
				}
				n.kind = nodeTotal
				n.total = styleFor(name)
			}
		}
	}
	return root, nil
}

// addLinks marks the members at links (top-level envelope members only:
// the rewrite happens where the envelope is walked).
func addLinks(root *pathNode, links [][]string) error {
	for _, lp := range links {
		if len(lp) != 1 {
			return fmt.Errorf("link path %q is not one top-level member", lp)
		}
		n := root.child(lp[0])
		if n.kind != nodeInner || len(n.children) > 0 || n.holdsTarget {
			return fmt.Errorf("link path %q overlaps another path", lp)
		}
		n.kind = nodeLink
	}
	return nil
}

func (n *pathNode) child(name string) *pathNode {
	if n.children == nil {
		n.children = make(map[string]*pathNode)
	}
	c := n.children[name]
	if c == nil {
		c = &pathNode{}
		n.children[name] = c
	}
	return c
}

// Transform reads one JSON document from src and writes its redacted form to
// dst, expecting the envelope mode names. See the package documentation for
// what is rewritten and which errors leave dst untouched.
func (c *Compiled) Transform(dst io.Writer, src io.Reader, mode Mode) (Stats, error) {
	w := getWalker(c, dst, src, mode)
	defer putWalker(w)
	err := w.run()
	return w.stats, err
}
