// Package workflow is the core of accessbot: access requests, their state
// machine, the policy that says who decides, durable execution of approved
// requests, the scheduler and the tamper-evident audit log.
//
// It imports no adapter. It declares the small interfaces it needs (Store,
// Directory, Users, Notifier, Clock) and the adapters in store/, posthog
// wiring and bot/ implement them.
package workflow
