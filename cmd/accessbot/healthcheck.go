package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// defaultAdminListen is ACCESSBOT_ADMIN_LISTEN's default (product.md,
// "Configuration"): the operator listener that serves /healthz.
const defaultAdminListen = ":9090"

func runHealthcheck(ctx context.Context, c *cli, args []string) int {
	fs := newFlags(c, "healthcheck", "healthcheck [--timeout D] [URL]",
		"Exits 0 when the running service answers URL with 2xx, 1 otherwise (one line on stderr).\n"+
			"For Docker's HEALTHCHECK and Kubernetes exec probes: the image has no shell or curl.\n"+
			"URL defaults to /healthz on ACCESSBOT_ADMIN_LISTEN (default "+defaultAdminListen+"), asked on\n"+
			"127.0.0.1 when the listener has no host: http://127.0.0.1:9090/healthz.")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	pos, code, ok := parseFlagsArgs(c, fs, args, 1)
	if !ok {
		return code
	}
	target := healthURL(lookupEnv(c.environ, "ACCESSBOT_ADMIN_LISTEN"))
	if len(pos) == 1 {
		target = pos[0]
	}
	if *timeout <= 0 {
		return fail(c, "healthcheck", fmt.Errorf("--timeout must be positive, got %s", *timeout))
	}
	if err := checkHealth(ctx, target, *timeout); err != nil {
		return fail(c, "healthcheck", err)
	}
	return 0
}

// healthURL is the /healthz URL of an admin listen address such as ":9090",
// "0.0.0.0:9090" or "10.0.0.5:9090".
func healthURL(listen string) string {
	if listen == "" {
		listen = defaultAdminListen
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		host, port = "", strings.TrimPrefix(defaultAdminListen, ":")
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz"
}

// checkHealth GETs url and wants a 2xx answer within timeout.
func checkHealth(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("invalid URL %q: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: not answering: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// lookupEnv returns the value of name in environ ("" when unset).
func lookupEnv(environ []string, name string) string {
	for i := len(environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(environ[i], "="); ok && k == name {
			return v
		}
	}
	return ""
}
