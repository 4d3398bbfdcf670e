package main

import (
	"context"
	"fmt"
)

func runServe(_ context.Context, c *cli, _ []string) int {
	fmt.Fprintln(c.stderr, "accessbot serve: not built yet (issue 5: ship it)")
	return 3
}

func runDemo(_ context.Context, c *cli, _ []string) int {
	fmt.Fprintln(c.stderr, "accessbot demo: not built yet (issue 5: ship it)")
	return 3
}
