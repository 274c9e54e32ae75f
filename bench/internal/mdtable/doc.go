// Package mdtable prints the benchmarks' results as Markdown tables, aligned
// so that they read as well in a terminal as in bench/README.md.
package mdtable
