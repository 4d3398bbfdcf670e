// Command accessbot gives people self-service access to PostHog roles from
// Slack. See README.md and `accessbot --help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

// cli is what a subcommand gets: its output streams and environment.
type cli struct {
	stdout, stderr io.Writer
	environ        []string
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, c *cli, args []string) int
}

var commands = []command{
	{"serve", "run the bot: HTTP server, Socket Mode, workers, scheduler", runServe},
	{"migrate", "apply database migrations and exit", runMigrate},
	{"audit", "the audit log: export, verify, keygen, checkpoint", runAudit},
	{"policy", "check a policy file (policy check [FILE])", runPolicy},
	{"healthcheck", "exit 0 when the running service answers /healthz (for Docker)", runHealthcheck},
	{"demo", "run the whole flow against in-process fake Slack and PostHog", runDemo},
	{"sandbox", "a web page to click through the bot as any seeded user (fake Slack and PostHog)", runSandbox},
	{"version", "print the version", runVersion},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &cli{stdout: os.Stdout, stderr: os.Stderr, environ: os.Environ()}, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, c *cli, args []string) int {
	if len(args) > 1 && args[0] == "help" {
		// "accessbot help audit export" is "accessbot audit export --help".
		return run(ctx, c, append(append([]string(nil), args[1:]...), "--help"))
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(c.stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, cmd := range commands {
		if cmd.name == args[0] {
			return cmd.run(ctx, c, args[1:])
		}
	}
	fmt.Fprintf(c.stderr, "accessbot: unknown command %q\n\n", args[0])
	usage(c.stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: accessbot <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, cmd := range commands {
		fmt.Fprintf(w, "  %-11s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'accessbot help <command>' (or 'accessbot <command> --help') for a command's flags.")
	fmt.Fprintln(w, "Configuration is read from environment variables: see README.md.")
}

// newFlags makes a subcommand's flag set whose --help prints usage text and
// whose errors go to stderr.
func newFlags(c *cli, name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: accessbot %s\n\n%s\n", synopsis, description)
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(out, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args; help prints to stdout and exits 0, errors exit 2.
func parseFlags(c *cli, fs *flag.FlagSet, args []string) (code int, ok bool) {
	_, code, ok = parseFlagsArgs(c, fs, args, 0)
	return code, ok
}

// parseFlagsArgs is parseFlags for a command taking up to max positional
// arguments, which may come before, between or after the flags.
func parseFlagsArgs(c *cli, fs *flag.FlagSet, args []string, max int) (pos []string, code int, ok bool) {
	for {
		fs.SetOutput(io.Discard)
		err := fs.Parse(args)
		fs.SetOutput(c.stderr)
		switch {
		case errors.Is(err, flag.ErrHelp):
			fs.SetOutput(c.stdout)
			fs.Usage()
			return nil, 0, false
		case err != nil:
			fmt.Fprintf(c.stderr, "accessbot %s: %v\n", fs.Name(), err)
			fs.Usage()
			return nil, 2, false
		case fs.NArg() == 0:
			return pos, 0, true
		case len(pos) == max:
			fmt.Fprintf(c.stderr, "accessbot %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
			fs.Usage()
			return nil, 2, false
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func runVersion(_ context.Context, c *cli, args []string) int {
	fs := newFlags(c, "version", "version", "Prints the version of this binary and the Go toolchain that built it.")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	fmt.Fprintf(c.stdout, "accessbot %s\n", buildVersion())
	return 0
}

// buildVersion is the -ldflags version, else the module version or VCS
// revision recorded by the Go toolchain; either way followed by the Go
// version that built it: "v1.2.0 go1.26.8", "devel 0123456789ab go1.26.8".
func buildVersion() string {
	if version != "" {
		return version + " " + runtime.Version()
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := info.Main.Version
	var settings []string
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			settings = append(settings, s.Value[:12])
		}
	}
	sort.Strings(settings)
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	if len(settings) > 0 {
		v += " " + strings.Join(settings, " ")
	}
	return v + " " + info.GoVersion
}

// fail prints one line for the operator and returns exit code 1.
func fail(c *cli, cmd string, err error) int {
	fmt.Fprintf(c.stderr, "accessbot %s: %v\n", cmd, err)
	return 1
}
