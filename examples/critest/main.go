// Command critest runs the CRI conformance suite (critest from cri-tools) against
// nodekit-cri, offline.
//
// critest pulls its test images from gcr.io and registry.k8s.io. This program builds
// local equivalents of them (same repository paths, the users, groups, files, web
// servers and tags the specs check; see README.md), pushes them to an in-memory
// registry on 127.0.0.1, writes a registry configuration mirroring critest's
// registries to it, starts a private nodekit-cri (own root, state, socket, cgroup
// parent, CNI bridge) and runs critest against it. It prints the passed, failed and
// skipped specs from critest's JUnit report and fails when a spec failed or fewer
// than -min-passed passed.
//
//	go run ./examples/critest -bin bin -out _output/critest
//
// Specs that cannot pass offline are skipped by name (see offlineSkips).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// offlineSkips are the specs that cannot pass without the internet, with the reason.
var offlineSkips = []struct{ spec, reason string }{
	{"public image with digest should be pulled and removed",
		"pulls gcr.io/k8s-staging-cri-tools/test-image-digest@sha256:9700f9a2…, pinned to the digest of the upstream manifest, which a locally built image cannot have"},
}

type config struct {
	bin, out, pause, endpoint, focus string
	containerd, runc                 string
	parallel, minPassed              int
	serve, verbose                   bool
	timeout                          time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.bin, "bin", "bin", "directory with nodekit-cri, nodekit-monitor, runc, critest and ginkgo")
	flag.StringVar(&c.out, "out", "_output/critest", "directory for the Debian package cache, the configuration files, logs and reports")
	flag.StringVar(&c.pause, "pause", "_output/images/pause.tar", "the pause image archive (make images)")
	flag.StringVar(&c.endpoint, "runtime-endpoint", "", "test this CRI endpoint instead of starting nodekit-cri (it must use the mirrors; see -serve)")
	flag.StringVar(&c.containerd, "containerd", "", "test a private containerd (this binary, e.g. /usr/bin/containerd) instead of nodekit-cri, for reference")
	flag.StringVar(&c.runc, "containerd-runc", "/usr/sbin/runc", "the runc binary containerd uses")
	flag.StringVar(&c.focus, "focus", "", "run only the specs matching this regular expression")
	flag.IntVar(&c.parallel, "parallel", 2, "parallel ginkgo processes (needs ginkgo in -bin when above 1)")
	flag.IntVar(&c.minPassed, "min-passed", 105, "fail unless at least this many specs pass")
	flag.BoolVar(&c.serve, "serve", false, "only build and serve the images and write the configuration files, until interrupted")
	flag.BoolVar(&c.verbose, "v", false, "stream critest's output (it is always written to OUT/critest.log)")
	flag.DurationVar(&c.timeout, "timeout", time.Hour, "critest's overall time limit")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, log); err != nil {
		fmt.Fprintln(os.Stderr, "critest:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config, log *slog.Logger) (err error) {
	for _, p := range []*string{&c.bin, &c.out, &c.pause} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	scratch, err := os.MkdirTemp("", "nodekit-critest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	// The runtime's state directory lives below: root of a pod's user namespace
	// must be able to search it, as it can /run/nodekit.
	if err := os.Chmod(scratch, 0o711); err != nil {
		return err
	}

	created, err := buildTime()
	if err != nil {
		return err
	}
	start := time.Now()
	images, src, err := buildImages(ctx, buildOptions{
		debs:    &debCache{dir: filepath.Join(c.out, "debs")},
		pause:   c.pause,
		created: created,
		arch:    runtime.GOARCH,
		scratch: scratch,
	})
	if err != nil {
		return fmt.Errorf("build images: %w", err)
	}
	log.Info("built the test images", "images", len(images), "from", src, "duration", time.Since(start).Round(time.Millisecond))

	reg, err := startRegistry()
	if err != nil {
		return err
	}
	defer reg.close()
	if err := reg.push(ctx, images); err != nil {
		return err
	}
	registries := filepath.Join(c.out, "registries.toml")
	imagesFile := filepath.Join(c.out, "test-images.yaml")
	if err := os.WriteFile(registries, []byte(mirrorsConfig(reg.host)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(imagesFile, []byte(testImagesFile(reg.host)), 0o644); err != nil {
		return err
	}
	log.Info("serving the test images", "registry", reg.host, "mirrors", registries, "test-images-file", imagesFile)
	if c.serve {
		for _, ti := range images {
			d, _ := ti.img.Digest()
			fmt.Printf("%s/%s %s\n", reg.host, strings.Join(ti.refs, ","), d)
		}
		<-ctx.Done()
		return nil
	}

	endpoint := c.endpoint
	if endpoint == "" {
		var d *daemon
		if c.containerd != "" {
			d, err = startContainerd(ctx, c.containerd, c.runc, filepath.Join(scratch, "daemon"), reg.host, filepath.Join(c.out, "containerd.log"), log)
		} else {
			d, err = startNodekit(ctx, c.bin, filepath.Join(scratch, "daemon"), registries, filepath.Join(c.out, "nodekit-cri.log"), log)
		}
		if err != nil {
			return err
		}
		defer func() {
			cerr := d.close(context.WithoutCancel(ctx))
			if cerr != nil {
				log.Error("cleanup after the run", "err", cerr)
			}
			if err == nil {
				err = cerr
			}
		}()
		endpoint = d.endpoint()
	}

	report := filepath.Join(c.out, "junit.xml")
	os.Remove(report)
	if err := critest(ctx, c, endpoint, imagesFile, report, log); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: %w", ctx.Err())
		}
		log.Warn("critest failed", "err", err)
	}
	s, err := readSummary(report)
	if err != nil {
		return fmt.Errorf("%w (critest's output is in %s)", err, filepath.Join(c.out, "critest.log"))
	}
	s.explainSkips(skipReason)
	f, err := os.Create(filepath.Join(c.out, "summary.txt"))
	if err != nil {
		return err
	}
	s.write(io.MultiWriter(os.Stdout, f))
	f.Close()
	if s.Failed > 0 || s.Passed < c.minPassed {
		return fmt.Errorf("%d specs failed, %d passed (want 0 failed and at least %d passed); details in %s", s.Failed, s.Passed, c.minPassed, c.out)
	}
	return nil
}

// critest runs the suite against endpoint, writing its output to OUT/critest.log
// and its JUnit report to report.
func critest(ctx context.Context, c config, endpoint, imagesFile, report string, log *slog.Logger) error {
	args := []string{
		"-runtime-endpoint", endpoint,
		"-image-endpoint", endpoint,
		"-test-images-file", imagesFile,
		"-ginkgo.skip", skipRegexp(),
		"-ginkgo.junit-report", report,
		"-ginkgo.no-color",
		"-ginkgo.timeout", c.timeout.String(),
	}
	if c.parallel > 1 {
		// With -parallel 1 ginkgo takes the flag for go test's own and refuses it.
		args = append(args, "-parallel", strconv.Itoa(c.parallel))
	}
	if c.focus != "" {
		args = append(args, "-ginkgo.focus", c.focus)
	}
	logPath := filepath.Join(c.out, "critest.log")
	lf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer lf.Close()
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "critest"), args...)
	cmd.Dir = c.out
	groupCommand(cmd)
	// critest makes a temp dir of its own (cri-test*) and never removes it: give it
	// a private TMPDIR that goes when it is done.
	tmp, err := os.MkdirTemp("", "nodekit-critest-tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil { // it holds pod log directories too
		return err
	}
	cmd.Env = append(os.Environ(), "PATH="+c.bin+string(os.PathListSeparator)+os.Getenv("PATH"), "TMPDIR="+tmp)
	cmd.Stdout, cmd.Stderr = lf, lf
	if c.verbose {
		cmd.Stdout, cmd.Stderr = io.MultiWriter(lf, os.Stdout), io.MultiWriter(lf, os.Stderr)
	}
	before := sharedMemory()
	defer removeSharedMemory(before, log)
	log.Info("running critest", "args", strings.Join(args, " "), "log", logPath)
	start := time.Now()
	err = cmd.Run()
	log.Info("critest finished", "duration", time.Since(start).Round(time.Second), "err", err)
	return err
}

// skipRegexp matches the offline skips.
func skipRegexp() string {
	var parts []string
	for _, s := range offlineSkips {
		parts = append(parts, regexp.QuoteMeta(s.spec))
	}
	slices.Sort(parts)
	return strings.Join(parts, "|")
}

// skipReason says why the runner skipped a spec.
func skipReason(name string) string {
	for _, s := range offlineSkips {
		if strings.Contains(name, s.spec) {
			return "skipped offline: " + s.reason
		}
	}
	if strings.Contains(name, "benchmark") {
		return "benchmark: critest runs these only with -benchmark"
	}
	return ""
}

// buildTime is the images' timestamp: SOURCE_DATE_EPOCH, else 2026-01-01.
func buildTime() (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), nil
}
