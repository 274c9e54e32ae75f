package main

import (
	"fmt"
	"time"
)

// ms formats a duration in milliseconds: two decimals below 10 ms, one above.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	if v < 10 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// mib formats KiB as MiB with one decimal.
func mib(kib float64) string { return fmt.Sprintf("%.1f", kib/1024) }
