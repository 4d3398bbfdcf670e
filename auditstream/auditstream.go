// Package auditstream sends the audit log to a SIEM over HTTPS: every entry,
// checkpoints included, in order, at least once, from a cursor kept in the
// database so restarts and replicas neither lose nor reorder entries. One
// process at a time sends (a lease row); each POST carries a batch and is
// signed like Stripe's webhooks:
//
//	X-Accessbot-Signature: t=UNIX,v1=HEX[,v1=HEX…]
//
// where HEX is the HMAC-SHA256, keyed with a secret, of "UNIX.BODY". The
// first v1 is made with the first secret; during a rotation the older
// secrets add one v1 each, so a receiver still holding an old secret keeps
// verifying.
package auditstream

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/accessbot/accessbot/workflow"
)

// Formats of the stream body.
const (
	FormatJSONL     = "jsonl"      // one export line (as `audit export --format jsonl`) per entry
	FormatSplunkHEC = "splunk_hec" // one Splunk HTTP Event Collector event per entry
)

// SignatureHeader carries the body's signature.
const SignatureHeader = "X-Accessbot-Signature"

// StreamName is the stream's cursor row in the database.
const StreamName = "webhook"

// Store is what the sender needs from the database.
type Store interface {
	LeaseAuditStream(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (cursor int64, ok bool, err error)
	AdvanceAuditStream(ctx context.Context, name, holder string, from, to int64, now time.Time) error
	ReleaseAuditStream(ctx context.Context, name, holder string) error
	AuditEntriesAfter(ctx context.Context, after int64, limit int, fn func(e *workflow.AuditEntry) error) error
}

// Config configures a Sender. URL, Secrets and Store are required.
type Config struct {
	URL     string   // where batches are POSTed; a Splunk HEC token may be given as the URL's password
	Secrets []string // the first signs; older ones add signatures during a rotation
	Format  string   // FormatJSONL (default) or FormatSplunkHEC
	Store   Store
	Client  *http.Client // default: 10 s timeout
	Logger  zerolog.Logger

	Batch      int           // entries per POST; default 100
	Poll       time.Duration // how often an idle sender looks for new entries; default 1 s
	Lease      time.Duration // how long the sending lease lasts between renewals; default 30 s
	BackoffMin time.Duration // first retry delay after a failed POST; default 1 s
	BackoffMax time.Duration // longest retry delay; default 1 min

	// Observe, when set, is told after each attempt: how many entries were
	// delivered (0 on failure) and the error. (The lag behind the head of
	// the log is read from the database when metrics are scraped.)
	Observe func(delivered int, err error)
}

// Sender delivers the audit log to the webhook.
type Sender struct {
	cfg      Config
	url      string
	hecToken string
	holder   string
	now      func() time.Time
	scratch  []byte
}

// New checks cfg and returns a Sender.
func New(cfg Config) (*Sender, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("ACCESSBOT_AUDIT_WEBHOOK_URL must be an http(s) URL")
	}
	if len(cfg.Secrets) == 0 || cfg.Secrets[0] == "" {
		return nil, errors.New("ACCESSBOT_AUDIT_WEBHOOK_SECRET is required with ACCESSBOT_AUDIT_WEBHOOK_URL")
	}
	switch cfg.Format {
	case "":
		cfg.Format = FormatJSONL
	case FormatJSONL, FormatSplunkHEC:
	default:
		return nil, fmt.Errorf("ACCESSBOT_AUDIT_WEBHOOK_FORMAT must be %s or %s, got %q", FormatJSONL, FormatSplunkHEC, cfg.Format)
	}
	s := &Sender{cfg: cfg, now: func() time.Time { return time.Now().UTC() }}
	if pw, ok := u.User.Password(); ok {
		s.hecToken = pw
		u.User = nil
	}
	s.url = u.String()
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&s.cfg.Poll, time.Second)
	def(&s.cfg.Lease, 30*time.Second)
	def(&s.cfg.BackoffMin, time.Second)
	def(&s.cfg.BackoffMax, time.Minute)
	if s.cfg.Batch <= 0 {
		s.cfg.Batch = 100
	}
	if s.cfg.Client == nil {
		s.cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	s.holder = hex.EncodeToString(b)
	return s, nil
}

