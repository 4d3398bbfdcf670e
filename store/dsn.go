package store

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// acceptedURLs names the DATABASE_URL forms Open understands, for errors.
const acceptedURLs = "sqlite:PATH, sqlite://PATH, file:PATH, postgres://… or postgresql://…"

// target is a parsed DATABASE_URL.
type target struct {
	dialect string // DialectSQLite or DialectPostgres
	path    string // sqlite: file path
	url     string // postgres: the URL as given
	secrets []string
}

// parseURL splits a DATABASE_URL by scheme. Its errors never contain the URL
// itself, which may carry a password.
func parseURL(raw string) (target, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return target{}, fmt.Errorf("store: empty database URL; use %s", acceptedURLs)
	}
	scheme, rest, ok := strings.Cut(raw, ":")
	if !ok || !validScheme(scheme) {
		return target{}, fmt.Errorf("store: database URL has no scheme; use %s", acceptedURLs)
	}
	switch strings.ToLower(scheme) {
	case "sqlite", "sqlite3", "file":
		// sqlite://data/a.db is relative, sqlite:///var/a.db absolute.
		path := strings.TrimPrefix(rest, "//")
		if strings.ContainsAny(path, "?#") {
			return target{}, errors.New("store: sqlite URL must be a plain file path without ?query or #fragment (pragmas are set by accessbot)")
		}
		if path == "" {
			return target{}, fmt.Errorf("store: sqlite URL has no file path; use %s", acceptedURLs)
		}
		if strings.HasPrefix(path, ":memory:") {
			return target{}, errors.New("store: sqlite :memory: is not supported (every pooled connection would see its own empty database); use a file path")
		}
		return target{dialect: DialectSQLite, path: path}, nil
	case "postgres", "postgresql":
		u, err := url.Parse(raw)
		if err != nil {
			// url.Error would quote the whole URL, password included.
			return target{}, errors.New("store: cannot parse the postgres URL (are special characters in the password percent-encoded?)")
		}
		t := target{dialect: DialectPostgres, url: raw}
		if pw, ok := u.User.Password(); ok && pw != "" {
			t.secrets = append(t.secrets, pw)
		}
		for _, k := range []string{"password", "sslpassword"} {
			if v := u.Query().Get(k); v != "" {
				t.secrets = append(t.secrets, v)
			}
		}
		return t, nil
	default:
		return target{}, fmt.Errorf("store: unsupported database URL scheme %q; use %s", scheme, acceptedURLs)
	}
}

// validScheme reports whether s looks like a URL scheme (RFC 3986), so a
// bare path or "user:password@host" is not quoted back as one.
func validScheme(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// scrubbedError hides secrets in the text of an error from a driver.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrub returns err with every secret in its text replaced by "xxxxx". The
// original stays reachable with errors.As, for code that inspects it.
func scrub(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	msg := err.Error()
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, "xxxxx")
		if esc := url.QueryEscape(s); esc != s {
			msg = strings.ReplaceAll(msg, esc, "xxxxx")
		}
		if esc := url.PathEscape(s); esc != s {
			msg = strings.ReplaceAll(msg, esc, "xxxxx")
		}
	}
	return &scrubbedError{msg: msg, err: err}
}

// SQLitePath returns the file path of a SQLite DATABASE_URL, and false for
// any other URL. Commands that only read use it to refuse a missing file
// rather than let SQLite create an empty database.
func SQLitePath(databaseURL string) (string, bool) {
	t, err := parseURL(databaseURL)
	if err != nil || t.dialect != DialectSQLite {
		return "", false
	}
	return t.path, true
}
