package store

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestScrubParsesRatherThanReplaces: the password is found by the URL's
// structure, so a password equal to the user, database or scheme name
// ("postgres", the case) hides only the password.
func TestScrubParsesRatherThanReplaces(t *testing.T) {
	cases := []struct{ in, want string }{
		{"connect to postgres: failed to connect to `user=postgres database=postgres`: refused",
			"connect to postgres: failed to connect to `user=postgres database=postgres`: refused"},
		{"cannot parse `postgres://postgres:postgres@127.0.0.1:1/postgres?sslmode=bogus`: failed to configure TLS",
			"cannot parse `postgres://postgres:xxxxx@127.0.0.1:1/postgres?sslmode=bogus`: failed to configure TLS"},
		{"bad `postgresql://alice:p%zz@db:badport/x`", "bad `postgresql://alice:xxxxx@db:badport/x`"},
		{"bad postgres://alice:a@b@db/x", "bad postgres://alice:xxxxx@db/x"},
		{"bad postgres://alice@db/x?sslmode=require&password=postgres", "bad postgres://alice@db/x?password=xxxxx&sslmode=require"},
		{"bad postgres://db/x?sslpassword=hunter2", "bad postgres://db/x?sslpassword=xxxxx"},
		{"host=db user=postgres password=postgres dbname=postgres", "host=db user=postgres password=xxxxx dbname=postgres"},
		{"host=db password='pa ss' user=u", "host=db password=xxxxx user=u"},
		{"no secret at all: postgres://alice@db/x", "no secret at all: postgres://alice@db/x"},
	}
	for _, c := range cases {
		base := errors.New(c.in)
		err := scrub(base)
		if err.Error() != c.want {
			t.Errorf("scrub(%q)\n got  %q\n want %q", c.in, err, c.want)
		}
		if !errors.Is(err, base) {
			t.Errorf("scrub(%q) lost the original error", c.in)
		}
	}
}

// TestOpenPostgresErrorKeepsNames opens a URL whose password is "postgres"
// on a port nobody listens on: the error names user and database as they
// are, and the password nowhere.
func TestOpenPostgresErrorKeepsNames(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, raw := range []string{
		"postgres://postgres:postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2",
		"postgres://postgres:postgres@127.0.0.1:1/postgres?sslmode=bogus",
	} {
		_, err := Open(ctx, raw)
		if err == nil {
			t.Fatalf("%s: opened", raw)
		}
		msg := err.Error()
		if strings.Contains(msg, "xxxxx://") || strings.Contains(msg, "user=xxxxx") || strings.Contains(msg, ":postgres@") {
			t.Errorf("%s:\n%s", raw, msg)
		}
		if !strings.Contains(msg, "postgres") {
			t.Errorf("the names were scrubbed too: %s", msg)
		}
	}
}
