package workflow

import "context"

// Priority says who waits on a call to the Directory, so an adapter with a
// shared request budget can serve people first.
type Priority int

// Priorities, highest first.
const (
	// PriorityInteractive: a person waits (opening or submitting a form).
	PriorityInteractive Priority = iota
	// PriorityExecution: carrying out decisions (adding, removing, revoking).
	PriorityExecution
	// PriorityBackground: reconciliation and cache refreshes.
	PriorityBackground
)

type priorityKey struct{}

// WithPriority returns ctx carrying p for the Directory calls made with it.
func WithPriority(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, p)
}

// PriorityFrom returns the priority ctx carries (PriorityExecution if none).
func PriorityFrom(ctx context.Context) Priority {
	if p, ok := ctx.Value(priorityKey{}).(Priority); ok {
		return p
	}
	return PriorityExecution
}
