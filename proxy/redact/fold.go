package redact

import (
	"unicode"
	"unicode/utf8"
)

// appendFold appends the case-folded form of name to dst: every rune is
// replaced by the smallest rune of its simple-folding orbit, so two names
// fold alike exactly when strings.EqualFold says they are equal (including
// "ſ"/"s" and the Kelvin sign/"k", which plain lower-casing misses).
func appendFold(dst, name []byte) []byte {
	for i := 0; i < len(name); {
		b := name[i]
		if b < utf8.RuneSelf {
			if 'a' <= b && b <= 'z' {
				b -= 'a' - 'A'
			}
			dst = append(dst, b)
			i++
			continue
		}
		r, size := utf8.DecodeRune(name[i:])
		dst = utf8.AppendRune(dst, foldRune(r))
		i += size
	}
	return dst
}

// foldRune returns the smallest rune that folds to r.
func foldRune(r rune) rune {
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	return least
}
