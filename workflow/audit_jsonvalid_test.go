package workflow

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var validJSONSeeds = []string{
	`{}`, `[]`, `{"a":1}`, ` {"a" : [1, 2.5e-3, -0, true, false, null, "x\"\\\/\b\f\n\r\t\u00e9"]} `, `"str"`, `1`, `-1.0E+2`,
	`01`, `1.`, `.5`, `-`, `1e`, `+1`, `{"a":}`, `{"a" 1}`, `{,}`, `[1,]`, `{"a":1,}`, `"unterminated`, "\"ctl\x01\"",
	`"\x"`, `"\u12"`, `"\u12g4"`, `tru`, `nul`, `falsey`, `{"a":1}{}`, ``, ` `, "\"\xff\xfe\"", `[[[[]]]]`, `{"a":{"b":[{}]}}`,
	"{\"nl\":\"a\\nb\"}\n", `{"k":"v" }`, `[1 ,2]`, `{"a":[1,{"b":null}],"c":"d"}`, strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000), strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
}

func checkValidJSON(t *testing.T, s string) {
	valid, compact := validJSON([]byte(s))
	if want := json.Valid([]byte(s)); valid != want {
		t.Fatalf("validJSON(%.60q) = %v, json.Valid = %v", s, valid, want)
	}
	if valid {
		var buf bytes.Buffer
		_ = json.Compact(&buf, []byte(s))
		if wantCompact := buf.String() == s; compact != wantCompact {
			t.Fatalf("validJSON(%.60q) compact = %v, want %v", s, compact, wantCompact)
		}
	}
}

func TestValidJSONMatchesStdlib(t *testing.T) {
	for _, s := range validJSONSeeds {
		checkValidJSON(t, s)
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, s := range validJSONSeeds {
		f.Add(s)
	}
	f.Fuzz(checkValidJSON)
}

func TestAppendAuditTimeMatchesFormat(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("x", -7*3600-30*60)}
	times := []time.Time{time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 25, 23, 59, 0, 123456789, time.UTC), {}}
	for i := 0; i < 1000; i++ {
		times = append(times, time.Unix(int64(i)*7919*3607, int64(i)*999331).UTC())
	}
	for _, tm := range times {
		for _, z := range zones {
			tz := tm.In(z)
			if got, want := string(appendAuditTime(nil, tz)), tz.UTC().Format(AuditTimeFormat); got != want {
				t.Fatalf("%v: %s, want %s", tz, got, want)
			}
		}
	}
}
