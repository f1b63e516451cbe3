package redact

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/crmgate/crmgate/policy"
)

// maskStyle orders the styles by how much they hide, so that conflicting
// spellings of one name resolve to the strongest.
type maskStyle uint8

const (
	maskNone maskStyle = iota
	maskLast4
	maskEmail
	maskHash
	maskRedact
)

func parseMask(style string) (maskStyle, error) {
	switch style {
	case policy.MaskLast4:
		return maskLast4, nil
	case policy.MaskEmail:
		return maskEmail, nil
	case policy.MaskHash:
		return maskHash, nil
	case policy.MaskRedact:
		return maskRedact, nil
	}
	return maskNone, fmt.Errorf("unknown mask style %q (want last4, email, redact or hash)", style)
}

const redactedJSON = `"[redacted]"`

// appendMasked appends the JSON string that replaces the string value s.
// mac is the keyed hash for maskHash (nil otherwise); scratch is reused.
func appendMasked(dst []byte, s []byte, style maskStyle, mac hash.Hash, scratch []byte) ([]byte, []byte) {
	switch style {
	case maskLast4:
		if quoteFree(s) {
			return appendLast4ASCII(dst, s), scratch
		}
		return appendLast4(dst, s, scratch)
	case maskEmail:
		at := -1
		for i, b := range s {
			if b == '@' {
				if at >= 0 {
					return append(dst, redactedJSON...), scratch
				}
				at = i
			}
		}
		if at <= 0 || at == len(s)-1 {
			return append(dst, redactedJSON...), scratch
		}
		_, size := utf8.DecodeRune(s)
		scratch = append(scratch[:0], s[:size]...)
		scratch = append(scratch, "***"...)
		scratch = append(scratch, s[at:]...)
		return appendQuoted(dst, scratch), scratch
	case maskHash:
		mac.Reset()
		mac.Write(s)
		scratch = mac.Sum(scratch[:0])
		dst = append(dst, `"hmac:`...)
		dst = hex.AppendEncode(dst, scratch[:8])
		return append(dst, '"'), scratch
	}
	return append(dst, redactedJSON...), scratch
}

// appendLast4 is maskLast4: every rune but the last four becomes '*', all
// of them when there are four or fewer.
func appendLast4(dst, s, scratch []byte) ([]byte, []byte) {
	n := utf8.RuneCount(s)
	keep := 0
	if n > 4 {
		keep = 4
	}
	scratch = scratch[:0]
	for i := 0; i < n-keep; i++ {
		scratch = append(scratch, '*')
	}
	tail := s
	for i := 0; i < n-keep; i++ {
		_, size := utf8.DecodeRune(tail)
		tail = tail[size:]
	}
	scratch = append(scratch, tail...)
	return appendQuoted(dst, scratch), scratch
}

// appendLast4ASCII is appendLast4 for s that quoteFree accepts: one byte
// per rune and nothing to escape, so the masked string is written as it
// is, as appendQuoted would write it.
func appendLast4ASCII(dst, s []byte) []byte {
	keep := 0
	if len(s) > 4 {
		keep = 4
	}
	dst = append(dst, '"')
	for range len(s) - keep {
		dst = append(dst, '*')
	}
	dst = append(dst, s[len(s)-keep:]...)
	return append(dst, '"')
}

// quoteFree reports whether s is ASCII that a JSON string holds unescaped.
func quoteFree(s []byte) bool {
	for _, c := range s {
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func newMAC(key []byte) hash.Hash { return hmac.New(sha256.New, key) }

// appendQuoted appends s as a JSON string. s is valid UTF-8 (the decoder
// refuses anything else and masks only cut at rune boundaries), so quoting
// cannot fail; if it ever did, the value is redacted rather than let out.
func appendQuoted(dst, s []byte) []byte {
	out, err := jsontext.AppendQuote(dst, s)
	if err != nil {
		return append(dst, redactedJSON...)
	}
	return out
}
