package workflow

import "time"

// JobKind names what a job does.
type JobKind string

// Job kinds.
const (
	JobExecute JobKind = "execute" // carry out an approved request against PostHog
	JobRevoke  JobKind = "revoke"  // take away a completed time-bound grant
	JobNotify  JobKind = "notify"  // deliver one Event to the Notifier
	// JobNotifyRequester tells the requester what happened to their request
	// (the DM only). It is its own kind so the requester's DM never waits
	// behind the approvers' copies (rate-limited chat.update calls).
	JobNotifyRequester JobKind = "notify_requester"
)

// NotifyKinds are the job kinds that deliver notifications, each in order
// per request (an older one of the same kind and request holds the newer
// back). Workers that claim only these never wait behind PostHog work.
var NotifyKinds = []JobKind{JobNotify, JobNotifyRequester}

// Job is durable work written in the same transaction as the state change
// that needs it. A worker claims it with a lease; if the worker dies, the
// lease ends and another worker claims it again.
type Job struct {
	ID         int64
	Kind       JobKind
	RequestID  int64  // 0 when not about one request
	Payload    string // JSON, kind specific
	Attempts   int    // claims so far, including the current one
	RunAt      time.Time
	LeaseToken string // set by ClaimJob; finishing calls must present it
	LeaseUntil time.Time
	LastError  string
	CreatedAt  time.Time
}

// JobCounts is how many jobs are in each queue state, for metrics.
type JobCounts struct {
	Queued  int64 // waiting, including those whose lease ended
	Running int64 // claimed under a live lease
	Failed  int64 // given up
}
