package acl

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
)

// A stored password is hex(salt) followed by hex(SHA-256(salt ||
// SHA-256(password))): 96 lowercase hex characters. The inner SHA-256 is
// what Redis keeps and what its "#hash" and "!hash" modifiers name, so
// those keep working; the salt, chosen for each password, keeps equal
// passwords from having equal hashes across users and clusters.
const (
	saltLen      = 16
	sha256HexLen = 2 * sha256.Size
	storedLen    = 2*saltLen + sha256HexLen
)

// PasswordSHA returns the hex SHA-256 of password, Redis's form.
func PasswordSHA(password string) string {
	h := sha256.Sum256([]byte(password))
	return hex.EncodeToString(h[:])
}

// HashPassword returns password's stored form with a salt read from rnd.
func HashPassword(password string, rnd io.Reader) string {
	return saltHash(PasswordSHA(password), rnd)
}

// saltHash returns the stored form of a password whose hex SHA-256 is sha.
func saltHash(sha string, rnd io.Reader) string {
	salt := make([]byte, saltLen)
	if _, err := io.ReadFull(rnd, salt); err != nil {
		panic(fmt.Sprintf("acl: read a salt: %v", err))
	}
	return hex.EncodeToString(salt) + hex.EncodeToString(salted(salt, sha))
}

func salted(salt []byte, sha string) []byte {
	inner, _ := hex.DecodeString(sha)
	h := sha256.New()
	h.Write(salt)
	h.Write(inner)
	return h.Sum(nil)
}

// sameHash reports whether stored is the password that hash names: its
// hex SHA-256, or its stored form.
func sameHash(stored, hash string) bool {
	if len(hash) == storedLen || len(stored) != storedLen {
		return stored == hash
	}
	salt, err := hex.DecodeString(stored[:2*saltLen])
	if err != nil {
		return false
	}
	want, err := hex.DecodeString(stored[2*saltLen:])
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(salted(salt, hash), want) == 1
}

// CheckPassword reports whether u may log in with password: u is on, and
// has nopass or a password equal to it.
func (u *User) CheckPassword(password []byte) bool {
	if !u.Enabled {
		return false
	}
	if u.NoPass {
		return true
	}
	sha := sha256.Sum256(password)
	hexSHA := hex.EncodeToString(sha[:])
	ok := false
	for _, p := range u.Passwords {
		if sameHash(p, hexSHA) { // every one is checked: no early exit to time
			ok = true
		}
	}
	return ok
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// GenPass returns bits random bits as hex, ACL GENPASS's reply.
func GenPass(bits int, rnd io.Reader) string {
	b := make([]byte, (bits+7)/8)
	if _, err := io.ReadFull(rnd, b); err != nil {
		panic(fmt.Sprintf("acl: read random bits: %v", err))
	}
	return hex.EncodeToString(b)[:(bits+3)/4]
}
