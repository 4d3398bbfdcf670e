// Package migrations holds the SQL that builds accessbot's database, embedded
// in the binary so a deployment never needs files beside it.
//
// Each dialect has its own folder (sqlite/, postgres/) because the SQL
// differs (identity columns, timestamp types, trigger syntax). Files are
// named NNNN_description.sql and applied in NNNN order, each exactly once;
// both folders hold the same versions so one schema version means the same
// tables on either database. The runner lives in package store, which knows
// how to lock each database while migrating.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"sort"
	"strings"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// Dialects are the folder names, one per supported database.
var Dialects = []string{"sqlite", "postgres"}

// Migration is one embedded SQL file.
type Migration struct {
	Version string // file name without ".sql", for example "0001_init"
	SQL     string
}

var nameRE = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.sql$`)

// List returns the migrations of dialect ("sqlite" or "postgres") in the
// order they must be applied. It fails on an unknown dialect, a badly named
// file or two files with the same number, so a mistake shows up in tests
// rather than half-way through a production migration.
func List(dialect string) ([]Migration, error) {
	if !slices.Contains(Dialects, dialect) {
		return nil, fmt.Errorf("migrations: unknown dialect %q (want one of %s)", dialect, strings.Join(Dialects, ", "))
	}
	entries, err := fs.ReadDir(files, dialect)
	if err != nil {
		return nil, fmt.Errorf("migrations: read %s: %w", dialect, err)
	}
	var out []Migration
	seen := map[string]string{}
	for _, e := range entries {
		name := e.Name()
		m := nameRE.FindStringSubmatch(name)
		if e.IsDir() || m == nil {
			return nil, fmt.Errorf("migrations: %s/%s: name must look like 0001_description.sql", dialect, name)
		}
		if other, dup := seen[m[1]]; dup {
			return nil, fmt.Errorf("migrations: %s/%s and %s share number %s", dialect, name, other, m[1])
		}
		seen[m[1]] = name
		b, err := fs.ReadFile(files, dialect+"/"+name)
		if err != nil {
			return nil, fmt.Errorf("migrations: read %s/%s: %w", dialect, name, err)
		}
		out = append(out, Migration{Version: strings.TrimSuffix(name, ".sql"), SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}