// Run sends until ctx ends. Only the process holding the lease sends; the
// others check every Poll whether it lapsed. A failed POST is retried with
// doubling delays up to BackoffMax, holding the lease meanwhile.
func (s *Sender) Run(ctx context.Context) {
	defer s.release(ctx)
	failures := 0
	for ctx.Err() == nil {
		n, err := s.SendOnce(ctx)
		wait := s.cfg.Poll
		switch {
		case err != nil && ctx.Err() == nil:
			failures++
			wait = min(s.cfg.BackoffMin<<min(failures-1, 20), s.cfg.BackoffMax)
			s.cfg.Logger.Warn().Err(err).Int("failures", failures).Dur("retry_in", wait).Msg("audit webhook delivery failed")
		case err == nil:
			failures = 0
			if n == s.cfg.Batch {
				wait = 0 // more is waiting
			}
		}
		if wait == 0 {
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// Flush delivers what is pending until nothing is left, an attempt fails or
// ctx ends, then gives up the lease so another process takes over at once.
// For shutdown: what it cannot deliver, the next holder of the lease will.
func (s *Sender) Flush(ctx context.Context) error {
	defer s.release(ctx)
	for {
		n, err := s.SendOnce(ctx)
		if err != nil || n == 0 {
			return err
		}
	}
}

func (s *Sender) release(ctx context.Context) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := s.cfg.Store.ReleaseAuditStream(rctx, StreamName, s.holder); err != nil {
		s.cfg.Logger.Warn().Err(err).Msg("audit webhook: releasing the lease failed; another process takes over when it expires")
	}
}

// SendOnce takes the lease and delivers one batch after the cursor. It
// returns how many entries were delivered (0 when another process holds the
// lease or nothing is new).
func (s *Sender) SendOnce(ctx context.Context) (int, error) {
	cursor, ok, err := s.cfg.Store.LeaseAuditStream(ctx, StreamName, s.holder, s.now(), s.cfg.Lease)
	if err != nil || !ok {
		return 0, err
	}
	var body bytes.Buffer
	var n int
	last := cursor
	err = s.cfg.Store.AuditEntriesAfter(ctx, cursor, s.cfg.Batch, func(e *workflow.AuditEntry) error {
		n++
		last = e.Seq
		return s.encode(&body, e)
	})
	if err == nil && n > 0 {
		err = s.post(ctx, body.Bytes())
		if err == nil {
			// The receiver has the batch: record it even if we are being
			// stopped right now, or the next sender repeats it for nothing.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			err = s.cfg.Store.AdvanceAuditStream(actx, StreamName, s.holder, cursor, last, s.now())
			cancel()
		}
	}
	if err != nil {
		n = 0
	}
	if s.cfg.Observe != nil {
		s.cfg.Observe(n, err)
	}
	return n, err
}

func (s *Sender) encode(w *bytes.Buffer, e *workflow.AuditEntry) error {
	s.scratch = s.scratch[:0]
	if s.cfg.Format == FormatSplunkHEC {
		s.scratch = append(s.scratch, `{"time":`...)
		s.scratch = strconv.AppendFloat(s.scratch, float64(e.Time.UnixMicro())/1e6, 'f', 6, 64)
		s.scratch = append(s.scratch, `,"source":"accessbot","sourcetype":"accessbot:audit","event":`...)
		s.scratch = append(workflow.AppendAuditJSON(s.scratch, e), '}')
	} else {
		s.scratch = workflow.AppendAuditJSON(s.scratch, e)
	}
	w.Write(s.scratch)
	return w.WriteByte('\n')
}

// Sign returns the signature header value for body at time t.
func Sign(secrets []string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	b.WriteString("t=" + ts)
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(ts))
		mac.Write([]byte{'.'})
		mac.Write(body)
		b.WriteString(",v1=" + hex.EncodeToString(mac.Sum(nil)))
	}
	return b.String()
}

// Verify checks a signature header against body with secret: some v1 must
// match, and t must be within tolerance of now. It is what a receiver does.
func Verify(header string, body []byte, secret string, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("signature has no timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("signature timestamp is %v away from now", d.Round(time.Second))
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range sigs {
		got, err := hex.DecodeString(s)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no signature matches")
}

func (s *Sender) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("audit webhook: %w", err)
	}
	if s.cfg.Format == FormatSplunkHEC {
		req.Header.Set("Content-Type", "application/json")
		if s.hecToken != "" {
			req.Header.Set("Authorization", "Splunk "+s.hecToken)
		}
	} else {
		req.Header.Set("Content-Type", "application/x-ndjson")
	}
	req.Header.Set("User-Agent", "accessbot-audit-stream")
	req.Header.Set(SignatureHeader, Sign(s.cfg.Secrets, s.now(), body))
	res, err := s.cfg.Client.Do(req)
	if err != nil {
		// The URL may carry a token: say only where it went wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("audit webhook POST: %w", err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("audit webhook POST: HTTP %d", res.StatusCode)
	}
	return nil
}
