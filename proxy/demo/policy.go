package demo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"testing/fstest"

	refpolicy "github.com/crmgate/crmgate/rego"
)

// OfficeNetworks are the demo's office networks: the demo and the tests
// that assemble crmgate like it reach it over loopback, so loopback is the
// office there. The reference data names documentation ranges instead.
var OfficeNetworks = []string{"127.0.0.0/8", "::1/128"}

// WorkingHours are the demo's working hours: all day, every day, so that
// staff personas work whenever someone runs the demo. The reference data has
// 08:00-18:00 Monday to Friday.
var WorkingHours = map[string]any{
	"start": "00:00", "end": "24:00", "time_zone": "UTC",
	"days": []string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"},
}

// PolicyFS is the reference policy with the demo's context data
// (OfficeNetworks, WorkingHours) in place of the reference data's: the same
// rules, in a setting where every persona can act.
func PolicyFS() (fs.FS, error) {
	return WithContext(OfficeNetworks, WorkingHours)
}

// WithContext is the reference policy with office_networks and
// working_hours of its data document replaced; tests use it to state the
// context they run in.
func WithContext(offices []string, hours map[string]any) (fs.FS, error) {
	out := fstest.MapFS{}
	err := fs.WalkDir(refpolicy.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(refpolicy.FS, p)
		if err != nil {
			return err
		}
		if p == "data.json" {
			if b, err = replaceContext(b, offices, hours); err != nil {
				return err
			}
		}
		out[p] = &fstest.MapFile{Data: b, Mode: 0o444}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("demo policy: %w", err)
	}
	return out, nil
}

func replaceContext(data []byte, offices []string, hours map[string]any) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc map[string]map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("data.json: %w", err)
	}
	cd, ok := doc["crmgate_data"]
	if !ok {
		return nil, fmt.Errorf("data.json: no crmgate_data")
	}
	cd["office_networks"] = offices
	cd["working_hours"] = hours
	return json.Marshal(doc)
}
