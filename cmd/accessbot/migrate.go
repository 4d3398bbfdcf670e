package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/accessbot/accessbot/store"
	"github.com/rs/zerolog"
)

func runMigrate(ctx context.Context, c *cli, args []string) int {
	fs := newFlags(c, "migrate", "migrate",
		"Applies the database migrations embedded in this binary to DATABASE_URL and exits.\n"+
			"Safe to run while other accessbot processes start or run.")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	cfg, log, err := c.setup()
	if err != nil {
		return fail(c, "migrate", err)
	}
	db, err := openDB(ctx, cfg, log)
	if err != nil {
		return fail(c, "migrate", err)
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
	cfg, log, err := c.setup()
	if err != nil {
		return nil, fail(c, cmd, err)
	}
	// Opening a missing SQLite file would create an empty database, and
	// an empty log verifies as intact: refuse, naming the path.
	if path, ok := store.SQLitePath(cfg.DatabaseURL); ok {
		if _, err := os.Stat(path); err != nil {
			abs, _ := filepath.Abs(path)
			return nil, fail(c, cmd, fmt.Errorf("DATABASE_URL: no database at %s (%v); point DATABASE_URL at the bot's database", abs, errors.Unwrap(err)))
		}
	}
	db, err := openDB(ctx, cfg, log)
	if err != nil {
		return nil, fail(c, cmd, err)
	}
	if err := db.Ready(ctx); err != nil {
		db.Close()
		return nil, fail(c, cmd, fmt.Errorf("%w (run 'accessbot migrate' first?)", err))
	}
	return db, 0
}

// setup reads the configuration and builds the logger every subcommand uses.
func (c *cli) setup() (config, zerolog.Logger, error) {
	cfg, err := loadConfig(c.environ)
	if err != nil {
		return cfg, zerolog.Nop(), err
	}
	log, err := newLogger(c.stderr, cfg.LogLevel, cfg.LogFormat)
	return cfg, log, err
}

// openDB opens DATABASE_URL; its errors name the variable.
func openDB(ctx context.Context, cfg config, log zerolog.Logger) (*store.DB, error) {
	db, err := store.Open(ctx, cfg.DatabaseURL, store.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	return db, nil
}
