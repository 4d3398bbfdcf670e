package workflow

import "context"

type jobKey struct{}

// withJob returns ctx carrying the id of the job being run with it.
func withJob(ctx context.Context, id int64) context.Context {
	return context.WithValue(ctx, jobKey{}, id)
}

// JobFrom returns the id of the job whose run ctx belongs to, or 0 outside
// a job. A job retried later keeps its id, so an adapter can recognise it
// coming back: a notifier that sent a job away to wait for its turn under
// Slack's limit keeps that turn for it.
func JobFrom(ctx context.Context) int64 {
	id, _ := ctx.Value(jobKey{}).(int64)
	return id
}
