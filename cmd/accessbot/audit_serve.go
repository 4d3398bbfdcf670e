package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/auditstream"
	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/workflow"
)

// validateAudit checks the audit anchors' settings.
func (c config) validateAudit() error {
	switch {
	case c.AuditCheckpointInterval < time.Second:
		return fmt.Errorf("ACCESSBOT_AUDIT_CHECKPOINT_INTERVAL must be at least 1s, got %s", c.AuditCheckpointInterval)
	case c.AuditWebhookURL != "" && (len(c.AuditWebhookSecret) == 0 || c.AuditWebhookSecret[0] == ""):
		return errors.New("ACCESSBOT_AUDIT_WEBHOOK_SECRET is required with ACCESSBOT_AUDIT_WEBHOOK_URL (it signs every POST)")
	case c.AuditWebhookFormat != auditstream.FormatJSONL && c.AuditWebhookFormat != auditstream.FormatSplunkHEC:
		return fmt.Errorf("ACCESSBOT_AUDIT_WEBHOOK_FORMAT must be %s or %s, got %q", auditstream.FormatJSONL, auditstream.FormatSplunkHEC, c.AuditWebhookFormat)
	}
	return nil
}

// auditAnchors keep the audit log provable outside the database: signed
// checkpoints (stored, posted to Slack, streamed) and the SIEM stream.
type auditAnchors struct {
	log          zerolog.Logger
	checkpointer *workflow.Checkpointer // nil without a signing key
	interval     time.Duration
	sender       *auditstream.Sender // nil without a webhook
}

func newAuditAnchors(cfg config, db *store.DB, api *slack.Client, m *metrics, log zerolog.Logger) (*auditAnchors, error) {
	a := &auditAnchors{log: log.With().Str("component", "audit").Logger(), interval: cfg.AuditCheckpointInterval}
	if cfg.AuditSigningKey == "" {
		a.log.Warn().Msg("ACCESSBOT_AUDIT_SIGNING_KEY is not set: audit checkpoints are not signed, so someone who can " +
			"write the database could rewrite the audit log undetected (make a key with 'accessbot audit keygen')")
	} else {
		key, err := readSigningKey(cfg.AuditSigningKey)
		if err != nil {
			return nil, fmt.Errorf("ACCESSBOT_AUDIT_SIGNING_KEY: %w", err)
		}
		a.checkpointer = &workflow.Checkpointer{Store: db, Key: key, Logger: a.log}
		if cfg.AuditChannel != "" {
			a.checkpointer.Publish = slackCheckpointPublisher(api, cfg.AuditChannel)
		}
		a.log.Info().Str("key_id", workflow.KeyID(key.Public().(ed25519.PublicKey))).Dur("interval", cfg.AuditCheckpointInterval).
			Str("channel", cfg.AuditChannel).Msg("audit checkpoints will be signed")
	}
	if cfg.AuditWebhookURL != "" {
		obs := newStreamMetrics(m.registry, db)
		s, err := auditstream.New(auditstream.Config{
			URL:     cfg.AuditWebhookURL,
			Secrets: cfg.AuditWebhookSecret,
			Format:  cfg.AuditWebhookFormat,
			Store:   db,
			Logger:  a.log,
			Observe: obs.observe,
		})
		if err != nil {
			return nil, err
		}
		a.sender = s
	}
	return a, nil
}

// slackCheckpointPublisher posts each checkpoint to channel: a sentence for
// people and the JSON line that `audit verify --checkpoint` reads.
func slackCheckpointPublisher(api *slack.Client, channel string) func(ctx context.Context, c workflow.Checkpoint) error {
	return func(ctx context.Context, c workflow.Checkpoint) error {
		text := fmt.Sprintf("Audit checkpoint: entry %d of the audit log has hash `%s…` (signed by key %s). "+
			"Anyone can later prove the log still holds it: save the line below to a file and run "+
			"`accessbot audit verify --public-key KEY.pub --checkpoint FILE`.\n```%s```", c.Seq, c.Hash[:16], c.KeyID, c.JSON())
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, _, err := api.PostMessageContext(ctx, channel, slack.MsgOptionText(text, false)); err != nil {
			return fmt.Errorf("post audit checkpoint to ACCESSBOT_AUDIT_CHANNEL: %w", err)
		}
		return nil
	}
}

// run signs checkpoints and streams the log until ctx ends.
func (a *auditAnchors) run(ctx context.Context) {
	var wg sync.WaitGroup
	if a.checkpointer != nil {
		wg.Add(1)
		go func() { defer wg.Done(); a.checkpointer.Run(ctx, a.interval) }()
	}
	if a.sender != nil {
		wg.Add(1)
		go func() { defer wg.Done(); a.sender.Run(ctx) }()
	}
	wg.Wait()
}

// shutdown signs the last checkpoint, covering everything this process
// wrote, and offers it to the stream once (if that fails, the next start
// sends it: the cursor is in the database).
func (a *auditAnchors) shutdown(ctx context.Context) {
	if a.checkpointer != nil {
		if _, _, err := a.checkpointer.Sign(ctx); err != nil {
			a.log.Error().Err(err).Msg("final audit checkpoint failed")
		}
	}
	if a.sender != nil {
		if err := a.sender.Flush(ctx); err != nil {
			a.log.Warn().Err(err).Msg("audit webhook: entries left undelivered at shutdown are sent after restart")
		}
	}
}

// streamMetrics are the SIEM stream's metrics.
type streamMetrics struct {
	delivered prometheus.Counter
	failures  prometheus.Counter
}

// newStreamMetrics registers the stream's counters and its lag, read from
// the database at scrape time so every replica reports the same.
func newStreamMetrics(reg *prometheus.Registry, db *store.DB) *streamMetrics {
	m := &streamMetrics{
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "accessbot_audit_webhook_delivered_total",
			Help: "Audit entries the SIEM webhook acknowledged (from this process)."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "accessbot_audit_webhook_failures_total",
			Help: "Failed POSTs to the SIEM webhook (each is retried with backoff)."}),
	}
	lag := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "accessbot_audit_webhook_lag_entries",
		Help: "Audit entries not yet acknowledged by the SIEM webhook (-1 when the database did not answer)."}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		head, _, err := db.AuditHead(ctx)
		if err != nil {
			return -1
		}
		cursor, err := db.AuditStreamCursor(ctx, auditstream.StreamName)
		if err != nil {
			return -1
		}
		return float64(head - cursor)
	})
	reg.MustRegister(m.delivered, m.failures, lag)
	return m
}

func (m *streamMetrics) observe(delivered int, err error) {
	m.delivered.Add(float64(delivered))
	if err != nil {
		m.failures.Inc()
	}
}
