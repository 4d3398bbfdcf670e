package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("ok\n"))
	}))
	t.Cleanup(healthy.Close)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "database unreachable", http.StatusServiceUnavailable)
	}))
	t.Cleanup(failing.Close)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	cases := []struct {
		name   string
		env    []string
		args   []string
		code   int
		stderr string
	}{
		{"healthy", nil, []string{healthy.URL + "/healthz"}, 0, ""},
		{"timeout flag before URL", nil, []string{"--timeout", "1s", healthy.URL + "/healthz"}, 0, ""},
		{"default URL from ACCESSBOT_ADMIN_LISTEN", []string{"ACCESSBOT_ADMIN_LISTEN=" + strings.TrimPrefix(healthy.URL, "http://")}, nil, 0, ""},
		{"timeout flag, default URL", []string{"ACCESSBOT_ADMIN_LISTEN=" + strings.TrimPrefix(healthy.URL, "http://")}, []string{"--timeout", "1s"}, 0, ""},
		{"timeout flag after URL", nil, []string{healthy.URL + "/healthz", "--timeout", "1s"}, 0, ""},
		{"two URLs", nil, []string{healthy.URL, healthy.URL}, 2, "accessbot healthcheck: unexpected argument"},
		{"answers 503", nil, []string{failing.URL + "/healthz"}, 1,
			"accessbot healthcheck: " + failing.URL + "/healthz answered 503 Service Unavailable: database unreachable\n"},
		{"not running", nil, []string{down.URL + "/healthz"}, 1, "accessbot healthcheck: " + down.URL + "/healthz: not answering: "},
		{"bad timeout", nil, []string{"--timeout", "0s", healthy.URL}, 1, "accessbot healthcheck: --timeout must be positive"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, c.env, append([]string{"healthcheck"}, c.args...)...)
			if code != c.code || out != "" || !strings.HasPrefix(errOut, c.stderr) || (c.stderr == "") != (errOut == "") {
				t.Fatalf("exit %d\nstdout %q\nstderr %q\nwant   %q", code, out, errOut, c.stderr)
			}
		})
	}
}

func TestHealthURL(t *testing.T) {
	for listen, want := range map[string]string{
		"":              "http://127.0.0.1:9090/healthz",
		":9090":         "http://127.0.0.1:9090/healthz",
		"0.0.0.0:9191":  "http://127.0.0.1:9191/healthz",
		"[::]:9090":     "http://127.0.0.1:9090/healthz",
		"10.1.2.3:9090": "http://10.1.2.3:9090/healthz",
		"[::1]:9090":    "http://[::1]:9090/healthz",
	} {
		if got := healthURL(listen); got != want {
			t.Errorf("healthURL(%q) = %q, want %q", listen, got, want)
		}
	}
}

// TestHealthcheckBinary runs the built binary as Docker's exec-form
// HEALTHCHECK does: no shell, only its exit status counts.
func TestHealthcheckBinary(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	t.Cleanup(srv.Close)
	if out, err := exec.CommandContext(context.Background(), binary, "healthcheck", srv.URL+"/healthz").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	srv.Close()
	err := exec.Command(binary, "healthcheck", srv.URL+"/healthz").Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("want exit 1 from a stopped service, got %v", err)
	}
}

// TestHelpCommandEqualsFlag: `accessbot help X` prints what `accessbot X --help` does.
func TestHelpCommandEqualsFlag(t *testing.T) {
	for _, args := range [][]string{{"serve"}, {"migrate"}, {"audit", "export"}, {"policy", "check"}, {"healthcheck"}, {"version"}} {
		code1, out1, err1 := runCLI(t, nil, append([]string{"help"}, args...)...)
		code2, out2, err2 := runCLI(t, nil, append(args, "--help")...)
		if code1 != 0 || code1 != code2 || out1 != out2 || err1 != err2 || !strings.HasPrefix(out1, "Usage: accessbot "+args[0]) {
			t.Errorf("%v: help gives %d %q, --help gives %d %q", args, code1, out1, code2, out2)
		}
	}
}
