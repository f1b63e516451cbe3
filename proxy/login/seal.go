package login

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// KeySize is the length of the master key (session.encryption_key).
const KeySize = 32

// errSealed is the one error opening a sealed value returns, whatever went
// wrong (truncated, tampered, another key, another purpose): the caller
// only needs to know it must not trust the value.
var errSealed = errors.New("sealed value does not open")

// keys are the purpose-bound keys derived from the master key, so the key
// that seals login state can never open a refresh token and vice versa.
type keys struct {
	state   cipher.AEAD // login state cookies
	refresh cipher.AEAD // refresh tokens at rest
	csrf    []byte      // logout form tokens (HMAC)
}

func deriveKeys(master []byte) (*keys, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("derive keys: key is %d bytes, want %d", len(master), KeySize)
	}
	derive := func(info string) ([]byte, error) {
		k, err := hkdf.Key(sha256.New, master, nil, info, 32)
		if err != nil {
			return nil, fmt.Errorf("derive keys: %s: %w", info, err)
		}
		return k, nil
	}
	aead := func(info string) (cipher.AEAD, error) {
		k, err := derive(info)
		if err != nil {
			return nil, err
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("derive keys: %s: %w", info, err)
		}
		g, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("derive keys: %s: %w", info, err)
		}
		return g, nil
	}
	var ks keys
	var err error
	if ks.state, err = aead("crmgate login state v1"); err != nil {
		return nil, err
	}
	if ks.refresh, err = aead("crmgate refresh token v1"); err != nil {
		return nil, err
	}
	if ks.csrf, err = derive("crmgate logout csrf v1"); err != nil {
		return nil, err
	}
	return &ks, nil
}

// seal encrypts and authenticates plain. aad binds the result to where it
// is used (a cookie name, a session hash): moved anywhere else, it no
// longer opens.
func seal(a cipher.AEAD, plain, aad []byte) ([]byte, error) {
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(plain)+a.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return a.Seal(nonce, nonce, plain, aad), nil
}

func open(a cipher.AEAD, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < a.NonceSize()+a.Overhead() {
		return nil, errSealed
	}
	plain, err := a.Open(nil, sealed[:a.NonceSize()], sealed[a.NonceSize():], aad)
	if err != nil {
		return nil, errSealed
	}
	return plain, nil
}

// sealString and openString carry sealed values in cookies (base64url).
func sealString(a cipher.AEAD, plain, aad []byte) (string, error) {
	b, err := seal(a, plain, aad)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func openString(a cipher.AEAD, s string, aad []byte) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errSealed
	}
	return open(a, b, aad)
}

// csrfToken is the logout form token for a session id: only a page
// crmgate served to the holder of that session cookie can know it.
func (k *keys) csrfToken(sessionID string) string {
	m := hmac.New(sha256.New, k.csrf)
	m.Write([]byte("logout\x00"))
	m.Write([]byte(sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (k *keys) csrfOK(sessionID, token string) bool {
	got, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return false
	}
	want, _ := base64.RawURLEncoding.DecodeString(k.csrfToken(sessionID))
	return hmac.Equal(got, want)
}
