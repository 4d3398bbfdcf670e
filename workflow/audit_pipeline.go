package workflow

import "sync"

// pipelineBatch is how many entries travel between the goroutines at once.
const pipelineBatch = 256

// pipeline runs produce on the calling goroutine and consume on another, in
// order, so reading rows from the database and encoding or hashing them use
// two cores. produce's fn copies each entry (its strings are immutable, so
// a struct copy is safe to keep even when the producer reuses its entry).
// The first error of either side stops both and is returned; memory stays
// at three batches however long the walk.
func pipeline(produce func(fn func(e *AuditEntry) error) error, consume func(e *AuditEntry) error) error {
	full := make(chan []AuditEntry, 2)
	free := make(chan []AuditEntry, 3)
	for range 3 {
		free <- make([]AuditEntry, 0, pipelineBatch)
	}
	stop := make(chan struct{})
	var consumeErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := range full {
			if consumeErr == nil {
				for i := range b {
					if err := consume(&b[i]); err != nil {
						consumeErr = err
						close(stop)
						break
					}
				}
			}
			free <- b[:0]
		}
	}()
	batch := <-free
	send := func() bool {
		select {
		case full <- batch:
		case <-stop:
			return false
		}
		select {
		case batch = <-free:
			return true
		case <-stop:
			return false
		}
	}
	errStopped := errPipelineStopped
	err := produce(func(e *AuditEntry) error {
		batch = append(batch, *e)
		if len(batch) == pipelineBatch && !send() {
			return errStopped
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		send()
	}
	close(full)
	wg.Wait()
	if consumeErr != nil {
		return consumeErr
	}
	if err == errStopped {
		return nil
	}
	return err
}

type pipelineError string

func (e pipelineError) Error() string { return string(e) }

// errPipelineStopped ends the producer when the consumer failed.
const errPipelineStopped = pipelineError("pipeline stopped")
