package store

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// acceptedURLs names the DATABASE_URL forms Open understands, for errors.
const acceptedURLs = "sqlite:PATH, sqlite://PATH, file:PATH, postgres://… or postgresql://…"

// target is a parsed DATABASE_URL.
type target struct {
	dialect string // DialectSQLite or DialectPostgres
	path    string // sqlite: file path
	url     string // postgres: the URL as given
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
		if _, err := url.Parse(raw); err != nil {
			// url.Error would quote the whole URL, password included.
			return target{}, errors.New("store: cannot parse the postgres URL (are special characters in the password percent-encoded?)")
		}
		return target{dialect: DialectPostgres, url: raw}, nil
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

const redacted = "xxxxx"

var (
	// urlInText finds URLs quoted in an error, e.g. pgx's "cannot parse `postgres://…`".
	urlInText = regexp.MustCompile("[A-Za-z][A-Za-z0-9+.-]*://[^\\s`'\"<>]+")
	// passwordSetting finds password=VALUE in a key/value connection string,
	// the value bare or single-quoted.
	passwordSetting = regexp.MustCompile(`(?i)\b((?:ssl)?password)\s*=\s*('(?:\\.|[^'])*'|[^\s&'` + "`" + `]+)`)
)

// scrub returns err with every password in its text replaced by "xxxxx":
// the password of each URL (found by parsing it, never by searching for the
// password's text, so user=postgres stays readable when the password is
// "postgres" too) and each password=… setting. The original error stays
// reachable with errors.As, for code that inspects it.
func scrub(err error) error {
	if err == nil {
		return nil
	}
	msg := urlInText.ReplaceAllStringFunc(err.Error(), redactURL)
	msg = passwordSetting.ReplaceAllString(msg, "${1}="+redacted)
	return &scrubbedError{msg: msg, err: err}
}

// redactURL replaces the password in raw's user information and in its
// password query parameters. A URL that does not parse (the reason for many
// driver errors) is cut at its structure: scheme://user:PASSWORD@host.
func redactURL(raw string) string {
	scheme, rest, _ := strings.Cut(raw, "://")
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		if user, _, hasPassword := strings.Cut(authority[:at], ":"); hasPassword {
			authority = user + ":" + redacted + authority[at:]
		}
	}
	path, query, hasQuery := strings.Cut(tail, "?")
	if hasQuery {
		if q, err := url.ParseQuery(query); err == nil {
			for k := range q {
				if strings.EqualFold(k, "password") || strings.EqualFold(k, "sslpassword") {
					q[k] = []string{redacted}
				}
			}
			query = q.Encode()
		}
		// An unparsable query still loses its password=… through passwordSetting.
		path += "?" + query
	}
	return scheme + "://" + authority + path
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
