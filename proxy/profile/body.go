package profile

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/go-json-experiment/json"
)

// ClassifyBody completes a Match from the request body and checks the body
// for ways to change what the CRM does after classification. Call it for
// every request that has a non-empty body, not only when m.NeedsBody: it
// also refuses
//
//   - a body that is not exactly one JSON value (both CRMs' APIs take JSON;
//     a form or multipart body could carry a _METHOD field that SuiteCRM's
//     Slim framework honours on POST);
//   - a duplicate object name anywhere, compared after unescaping, because
//     PHP's json_decode keeps the last value while a first-wins reader would
//     classify the first (`"type"` and `"typ\u0065"` are the same name);
//   - invalid UTF-8, which PHP's json_decode rejects and others replace;
//   - a top-level "_method" name in any case (Slim's POST override);
//   - on a record route with an id in the path, a record id in the body
//     that differs from it (the CRM could save the other record).
//
// An empty body is accepted unless the match needs it.
func (p *Profile) ClassifyBody(m Match, body []byte) (Match, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		if m.NeedsBody {
			return Match{}, fmt.Errorf("classify body: empty body: %w", ErrBadBody)
		}
		return m, nil
	}
	var doc any
	// The v2 decoder's defaults are what is wanted here: duplicate names
	// and invalid UTF-8 are errors, and so is anything after the value.
	if err := json.Unmarshal(body, &doc); err != nil {
		return Match{}, fmt.Errorf("classify body: %w: %w", ErrBadBody, err)
	}
	if obj, ok := doc.(map[string]any); ok {
		for k := range obj {
			if strings.EqualFold(k, "_method") {
				return Match{}, fmt.Errorf("classify body: name %q: %w", truncate(k), ErrMethodOverride)
			}
		}
		if p.checkBody != nil {
			if err := p.checkBody(m, obj); err != nil {
				return Match{}, fmt.Errorf("classify body: %w", err)
			}
		}
	} else if p.checkBody != nil {
		return Match{}, fmt.Errorf("classify body: not a JSON object: %w", ErrBadBody)
	}
	if p.odataKeys {
		if err := checkODataBody(doc); err != nil {
			return Match{}, fmt.Errorf("classify body: %w", err)
		}
	}
	if m.NeedsBody {
		if m.body == nil {
			return Match{}, fmt.Errorf("classify body: match was not made by Classify: %w", ErrBadBody)
		}
		if len(m.body.module) > 0 {
			v, err := stringAt(doc, m.body.module)
			if err != nil {
				return Match{}, fmt.Errorf("classify body: module: %w", err)
			}
			mod, ok := p.canonicalModule(v)
			if !ok {
				return Match{}, fmt.Errorf("classify body: module %q: %w", truncate(v), ErrBadBody)
			}
			m.Module = mod
		}
		if len(m.body.id) > 0 {
			v, err := stringAt(doc, m.body.id)
			if err != nil {
				return Match{}, fmt.Errorf("classify body: id: %w", err)
			}
			if !validID(v) {
				return Match{}, fmt.Errorf("classify body: id %q: %w", truncate(v), ErrBadBody)
			}
			m.ID = v
		}
		m.NeedsBody = false
	}
	if m.Kind == KindRecord && m.ID != "" {
		if err := p.checkBodyID(doc, m.ID, p.IDField(m.Module)); err != nil {
			return Match{}, fmt.Errorf("classify body: %w", err)
		}
	}
	return m, nil
}

// checkBodyID refuses a write whose body names a record other than the one
// classified: SuiteCRM copies attributes onto the bean before saving, and an
// "id" among them would redirect the save to another record.
func (p *Profile) checkBodyID(doc any, id, idField string) error {
	rec, ok := objectAt(doc, p.Shape.RecordPath)
	if !ok {
		return nil
	}
	objs := []map[string]any{rec}
	if fields, ok := objectAt(rec, p.Shape.FieldsPath); ok && len(p.Shape.FieldsPath) > 0 {
		objs = append(objs, fields)
	}
	for _, o := range objs {
		v, present := o[idField]
		if !present {
			continue
		}
		if s, ok := v.(string); !ok || s != id {
			return fmt.Errorf("body %s does not equal the classified id %q: %w", idField, id, ErrBadBody)
		}
	}
	return nil
}

func objectAt(doc any, path []string) (map[string]any, bool) {
	cur := doc
	for _, k := range path {
		o, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = o[k]; !ok {
			return nil, false
		}
	}
	o, ok := cur.(map[string]any)
	return o, ok
}

func stringAt(doc any, path []string) (string, error) {
	cur := doc
	for _, k := range path {
		o, ok := cur.(map[string]any)
		if !ok {
			return "", fmt.Errorf("%s: parent is not an object: %w", strings.Join(path, "."), ErrBadBody)
		}
		if cur, ok = o[k]; !ok {
			return "", fmt.Errorf("%s: missing: %w", strings.Join(path, "."), ErrBadBody)
		}
	}
	s, ok := cur.(string)
	if !ok {
		return "", fmt.Errorf("%s: not a string: %w", strings.Join(path, "."), ErrBadBody)
	}
	return s, nil
}

// checkODataBody refuses what a Dataverse write body can do besides set
// the record's own columns: an annotation (name@odata.bind associates
// another record, ownerid@odata.bind reassigns the owner, both to records
// crmgate has not checked) and a nested object or array (deep insert
// creates related records, which that entity's policy never sees).
func checkODataBody(doc any) error {
	obj, ok := doc.(map[string]any)
	if !ok {
		return fmt.Errorf("a Dataverse record body is a JSON object: %w", ErrBadBody)
	}
	for k, v := range obj {
		if strings.ContainsAny(k, "@.") {
			return fmt.Errorf("annotation %q (bind or instance annotation) is not accepted: %w", truncate(k), ErrBadBody)
		}
		switch v.(type) {
		case map[string]any, []any:
			return fmt.Errorf("%q holds a nested record (deep insert is not accepted): %w", truncate(k), ErrBadBody)
		}
	}
	return nil
}
