package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/workflow"
)

// TestClaimLooksUpOlderNotificationsByIndex: SQLite's plan for a claim
// finds a candidate's older notifications of the same request through that
// kind's partial index (request_id, id), never by searching jobs_due, which
// would scan every queued job for every candidate while holding the only
// write lock (BenchmarkClaimJobBehindBacklog: 271 ms a claim behind 1,000
// queued notifications, against 1.5 ms).
func TestClaimLooksUpOlderNotificationsByIndex(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "plan.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, kinds := range [][]workflow.JobKind{nil, {workflow.JobNotifyRequester}, {workflow.JobNotify}, {workflow.JobExecute, workflow.JobRevoke}} {
		q, args := claimQuery(DialectSQLite, kinds, time.Now(), time.Minute, "token")
		var plan []struct {
			ID      int    `bun:"id"`
			Parent  int    `bun:"parent"`
			NotUsed int    `bun:"notused"`
			Detail  string `bun:"detail"`
		}
		if err := db.db.NewRaw("EXPLAIN QUERY PLAN "+q, args...).Scan(ctx, &plan); err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, p := range plan {
			lines = append(lines, p.Detail)
		}
		text := strings.Join(lines, "\n")
		for _, want := range []string{"SEARCH o USING INDEX jobs_notify (request_id=? AND id<?)", "SEARCH o USING INDEX jobs_notify_requester (request_id=? AND id<?)"} {
			if !strings.Contains(text, want) {
				t.Errorf("kinds %v: plan lacks %q:\n%s", kinds, want, text)
			}
		}
		if strings.Contains(text, "SEARCH o USING INDEX jobs_due") || strings.Contains(text, "SCAN o") {
			t.Errorf("kinds %v: older notifications found by scanning:\n%s", kinds, text)
		}
	}
}
