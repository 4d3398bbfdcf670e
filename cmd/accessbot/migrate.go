package main

import (
	"context"
	"fmt"

	"github.com/accessbot/accessbot/store"
)

func runMigrate(ctx context.Context, c *cli, args []string) int {
	fs := newFlags(c, "migrate", "migrate",
		"Applies the database migrations embedded in this binary to DATABASE_URL and exits.\n"+
			"Safe to run while other accessbot processes start or run.")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	cfg, err := loadConfig(c.environ)
	if err != nil {
		return fail(c, "migrate", err)
	}
	log, err := newLogger(c.stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return fail(c, "migrate", err)
	}
	db, err := store.Open(ctx, cfg.DatabaseURL, store.WithLogger(log))
	if err != nil {
		return fail(c, "migrate", fmt.Errorf("DATABASE_URL: %w", err))
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return fail(c, "migrate", err)
	}
	fmt.Fprintln(c.stdout, "migrations applied")
	return 0
}

// openMigrated opens DATABASE_URL for a command that reads it and checks the
// schema is in place.
func openMigrated(ctx context.Context, c *cli, cmd string) (*store.DB, int) {
	cfg, err := loadConfig(c.environ)
	if err != nil {
		return nil, fail(c, cmd, err)
	}
	log, err := newLogger(c.stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return nil, fail(c, cmd, err)
	}
	db, err := store.Open(ctx, cfg.DatabaseURL, store.WithLogger(log))
	if err != nil {
		return nil, fail(c, cmd, fmt.Errorf("DATABASE_URL: %w", err))
	}
	if err := db.Ready(ctx); err != nil {
		db.Close()
		return nil, fail(c, cmd, fmt.Errorf("%w (run 'accessbot migrate' first?)", err))
	}
	return db, 0
}
