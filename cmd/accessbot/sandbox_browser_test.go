package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds a Chromium or Chrome binary: $ACCESSBOT_CHROMIUM, then the
// usual names on PATH.
func chromium() string {
	if p := os.Getenv("ACCESSBOT_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser is a headless Chromium tab that saves a screenshot in the test's
// temp dir when the test fails.
type browser struct {
	t   *testing.T
	ctx context.Context
	dir string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	bin := chromium()
	if bin == "" {
		t.Skip("no Chromium found (install Debian's chromium: apt-get install chromium, or set ACCESSBOT_CHROMIUM); skipping the sandbox browser test")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox, // CI runs as root
		chromedp.WindowSize(1440, 900),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 3*time.Minute)
	b := &browser{t: t, ctx: ctx, dir: t.TempDir()}
	t.Cleanup(func() {
		if t.Failed() {
			b.screenshot("failure")
		}
		cancelTime()
		cancelTab()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	return b
}

// screenshot saves the whole page as NAME.png in the test's temp dir.
func (b *browser) screenshot(name string) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	b.t.Logf("screenshot: %s", path)
}

// keep saves a screenshot of a step when ACCESSBOT_SCREENSHOTS names a
// directory, to look at the page without a failure.
func (b *browser) keep(name string) {
	if dir := os.Getenv("ACCESSBOT_SCREENSHOTS"); dir != "" {
		saved := b.dir
		b.dir = dir
		b.screenshot(name)
		b.dir = saved
	}
}

// do runs actions, each step bounded so a missing element fails with its name.
func (b *browser) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 25*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", step, err)
	}
}

// waitFor waits until the element at xpath is visible.
func (b *browser) waitFor(step, xpath string) {
	b.t.Helper()
	b.do(step, chromedp.WaitVisible(xpath))
}

// text reads the text of the element matching a CSS selector.
func (b *browser) text(css string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 25*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		b.t.Fatalf("read %s: %v", css, err)
	}
	return s
}

