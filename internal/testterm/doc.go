// Package testterm runs a command on a new pseudo-terminal for a test, as a
// user at a terminal would (kubectl exec -it, crictl exec -t), and returns
// what the terminal showed.
package testterm
