package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
	v1 "k8s.io/api/core/v1"

	"github.com/nodekit-dev/nodekit/agent"
)

// DefaultName is the program's name when Options.Name is empty.
const DefaultName = "nodekit-kubelet"

// Options configure the command line.
type Options struct {
	// Name is the program's name in usage lines and messages (default
	// DefaultName).
	Name string
	// Version is nodekit's version, which --version prints with the
	// Kubernetes release whose kubelet the agent follows; empty means the
	// module version of the build.
	Version string
	// Flags are the daemon's flags, shown by --help under their titles in
	// this order. They are parsed as the kubelet's (--name value,
	// --name=value, a bool alone); each value given is also set again in its
	// Go FlagSet, so that FlagSet.Visit sees it as set.
	Flags []FlagGroup
	// Run runs the daemon: the command line without a command, once Flags
	// are parsed. Nil: the command line prints its help.
	Run func(ctx context.Context) error
}

// FlagGroup is a titled group of the daemon's flags.
type FlagGroup struct {
	Title string
	Flags *flag.FlagSet
}

// NewCommand returns the command tree: the daemon (the root command, with
// o.Flags) and the commands get, describe, logs, exec and top, which ask the
// agent running on this machine through its local socket. Add more commands
// with AddCommand; give the tree its streams with SetIn, SetOut and SetErr.
func NewCommand(o Options) *cobra.Command {
	name := o.Name
	if name == "" {
		name = DefaultName
	}
	var showVersion bool
	root := &cobra.Command{
		Use:   name,
		Short: "nodekit's node agent, and kubectl's verbs for the pods it runs",
		Long: fmt.Sprintf(`%[1]s is nodekit's node agent. Without a command it runs the agent: it
runs the static pods of --pod-manifest-path (and, with --kubeconfig, the pods
an API server binds to the node) on a container runtime it talks CRI to, by
default nodekit's own, embedded in this process. Its flags are the kubelet's
where the kubelet has them; --config reads a KubeletConfiguration file, and
flags given on the command line win over it.

With a command it asks the agent running on this machine, through its local
socket (<root-dir>/kubelet.sock, root only), what kubectl would ask an API
server: %[1]s get pods, describe pod NAME, logs POD, exec -it POD -- sh,
top pods.`, name),
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if showVersion {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), versionString(name, o.Version))
				return err
			}
			if err := recordFlags(cmd.Flags(), o.Flags); err != nil {
				return err
			}
			if o.Run == nil {
				return cmd.Help()
			}
			return o.Run(cmd.Context())
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	for _, g := range o.Flags {
		root.Flags().AddGoFlagSet(g.Flags)
	}
	root.Flags().BoolVar(&showVersion, "version", false, "Print version information and quit")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &usageError{cmd: c, err: err} })
	root.AddCommand(newGetCommand(), newDescribeCommand(), newLogsCommand(), newExecCommand(), newTopCommand())

	defaultHelp := root.HelpFunc()
	root.SetHelpFunc(func(c *cobra.Command, args []string) {
		if c != root {
			defaultHelp(c, args)
			return
		}
		printRootHelp(c, o.Flags)
	})
	return root
}

