package store

import (
	"fmt"
	"time"

	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/schema"
)

// sqliteTimeLayout is how times are written to SQLite TEXT columns: UTC,
// always six fraction digits and no zone suffix, so every value has the same
// width and comparing the text (run_at <= ?, ORDER BY at) orders by time.
// The driver's own formats trim trailing zeros, which would sort
// "…:05Z" after "…:05.1Z".
const sqliteTimeLayout = "2006-01-02 15:04:05.000000"

// dbTime is a time.Time column: UTC, truncated to microseconds (what
// PostgreSQL keeps, so both databases return the same value), NULL for the
// zero time. Row structs use it for every time column, and queries pass it
// for every time argument, so values are written one way only.
type dbTime time.Time

// newTime converts a workflow time for storage.
func newTime(t time.Time) dbTime { return dbTime(normTime(t)) }

// normTime is t as the store returns it: UTC and microsecond precision, or
// the zero time.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// Time returns the stored time (zero for NULL).
func (t dbTime) Time() time.Time { return time.Time(t) }

// AppendQuery writes t as an SQL literal for the current dialect.
func (t dbTime) AppendQuery(gen schema.QueryGen, b []byte) ([]byte, error) {
	tm := normTime(time.Time(t))
	if tm.IsZero() {
		return dialect.AppendNull(b), nil
	}
	if gen.Dialect().Name() == dialect.SQLite {
		return gen.Dialect().AppendString(b, tm.Format(sqliteTimeLayout)), nil
	}
	// PostgreSQL: '2006-01-02 15:04:05.999999+00:00' into a timestamptz.
	return gen.Dialect().AppendTime(b, tm), nil
}

// Scan reads a timestamptz (PostgreSQL), the fixed-width text (SQLite) or
// NULL.
func (t *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*t = dbTime{}
		return nil
	case time.Time:
		*t = dbTime(normTime(v))
		return nil
	case string:
		return t.parse(v)
	case []byte:
		return t.parse(string(v))
	default:
		return fmt.Errorf("store: cannot scan %T into a time", src)
	}
}

func (t *dbTime) parse(s string) error {
	for _, layout := range []string{sqliteTimeLayout, time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00"} {
		if tm, err := time.Parse(layout, s); err == nil {
			*t = dbTime(normTime(tm))
			return nil
		}
	}
	return fmt.Errorf("store: cannot parse time %q", s)
}
