package posthog

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestBudgetServesPeopleBeforeBackgroundWork(t *testing.T) {
	b := NewBudget(Window{Limit: 10, Per: 400 * time.Millisecond})
	ctx := context.Background()
	// Background work may fill half the window, no more.
	for i := 0; i < 5; i++ {
		if err := b.Wait(ctx, PriorityBackground); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	var busy *BusyError
	if err := b.Wait(short, PriorityBackground); !errors.As(err, &busy) {
		t.Fatalf("a 6th background call: %v, want BusyError", err)
	}
	// People still get the other half at once.
	start := time.Now()
	for i := 0; i < 5; i++ {
		if err := b.Wait(short, PriorityInteractive); err != nil {
			t.Fatalf("interactive call %d: %v", i, err)
		}
	}
	if d := time.Since(start); d > 40*time.Millisecond {
		t.Errorf("interactive calls waited %v behind background work", d)
	}
	if n := b.Used(time.Minute); n != 10 {
		t.Errorf("used %d", n)
	}
}

func TestBudgetOrdersWaitersByPriority(t *testing.T) {
	b := NewBudget(Window{Limit: 1, Per: 100 * time.Millisecond})
	ctx := context.Background()
	if err := b.Wait(ctx, PriorityInteractive); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []Priority
	var wg sync.WaitGroup
	for _, p := range []Priority{PriorityBackground, PriorityExecution, PriorityInteractive} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Wait(ctx, p); err != nil {
				t.Error(err)
			}
			mu.Lock()
			order = append(order, p)
			mu.Unlock()
		}()
		time.Sleep(10 * time.Millisecond) // background arrives first, interactive last
	}
	wg.Wait()
	if order[0] != PriorityInteractive || order[1] != PriorityExecution || order[2] != PriorityBackground {
		t.Fatalf("served %v, want interactive, execution, background", order)
	}
}

func TestBudgetPauseHoldsEveryone(t *testing.T) {
	b := NewBudget(Window{Limit: 100, Per: time.Minute})
	b.Pause(150 * time.Millisecond)
	start := time.Now()
	if err := b.Wait(context.Background(), PriorityInteractive); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 140*time.Millisecond {
		t.Fatalf("waited %v through a 150ms pause", d)
	}
}

func TestBudgetHourWindowCounts(t *testing.T) {
	b := NewBudget(Window{Limit: 100, Per: time.Minute}, Window{Limit: 3, Per: time.Hour})
	for i := 0; i < 3; i++ {
		if err := b.Wait(context.Background(), PriorityInteractive); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var busy *BusyError
	if err := b.Wait(ctx, PriorityInteractive); !errors.As(err, &busy) || busy.RetryAfter < 59*time.Minute {
		t.Fatalf("4th call in the hour: %v", err)
	}
}
