// Package deploy_test checks the deployment files operators copy:
// deploy/docker-compose.yaml and .env.example.
package deploy_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

type healthcheck struct {
	Test []string `yaml:"test"`
}

type service struct {
	Image       string            `yaml:"image"`
	EnvFile     string            `yaml:"env_file"`
	Environment map[string]string `yaml:"environment"`
	Healthcheck *healthcheck      `yaml:"healthcheck"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	StopGracePeriod string   `yaml:"stop_grace_period"`
	ReadOnly        bool     `yaml:"read_only"`
	Tmpfs           []string `yaml:"tmpfs"`
	Ports           []string `yaml:"ports"`
	Volumes         []any    `yaml:"volumes"` // short "src:dst" or long form
}

func TestCompose(t *testing.T) {
	data, err := os.ReadFile("docker-compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]service `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	pg, bot := f.Services["postgres"], f.Services["accessbot"]
	if pg.Healthcheck == nil || !slices.Contains(pg.Healthcheck.Test, "pg_isready") {
		t.Errorf("postgres healthcheck %+v", pg.Healthcheck)
	}
	// Exec form: the image has no shell.
	if bot.Healthcheck == nil || !slices.Equal(bot.Healthcheck.Test, []string{"CMD", "/usr/local/bin/accessbot", "healthcheck"}) {
		t.Errorf("accessbot healthcheck %+v", bot.Healthcheck)
	}
	if bot.DependsOn["postgres"].Condition != "service_healthy" {
		t.Errorf("accessbot does not wait for a healthy PostgreSQL: %+v", bot.DependsOn)
	}
	if u := bot.Environment["DATABASE_URL"]; !strings.HasPrefix(u, "postgres://accessbot:${POSTGRES_PASSWORD}@postgres:5432/accessbot") {
		t.Errorf("DATABASE_URL %q", u)
	}
	if bot.Environment["ACCESSBOT_ADMIN_LISTEN"] != ":9090" || !slices.Contains(bot.Ports, "127.0.0.1:9090:9090") {
		t.Errorf("the admin listener is not on 9090 published on loopback only: %v %v", bot.Environment, bot.Ports)
	}
	grace, err := time.ParseDuration(bot.StopGracePeriod)
	if err != nil || grace <= 25*time.Second {
		t.Errorf("stop_grace_period %q is not above the 25s shutdown timeout", bot.StopGracePeriod)
	}
	if !bot.ReadOnly || !slices.Contains(bot.Tmpfs, "/tmp") {
		t.Errorf("read_only %v, tmpfs %v", bot.ReadOnly, bot.Tmpfs)
	}
	policy := false
	for _, v := range bot.Volumes {
		if m, ok := v.(map[string]any); ok {
			policy = policy || (m["target"] == bot.Environment["ACCESSBOT_POLICY_FILE"] && m["read_only"] == true)
		}
	}
	if !policy {
		t.Errorf("the policy file is not mounted read-only at ACCESSBOT_POLICY_FILE: %+v", bot.Volumes)
	}
}

// contract lists product.md's configuration table, including variables that
// other parts implement, so .env.example documents all of them.
var contract = []string{
	"ACCESSBOT_LISTEN", "DATABASE_URL", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN",
	"SLACK_API_URL", "POSTHOG_HOST", "POSTHOG_PERSONAL_API_KEY", "POSTHOG_ORGANIZATION_ID",
	"ACCESSBOT_POLICY_FILE", "ACCESSBOT_ADMINS", "ACCESSBOT_AUDIT_TOKEN", "ACCESSBOT_APPROVALS_CHANNEL",
	"ACCESSBOT_LOG_LEVEL", "ACCESSBOT_LOG_FORMAT", "ACCESSBOT_ADMIN_LISTEN", "ACCESSBOT_AUDIT_SIGNING_KEY",
	"ACCESSBOT_AUDIT_CHECKPOINT_INTERVAL", "ACCESSBOT_AUDIT_CHANNEL", "ACCESSBOT_AUDIT_WEBHOOK_URL",
	"ACCESSBOT_AUDIT_WEBHOOK_SECRET", "ACCESSBOT_AUDIT_WEBHOOK_FORMAT",
}

// TestEnvExampleListsEveryVariable: every variable of the contract and every
// one the binary reads (the env tags of cmd/accessbot) is in .env.example,
// with a comment above it.
func TestEnvExampleListsEveryVariable(t *testing.T) {
	example, err := os.ReadFile("../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("../cmd/accessbot/config.go")
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(contract)
	for _, m := range regexp.MustCompile(`env:"([A-Z0-9_]+)"`).FindAllSubmatch(src, -1) {
		want = append(want, string(m[1]))
	}
	lines := strings.Split(string(example), "\n")
	for _, name := range want {
		i := slices.IndexFunc(lines, func(l string) bool {
			return strings.HasPrefix(l, name+"=") || strings.HasPrefix(l, "# "+name+"=")
		})
		if i < 0 {
			t.Errorf(".env.example lacks %s", name)
			continue
		}
		if i == 0 || !strings.HasPrefix(lines[i-1], "#") {
			t.Errorf(".env.example: %s has no comment saying what it is", name)
		}
	}
	// Docker's env-file format takes values literally: no quotes, no inline comments.
	for n, l := range lines {
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") && (strings.ContainsAny(v, `"'#`) || strings.Contains(k, " ")) {
			t.Errorf(".env.example:%d: %q would reach the process with quotes or a comment in it", n+1, l)
		}
	}
}
