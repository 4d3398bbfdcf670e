package main

import (
	"context"
	"strconv"
	"time"

	"github.com/accessbot/accessbot/posthog"
	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/workflow"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are what an operator alerts on. Counters and histograms are fed
// by hooks in the bot, the PostHog client and the workers; queue depths and
// request states are read from the database at scrape time, so every
// replica reports the same shared truth.
type metrics struct {
	registry       *prometheus.Registry
	slackRequests  *prometheus.CounterVec
	slackAck       *prometheus.HistogramVec
	posthogCalls   *prometheus.CounterVec
	posthogLatency *prometheus.HistogramVec
	jobRuns        *prometheus.CounterVec
}

func newMetrics(db *store.DB) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		slackRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "accessbot_slack_requests_total",
			Help: "Requests from Slack by type (command, block_actions, view_submission, options, event) and outcome (ok, error, rejected).",
		}, []string{"type", "outcome"}),
		slackAck: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "accessbot_slack_ack_seconds",
			Help:    "Time from receiving a Slack request to acknowledging it; Slack gives up after 3 seconds.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2, 3, 5},
		}, []string{"type"}),
		posthogCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "accessbot_posthog_calls_total",
			Help: "HTTP attempts against PostHog by endpoint and status (0 = network error).",
		}, []string{"endpoint", "status"}),
		posthogLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "accessbot_posthog_call_seconds",
			Help:    "Latency of HTTP attempts against PostHog by endpoint.",
			Buckets: prometheus.DefBuckets,
		}, []string{"endpoint"}),
		jobRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "accessbot_job_runs_total",
			Help: "Job runs by kind (execute, revoke, notify) and outcome (done, retry, failed, lost).",
		}, []string{"kind", "outcome"}),
	}
	m.registry.MustRegister(m.slackRequests, m.slackAck, m.posthogCalls, m.posthogLatency, m.jobRuns,
		&storeCollector{db: db}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "accessbot_build_info", Help: "Always 1; the version label names the build.",
			ConstLabels: prometheus.Labels{"version": buildVersion()}}, func() float64 { return 1 }))
	return m
}

// observeSlack is the bot's metrics hook.
func (m *metrics) observeSlack(kind, outcome string, ack time.Duration) {
	m.slackRequests.WithLabelValues(kind, outcome).Inc()
	m.slackAck.WithLabelValues(kind).Observe(ack.Seconds())
}

// observePostHog is the PostHog client's metrics hook.
func (m *metrics) observePostHog(c posthog.CallInfo) {
	m.posthogCalls.WithLabelValues(c.Endpoint, strconv.Itoa(c.Status)).Inc()
	m.posthogLatency.WithLabelValues(c.Endpoint).Observe(c.Duration.Seconds())
}

// observeJob is the workers' metrics hook.
func (m *metrics) observeJob(kind workflow.JobKind, outcome string) {
	m.jobRuns.WithLabelValues(string(kind), outcome).Inc()
}

var (
	requestsDesc = prometheus.NewDesc("accessbot_requests", "Access requests by state.", []string{"state"}, nil)
	jobsDesc     = prometheus.NewDesc("accessbot_jobs", "Jobs by queue state: queued (waiting or lease ended), running, failed (given up).", []string{"state"}, nil)
	auditDesc    = prometheus.NewDesc("accessbot_audit_entries", "Entries in the audit log (the chain head's sequence number).", nil, nil)
	overdueDesc  = prometheus.NewDesc("accessbot_revocations_overdue", "Grants still in force although their revocation failed and is being retried (alert when above 0).", nil, nil)
	scrapeDesc   = prometheus.NewDesc("accessbot_database_scrape_ok", "1 when the database answered the metrics queries.", nil, nil)
)

// storeCollector reads gauges from the database when scraped.
type storeCollector struct{ db *store.DB }

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- requestsDesc
	ch <- jobsDesc
	ch <- auditDesc
	ch <- overdueDesc
	ch <- scrapeDesc
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ok := 1.0
	if states, err := c.db.CountRequestsByState(ctx); err == nil {
		for _, s := range workflow.AllStates {
			ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.GaugeValue, float64(states[s]), string(s))
		}
	} else {
		ok = 0
	}
	if jobs, err := c.db.JobCounts(ctx, time.Now().UTC()); err == nil {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(jobs.Queued), "queued")
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(jobs.Running), "running")
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(jobs.Failed), "failed")
	} else {
		ok = 0
	}
	if n, err := c.db.CountOverdueRevocations(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(overdueDesc, prometheus.GaugeValue, float64(n))
	} else {
		ok = 0
	}
	if seq, _, err := c.db.AuditHead(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(auditDesc, prometheus.GaugeValue, float64(seq))
	} else {
		ok = 0
	}
	ch <- prometheus.MustNewConstMetric(scrapeDesc, prometheus.GaugeValue, ok)
}
