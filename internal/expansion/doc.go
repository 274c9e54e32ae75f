// Package expansion expands $(NAME) references the way the kubelet does in a
// container's env values, command and args, and in exec probe commands: a
// known name is replaced by its value (once: values are not expanded again),
// an unknown one is left as written, $$ is a literal $, and a $ that starts no
// reference stays as it is. The agent and the probes share it.
package expansion