// recordFlags sets every flag given on the command line again in its Go
// FlagSet: pflag set the value through the same flag.Value, but only
// flag.FlagSet.Set records that it was given.
func recordFlags(fs *pflag.FlagSet, groups []FlagGroup) error {
	for _, g := range groups {
		var err error
		g.Flags.VisitAll(func(f *flag.Flag) {
			if err == nil && fs.Changed(f.Name) {
				err = g.Flags.Set(f.Name, f.Value.String())
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// printRootHelp prints the root's help as the kubelet's (its description,
// usage and flags), with the commands, and the flags by group.
func printRootHelp(c *cobra.Command, groups []FlagGroup) {
	w := c.OutOrStdout()
	cols := 0
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if width, _, err := term.GetSize(int(f.Fd())); err == nil {
			cols = width
		}
	}
	fmt.Fprintf(w, "%s\n\nUsage:\n  %s [flags]\n  %s [command]\n\nAvailable Commands:\n", c.Long, c.Name(), c.Name())
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() || sub.Name() == "help" {
			fmt.Fprintf(w, "  %-11s %s\n", sub.Name(), sub.Short)
		}
	}
	for _, g := range groups {
		fs := pflag.NewFlagSet(g.Title, pflag.ContinueOnError)
		fs.AddGoFlagSet(g.Flags)
		fs.VisitAll(func(f *pflag.Flag) {
			if f.DefValue == "0s" { // a Go duration's zero, which pflag would print
				f.DefValue = ""
			}
		})
		fmt.Fprintf(w, "\n%s:\n%s", g.Title, fs.FlagUsagesWrapped(cols))
	}
	other := pflag.NewFlagSet("other", pflag.ContinueOnError)
	for _, n := range []string{"help", "version"} {
		if f := c.Flags().Lookup(n); f != nil {
			other.AddFlag(f)
		}
	}
	fmt.Fprintf(w, "\nOther flags:\n%s", other.FlagUsagesWrapped(cols))
	fmt.Fprintf(w, "\nUse \"%s [command] --help\" for more information about a command.\n", c.Name())
}

// versionString is what --version prints: nodekit-kubelet v0.1.0 (kubelet
// API v1.37.2), with the commit when the build recorded it.
func versionString(name, version string) string {
	info, ok := debug.ReadBuildInfo()
	if version == "" && ok && info.Main.Version != "" {
		version = info.Main.Version
	}
	if version == "" {
		version = "(devel)"
	}
	if version[0] >= '0' && version[0] <= '9' {
		version = "v" + version
	}
	kube, _, _ := strings.Cut(agent.Version, "-")
	extra := "kubelet API " + kube
	if ok {
		var rev, dirty string
		for _, s := range info.Settings {
			switch {
			case s.Key == "vcs.revision":
				rev = s.Value[:min(12, len(s.Value))]
			case s.Key == "vcs.modified" && s.Value == "true":
				dirty = "-dirty"
			}
		}
		if rev != "" {
			extra = "commit " + rev + dirty + ", " + extra
		}
	}
	return fmt.Sprintf("%s %s (%s)", name, version, extra)
}

// Main runs cmd, a tree from NewCommand, with args, and returns the exit
// code: 0; for exec, the exit code of the command run in the container; else
// 1, after writing the error to cmd's error output as kubectl does
// (`Error from server (NotFound): pods "web" not found`, `error: ...`).
func Main(ctx context.Context, cmd *cobra.Command, args []string) int {
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	return report(cmd.ErrOrStderr(), cmd.Name(), err)
}

func report(w io.Writer, name string, err error) int {
	var exit *exitCodeError
	var api *apiError
	var usage *usageError
	switch {
	case errors.As(err, &exit):
		fmt.Fprintf(w, "command terminated with exit code %d\n", exit.code)
		return exit.code
	case errors.As(err, &api):
		fmt.Fprintln(w, api.Error())
	case errors.As(err, &usage):
		fmt.Fprintf(w, "error: %v\nSee '%s --help' for usage.\n", usage.err, usage.cmd.CommandPath())
	case strings.HasPrefix(err.Error(), "unknown command"):
		fmt.Fprintf(w, "error: %v\nSee '%s --help' for usage.\n", err, name)
	default:
		fmt.Fprintf(w, "error: %v\n", err)
	}
	return 1
}

// usageError is a command line that does not make sense: kubectl prints it
// with where to read the usage.
type usageError struct {
	cmd *cobra.Command
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{cmd: cmd, err: fmt.Errorf(format, args...)}
}

// exitCodeError is the non-zero exit code of a command run by exec.
type exitCodeError struct{ code int }

func (e *exitCodeError) Error() string {
	return fmt.Sprintf("command terminated with exit code %d", e.code)
}

// target is where a command looks: the agent of --root-dir, and the pods
// of -n (every namespace when not given).
type target struct {
	rootDir   string
	namespace string
}

func (t *target) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&t.rootDir, "root-dir", agent.DefaultRootDir, "the agent's --root-dir: its local API is the socket <root-dir>/kubelet.sock")
	cmd.Flags().StringVarP(&t.namespace, "namespace", "n", "", "the namespace of the pods (default: every namespace)")
}

func (t *target) client() *client { return newClient(agent.LocalSocket(t.rootDir)) }

// inNamespace says whether a pod is one the command looks at.
func (t *target) inNamespace(p *v1.Pod) bool {
	return t.namespace == "" || p.Namespace == t.namespace
}

// pod finds the pod name of the target's namespace, or of any namespace
// when none was given and only one has a pod of that name.
func (t *target) pod(ctx context.Context, c *client, name string) (*v1.Pod, error) {
	list, err := c.pods(ctx)
	if err != nil {
		return nil, err
	}
	var found []*v1.Pod
	var namespaces []string
	for i := range list.Items {
		p := &list.Items[i]
		if p.Name == name && t.inNamespace(p) {
			found = append(found, p)
			namespaces = append(namespaces, p.Namespace)
		}
	}
	switch len(found) {
	case 0:
		return nil, podNotFound(name)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("pods named %q are in the namespaces %s: name one with -n", name, strings.Join(namespaces, ", "))
}
