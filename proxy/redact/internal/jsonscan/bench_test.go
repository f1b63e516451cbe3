package jsonscan

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// crmList builds a SuiteCRM-style list of n records of about 1 KB each,
// like the redactor's own benchmark body.
func crmList(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"data":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"Accounts","id":"6f1c2a9e-0000-4000-8000-%012d","attributes":{`+
			`"name":"Department Store %d","account_type":"Customer","industry":"Retail",`+
			`"annual_revenue":"%d","phone_office":"+1 555 %07d","phone_fax":"+1 555 0000000",`+
			`"email1":"store%d@shop.example","billing_address_street":"%d Main Street",`+
			`"billing_address_city":"Springfield","billing_address_state":"IL","billing_address_postalcode":"62701",`+
			`"billing_address_country":"USA","description":"Flagship store with a long description that pads the record to a realistic size for a CRM list view.",`+
			`"rating":"A","ownership":"Public","employees":"%d","ticker_symbol":"DS%d","sic_code":"5311",`+
			`"date_entered":"2026-01-02T03:04:05+00:00","date_modified":"2026-02-03T04:05:06+00:00",`+
			`"assigned_user_id":"u-%d","created_by":"1","deleted":false,"parent_id":"","campaign_id":null,`+
			`"credit_limit":%d,"tax_id":"TX-%06d"},`+
			`"relationships":{"Contacts":{"links":{"related":"V8/module/Accounts/%d/relationships/contacts"}}}}`,
			i, i, i*1000, i, i, i, 100+i, i, i%10, i*10, i, i)
	}
	fmt.Fprintf(&b, `],"meta":{"total-pages":1,"records-on-this-page":%d}}`, n)
	return b.Bytes()
}

// walkOurs walks a stream the way the redactor does: delimiters with
// ReadToken, member names and scalars with ReadValue.
func walkOurs(d *Decoder) error {
	if err := walkValueOurs(d); err != nil {
		return err
	}
	if _, err := d.ReadToken(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("after the value: %v", err)
	}
	return nil
}

func walkValueOurs(d *Decoder) error {
	switch d.PeekKind() {
	case '{':
		if _, err := d.ReadToken(); err != nil {
			return err
		}
		for d.PeekKind() != '}' {
			if _, err := d.ReadValue(); err != nil {
				return err
			}
			if err := walkValueOurs(d); err != nil {
				return err
			}
		}
		_, err := d.ReadToken()
		return err
	case '[':
		if _, err := d.ReadToken(); err != nil {
			return err
		}
		for d.PeekKind() != ']' {
			if err := walkValueOurs(d); err != nil {
				return err
			}
		}
		_, err := d.ReadToken()
		return err
	}
	_, err := d.ReadValue()
	return err
}

func walkRef(d *jsontext.Decoder) error {
	if err := walkValueRef(d); err != nil {
		return err
	}
	if _, err := d.ReadToken(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("after the value: %v", err)
	}
	return nil
}

func walkValueRef(d *jsontext.Decoder) error {
	switch d.PeekKind() {
	case '{':
		if _, err := d.ReadToken(); err != nil {
			return err
		}
		for d.PeekKind() != '}' {
			if _, err := d.ReadValue(); err != nil {
				return err
			}
			if err := walkValueRef(d); err != nil {
				return err
			}
		}
		_, err := d.ReadToken()
		return err
	case '[':
		if _, err := d.ReadToken(); err != nil {
			return err
		}
		for d.PeekKind() != ']' {
			if err := walkValueRef(d); err != nil {
				return err
			}
		}
		_, err := d.ReadToken()
		return err
	}
	_, err := d.ReadValue()
	return err
}

// BenchmarkWalk walks a 1,000-record list (about 1 MB) token by token with
// both decoders, duplicate names allowed as the redactor's body decoder
// runs, and refused.
func BenchmarkWalk(b *testing.B) {
	body := crmList(1000)
	r := bytes.NewReader(body)
	for _, allow := range []bool{true, false} {
		b.Run(fmt.Sprintf("jsontext/allowDup=%v", allow), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			d := jsontext.NewDecoder(r)
			for b.Loop() {
				r.Reset(body)
				d.Reset(r, jsontext.AllowDuplicateNames(allow))
				if err := walkRef(d); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("jsonscan/allowDup=%v", allow), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			d := NewDecoder(r, allow)
			for b.Loop() {
				r.Reset(body)
				d.Reset(r, allow)
				if err := walkOurs(d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
