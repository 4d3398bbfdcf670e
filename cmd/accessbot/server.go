package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/accessbot/accessbot/workflow"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// readiness is what /readyz asks.
type readiness interface {
	Ready(ctx context.Context) error
}

// healthRoute registers /healthz (liveness), served on both listeners.
func healthRoute(r *mux.Router) {
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	}).Methods(http.MethodGet, http.MethodHead)
}

// operatorRoutes registers the endpoints of the operator listener: health,
// readiness, metrics and the audit export. They are never on the
// Slack-facing listener, which in HTTP mode is reachable from the internet.
func operatorRoutes(r *mux.Router, db readiness, m *metrics, svc *workflow.Service, auditToken string, log zerolog.Logger) {
	healthRoute(r)
	r.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := db.Ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
		fmt.Fprintln(w, "ready")
	}).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})).Methods(http.MethodGet)
	r.Handle("/audit/export", auditExportHandler(svc, auditToken, log)).Methods(http.MethodGet)
}

// auditExportHandler streams the audit log to a holder of the audit token.
func auditExportHandler(svc *workflow.Service, token string, log zerolog.Logger) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token == "" {
			http.Error(w, "audit export over HTTP is disabled: set ACCESSBOT_AUDIT_TOKEN to enable it", http.StatusNotFound)
			return
		}
		auth := r.Header.Get("Authorization")
		given, ok := strings.CutPrefix(auth, "Bearer ")
		got := sha256.Sum256([]byte(given))
		// Comparing digests keeps the comparison constant-time whatever the length.
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			log.Warn().Str("remote", remoteIP(r)).Msg("audit export refused: bad or missing bearer token")
			w.Header().Set("WWW-Authenticate", `Bearer realm="accessbot audit"`)
			http.Error(w, "a valid bearer token is required", http.StatusUnauthorized)
			return
		}
		q := r.URL.Query()
		format, err := workflow.ParseExportFormat(q.Get("format"))
		if err != nil {
			http.Error(w, workflow.ErrorMessage(err), http.StatusBadRequest)
			return
		}
		filter, err := parseAuditFilter(q.Get("since"), q.Get("until"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		filter.ActionPrefix = q.Get("action") // "review_": the access-review evidence
		name := "accessbot-audit-" + time.Now().UTC().Format("20060102T150405Z")
		if format == workflow.FormatCSV {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			name += ".csv"
		} else {
			w.Header().Set("Content-Type", "application/x-ndjson")
			name += ".jsonl"
		}
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
		n, err := svc.ExportAudit(r.Context(), "http:"+remoteIP(r), "http", filter, format, w)
		if err != nil {
			// Headers are gone once streaming started; the truncated body and
			// the log line are all we can do.
			log.Error().Err(err).Int64("entries", n).Msg("audit export over HTTP failed")
			if n == 0 {
				http.Error(w, "export failed", http.StatusInternalServerError)
			}
			return
		}
		log.Info().Int64("entries", n).Str("format", format).Str("remote", remoteIP(r)).Msg("audit exported over HTTP")
	})
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// recoverer turns a panic in any handler into a 500 and a log line.
func recoverer(log zerolog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error().Interface("panic", p).Str("path", r.URL.Path).Msg("handler panicked")
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}