// TestSandboxInBrowser is the newcomer's path in a real browser: pick
// Alice, ask for Engineering through the modal, switch to Bob, approve,
// see the grant in PostHog and Alice's DM, revoke it, and see it gone.
func TestSandboxInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	b := newBrowser(t)
	sb := startTestSandbox(t, "default")

	b.do("open the sandbox", chromedp.Navigate(sb.url+"/"), chromedp.WaitVisible(chromedp.CSS(`a[href="/as/U0ALICE01"]`)))
	b.do("pick Alice", chromedp.Click(chromedp.CSS(`a[href="/as/U0ALICE01"]`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name="command"]`)))

	// Alice asks through the modal.
	b.do("type the command",
		chromedp.SendKeys(chromedp.CSS(`input[name="command"]`), "/access request Engineering"),
		chromedp.Click(`//button[normalize-space()="Send"]`))
	b.waitFor("the request modal opens", `//form[contains(@class,"modal")]//button[@type="submit"][normalize-space()="Send request"]`)
	b.waitFor("the modal's fields have labels", `//form[contains(@class,"modal")]//label[normalize-space()="Why do you need it?"]`)
	b.do("fill in the modal",
		chromedp.SendKeys(`//label[normalize-space()="Why do you need it?"]/following-sibling::textarea`, "Debugging the checkout funnel (INC-2231)"),
		chromedp.SetValue(`//label[normalize-space()="For how long?"]/following-sibling::select`, "8h"),
		chromedp.Click(`//form[contains(@class,"modal")]//button[normalize-space()="Send request"]`))
	b.do("the modal closes", chromedp.WaitNotPresent(chromedp.CSS(`form.modal`)))
	b.waitFor("Alice is told her request went out", `//div[@id="pane-dm"][contains(., "request #1")]`)

	// Bob approves from his DM.
	b.do("switch to Bob", chromedp.Click(`//nav//a[normalize-space()="Bob Okafor"]`),
		chromedp.WaitVisible(`//div[@id="pane-dm"]//button[normalize-space()="Approve"]`))
	if got := b.text(`#pane-dm`); !strings.Contains(got, "Debugging the checkout funnel (INC-2231)") || !strings.Contains(got, "@Alice Nguyen") {
		t.Errorf("Bob's DM reads %q", got)
	}
	b.do("Bob approves", chromedp.Click(`//div[@id="pane-dm"]//button[normalize-space()="Approve"]`))
	b.waitFor("the grant shows in PostHog", `//div[@id="pane-posthog"]//div[contains(@class,"role")][contains(., "Engineering")]//li[contains(., "Alice Nguyen")]`)
	b.waitFor("the buttons are gone from Bob's copy", `//div[@id="pane-dm"][contains(., "Approved by")][not(.//button[normalize-space()="Approve"])]`)

	// Alice sees the grant.
	b.do("back to Alice", chromedp.Click(`//nav//a[normalize-space()="Alice Nguyen"]`))
	b.waitFor("Alice is told she is a member", `//div[@id="pane-dm"][contains(., "you are now a member of Engineering")]`)
	b.keep("alice-granted")

	// Bob revokes it; it disappears from PostHog.
	b.do("switch to Bob again", chromedp.Click(`//nav//a[normalize-space()="Bob Okafor"]`),
		chromedp.WaitVisible(chromedp.CSS(`input[name="command"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="command"]`), "/access revoke 1 done debugging"),
		chromedp.Click(`//button[normalize-space()="Send"]`))
	b.do("the membership disappears", chromedp.WaitNotPresent(
		`//div[@id="pane-posthog"]//div[contains(@class,"role")][contains(., "Engineering")]//li[contains(., "Alice Nguyen")]`))
	b.waitFor("the audit log records it and verifies", `//div[@id="pane-audit"][contains(., "grant_revoked")][contains(., "audit log intact")]`)
}

// TestSandboxGrantEndsInBrowser: a time-bound grant warns its holder with
// the bot's Extend and I'm done buttons; I'm done asks for confirmation in
// the page, then the membership is gone.
func TestSandboxGrantEndsInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	b := newBrowser(t)
	sb := startTestSandbox(t, "quick-grants")
	const aliceInIR = `//div[@id="pane-posthog"]//div[contains(@class,"role")][contains(., "Incident Response")]//li[contains(., "Alice Nguyen")]`

	b.do("open Alice's page", chromedp.Navigate(sb.url+"/as/"+demoAlice), chromedp.WaitVisible(chromedp.CSS(`input[name="command"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="command"]`), "/access request Incident Response"),
		chromedp.Click(`//button[normalize-space()="Send"]`))
	b.waitFor("the request modal opens", `//form[contains(@class,"modal")]//button[normalize-space()="Send request"]`)
	b.do("fill in the modal",
		chromedp.SendKeys(`//label[normalize-space()="Why do you need it?"]/following-sibling::textarea`, "On call tonight"),
		chromedp.SetValue(`//label[normalize-space()="For how long?"]/following-sibling::select`, "30s"),
		chromedp.Click(`//form[contains(@class,"modal")]//button[normalize-space()="Send request"]`),
		chromedp.WaitNotPresent(chromedp.CSS(`form.modal`)))
	b.do("Bob approves", chromedp.Navigate(sb.url+"/as/"+demoBob),
		chromedp.Click(`//div[@id="pane-dm"]//button[normalize-space()="Approve"]`))
	b.waitFor("the grant shows in PostHog", aliceInIR)

	b.do("back to Alice", chromedp.Navigate(sb.url+"/as/"+demoAlice))
	b.waitFor("Alice is warned, with buttons", `//div[@id="pane-dm"]//button[normalize-space()="Extend"]`)
	b.do("Alice clicks I'm done", chromedp.Click(`//div[@id="pane-dm"]//button[normalize-space()="I'm done"]`))
	b.waitFor("the page asks to confirm", `//div[contains(@class,"confirm")][contains(., "End this access now?")]//button[normalize-space()="End it"]`)
	b.keep("confirm-done")
	b.do("Alice confirms", chromedp.Click(`//div[contains(@class,"confirm")]//button[normalize-space()="End it"]`),
		chromedp.WaitNotPresent(aliceInIR))
	b.waitFor("the audit log records it", `//div[@id="pane-audit"][contains(., "grant_ended_by_holder")][contains(., "audit log intact")]`)
}
