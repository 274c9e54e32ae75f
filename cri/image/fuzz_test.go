package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	toml "github.com/pelletier/go-toml/v2"
)

// Placeholders a fuzzed index or manifest uses for the digests of the other
// fuzzed blobs (a fuzzer cannot compute SHA-256): "@MANIFEST@" in an index
// becomes the manifest's digest, "@CONFIG@" in a manifest the config's.
const (
	phManifest = "@MANIFEST@"
	phConfig   = "@CONFIG@"
)

var fuzzPlatform = v1.Platform{OS: "linux", Architecture: "amd64"}

func digestOf(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// fuzzBlobs fills in the placeholders and returns the index, manifest and
// config with their digests.
func fuzzBlobs(index, manifest, config []byte) (ib, mb, cb []byte, id, md, cd v1.Hash) {
	cd = digestOf(config)
	mb = bytes.ReplaceAll(manifest, []byte(phConfig), []byte(cd.String()))
	md = digestOf(mb)
	ib = bytes.ReplaceAll(index, []byte(phManifest), []byte(md.String()))
	return ib, mb, config, digestOf(ib), md, cd
}

// memFetcher serves blobs from memory by digest.
type memFetcher map[string][]byte

func (m memFetcher) get(d v1.Hash) ([]byte, error) {
	b, ok := m[d.String()]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return b, nil
}
func (m memFetcher) manifest(_ context.Context, d v1.Hash) ([]byte, error) { return m.get(d) }
func (m memFetcher) blob(_ context.Context, d v1.Hash) ([]byte, error)     { return m.get(d) }
func (m memFetcher) open(_ context.Context, d v1.Hash) (io.ReadCloser, error) {
	b, err := m.get(d)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// The descriptor media types a top-level manifest may be announced with.
var fuzzMediaTypes = []types.MediaType{"", types.OCIImageIndex, types.DockerManifestList,
	types.OCIManifestSchema1, types.DockerManifestSchema2, "application/json", types.OCIConfigJSON}

// seedIndex, seedManifest and seedConfig are an image as examples/images
// writes it (testdata/fuzz holds the real ones, digests made placeholders).
const (
	seedIndex    = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"@MANIFEST@","size":559,"annotations":{"io.containerd.image.name":"nodekit.local/web:latest","org.opencontainers.image.ref.name":"latest"},"platform":{"architecture":"amd64","os":"linux"}}]}`
	seedManifest = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"@CONFIG@","size":747},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:673ac0d2672fe598b829eea2e62e3e7ce2ad88087e4d4fba4e23f7baa369a378","size":1067572}]}`
	seedConfig   = `{"created":"2026-01-01T00:00:00Z","architecture":"amd64","os":"linux","config":{"User":"www-data","Env":["PATH=/bin"],"Entrypoint":["httpd","-f"],"WorkingDir":"/www"},"rootfs":{"type":"layers","diff_ids":["sha256:66613cbeca0b6f89686ad9d4806e9a1f2152a2c730e5041fd55c25c37ab0a21b"]}}`
)

// FuzzResolve: resolving an index or manifest (with its config) as pulls and
// imports do either fails or gives a candidate whose manifests and config are
// exactly the blobs it was served, digests verified, with one layer per diffID,
// every diffID a sha256 digest, and a config that encodes to itself.
func FuzzResolve(f *testing.F) {
	f.Add([]byte(seedIndex), []byte(seedManifest), []byte(seedConfig), uint8(0))
	f.Add([]byte(""), []byte(seedManifest), []byte(seedConfig), uint8(3))
	f.Add([]byte(`{"manifests":[{"digest":"@MANIFEST@","platform":{"os":"linux","architecture":"amd64","variant":"v8"}}]}`),
		[]byte(`{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"digest":"@CONFIG@"},"layers":[]}`),
		[]byte(`{"rootfs":{"diff_ids":[]}}`), uint8(2))
	f.Fuzz(func(t *testing.T, index, manifest, config []byte, mt uint8) {
		if len(index)+len(manifest)+len(config) > 256<<10 {
			return
		}
		ib, mb, cb, id, md, cd := fuzzBlobs(index, manifest, config)
		blobs := memFetcher{md.String(): mb, cd.String(): cb}
		top, td := mb, md
		if len(index) > 0 {
			blobs[id.String()] = ib
			top, td = ib, id
		}
		desc := v1.Descriptor{MediaType: fuzzMediaTypes[int(mt)%len(fuzzMediaTypes)], Digest: td, Size: int64(len(top))}
		c, err := resolve(context.Background(), blobs, desc, top, fuzzPlatform)
		if err != nil {
			return // (with the candidate built so far, which callers drop)
		}
		checkCandidate(t, c, blobs)
	})
}

// checkCandidate checks a resolved image against the blobs it came from.
func checkCandidate(t *testing.T, c *candidate, blobs memFetcher) {
	t.Helper()
	if c == nil {
		t.Fatal("nil candidate without an error")
	}
	for d, b := range c.blobs {
		h, err := v1.NewHash(d)
		if err != nil {
			t.Fatalf("candidate blob %q: %v", d, err)
		}
		if err := verifyBlob(h, b); err != nil {
			t.Fatalf("candidate blob: %v", err)
		}
		if blobs != nil && !bytes.Equal(blobs[d], b) {
			t.Fatalf("candidate blob %s was never served", d)
		}
	}
	if _, ok := c.blobs[c.configID]; !ok {
		t.Fatalf("config %q is not among the candidate's blobs", c.configID)
	}
	if len(c.layers) != len(c.config.RootFS.DiffIDs) {
		t.Fatalf("%d layers for %d diffIDs", len(c.layers), len(c.config.RootFS.DiffIDs))
	}
	for i, l := range c.layers {
		if l.diffID.Algorithm != "sha256" || len(l.diffID.Hex) != 64 {
			t.Fatalf("layer %d: diffID %q", i, l.diffID)
		}
		if l.diffID.String() != c.config.RootFS.DiffIDs[i].String() {
			t.Fatalf("layer %d: diffID %s, config's %s", i, l.diffID, c.config.RootFS.DiffIDs[i])
		}
		if l.open == nil {
			t.Fatalf("layer %d cannot be opened", i)
		}
	}
	enc, err := json.Marshal(c.config)
	if err != nil {
		t.Fatalf("encode the config: %v", err)
	}
	c2 := &candidate{blobs: map[string][]byte{}}
	if err := c2.setConfig(digestOf(enc), enc); err != nil {
		t.Fatalf("the config, encoded again, does not parse: %v\n%s", err, enc)
	}
	if enc2, _ := json.Marshal(c2.config); !bytes.Equal(enc, enc2) {
		t.Fatalf("the config does not encode to itself:\n%s\n%s", enc, enc2)
	}
}

// FuzzArchive: the index.json of an OCI image layout and the manifest.json of
// a docker archive, as Import reads them from an unpacked archive (the
// layout's manifest and config as blobs/sha256/<hex>), either fail or give
// candidates that pass checkCandidate, whose tags are normalized "repo:tag"
// references and whose repo digests name the manifest. Seeds:
// testdata/fuzz/FuzzArchive, from the images of _output/images.
func FuzzArchive(f *testing.F) {
	f.Add([]byte(seedIndex), []byte(seedManifest), []byte(seedConfig),
		[]byte(`[{"Config":"blobs/sha256/@CONFIG@","RepoTags":["nodekit.local/web:latest"],"Layers":["blobs/sha256/673ac0d2672fe598b829eea2e62e3e7ce2ad88087e4d4fba4e23f7baa369a378"]}]`))
	f.Add([]byte(`{"manifests":[{"digest":"@MANIFEST@","annotations":{"org.opencontainers.image.ref.name":"busybox"}},{"digest":"@MANIFEST@","annotations":{"org.opencontainers.image.ref.name":"example.com/b@sha256:0000000000000000000000000000000000000000000000000000000000000000"}}]}`),
		[]byte(seedManifest), []byte(seedConfig),
		[]byte(`[{"Config":"@CONFIG@.json","RepoTags":["a","b:1","localhost:5000/c:2"],"Layers":["abc/layer.tar"]}]`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, index, manifest, config, dockerManifest []byte) {
		if len(index)+len(manifest)+len(config)+len(dockerManifest) > 256<<10 {
			return
		}
		ib, mb, cb, _, md, cd := fuzzBlobs(index, manifest, config)
		dm := bytes.ReplaceAll(dockerManifest, []byte(phConfig), []byte(cd.Hex))
		os.RemoveAll(filepath.Join(dir, "blobs"))
		for name, b := range map[string][]byte{
			"index.json":                          ib,
			"manifest.json":                       dm,
			filepath.Join("blobs/sha256", md.Hex): mb,
			filepath.Join("blobs/sha256", cd.Hex): cb,
		} {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		root, err := os.OpenRoot(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		blobs := memFetcher{md.String(): mb, cd.String(): cb}

		s := &Store{platform: fuzzPlatform}
		cands, err := s.ociCandidates(context.Background(), root)
		if err == nil {
			for _, c := range cands {
				checkCandidate(t, c, blobs)
				checkNames(t, c)
			}
		}
		cands, err = dockerCandidates(root)
		if err == nil {
			for _, c := range cands {
				checkCandidate(t, c, nil)
				checkNames(t, c)
				if !bytes.Equal(c.blobs[c.configID], cb) && c.configID == cd.String() {
					t.Fatalf("docker archive config %s is not the file's content", c.configID)
				}
			}
		}
	})
}

// checkNames: the candidate's names are normalized references.
func checkNames(t *testing.T, c *candidate) {
	t.Helper()
	for _, tag := range c.tags {
		r, err := parseRef(tag)
		if err != nil || r.tag == "" || r.String() != tag {
			t.Fatalf("tag %q is not a normalized repo:tag (%+v, %v)", tag, r, err)
		}
	}
	for _, d := range c.digests {
		r, err := parseRef(d)
		if err != nil || r.digest == "" || r.String() != d {
			t.Fatalf("repo digest %q is not a normalized repo@digest (%+v, %v)", d, r, err)
		}
		if _, ok := c.blobs[r.digest]; !ok {
			t.Fatalf("repo digest %q names no manifest of the image", d)
		}
	}
}

// FuzzRegistryConfig: a registry configuration is either refused with an
// error wrapping ErrRegistryConfig, or every mirror it gives is an http(s)
// endpoint (plain HTTP only for loopback or insecure mirrors) with an API
// root that is a clean absolute path, endpoints lists the mirrors in order
// and then (unless mirrors_only) the registry itself, and the configuration
// written back in canonical form (each mirror an inline table with
// override_path) parses to the same configuration. Seeds: below and
// testdata/fuzz/FuzzRegistryConfig.
func FuzzRegistryConfig(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte("[registry.\"localhost:5000\"]\nmirrors = [\"http://[::1]:5001/a%20b/\"]\nskip_verify = true\n"))
	f.Add([]byte("[registry.\"docker.io\"]\nmirrors_only = true\n"))
	f.Add([]byte("[[registry.\"ghcr.io\".mirrors]]\nurl = \"https://m.example/v2\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		const file = "/etc/nodekit/registries.toml"
		rc, err := parseRegistryConfig(file, data)
		if err != nil {
			if !errors.Is(err, ErrRegistryConfig) || !strings.Contains(err.Error(), file) {
				t.Fatalf("error %q does not wrap ErrRegistryConfig or name the file", err)
			}
			return
		}
		for host, hc := range rc.hosts {
			for i, ep := range hc.mirrors {
				if ep.scheme != "http" && ep.scheme != "https" || ep.host == "" || !ep.mirror {
					t.Fatalf("%s: mirror %d: %+v", host, i, ep)
				}
				if ep.scheme == "http" && !ep.insecure && !isLoopback(ep.host) {
					t.Fatalf("%s: mirror %d: plain HTTP to %s", host, i, ep.host)
				}
				if ep.apiRoot != "" && (!strings.HasPrefix(ep.apiRoot, "/") || filepath.Clean(ep.apiRoot) != ep.apiRoot) {
					t.Fatalf("%s: mirror %d: API root %q", host, i, ep.apiRoot)
				}
			}
			eps := rc.endpoints(host)
			want := len(hc.mirrors)
			if !hc.mirrorsOnly {
				want++
			}
			if len(eps) != want || want == 0 {
				t.Fatalf("%s: %d endpoints for %d mirrors (mirrors_only %v)", host, len(eps), len(hc.mirrors), hc.mirrorsOnly)
			}
			for i, m := range hc.mirrors {
				if !reflect.DeepEqual(eps[i], m) {
					t.Fatalf("%s: endpoint %d is %+v, want mirror %+v", host, i, eps[i], m)
				}
			}
			if !hc.mirrorsOnly && (eps[len(eps)-1].mirror || eps[len(eps)-1].host != host) {
				t.Fatalf("%s: last endpoint %+v is not the registry", host, eps[len(eps)-1])
			}
		}

		canon := canonicalRegistryConfig(t, rc)
		rc2, err := parseRegistryConfig(file, canon)
		if err != nil {
			t.Fatalf("the canonical form does not parse: %v\n%s", err, canon)
		}
		if a, b := registryConfigView(rc), registryConfigView(rc2); !reflect.DeepEqual(a, b) {
			t.Fatalf("the canonical form parses to another configuration:\n%s\n%+v\n%+v", canon, a, b)
		}
	})
}

// canonicalRegistryConfig writes rc back as a configuration file.
func canonicalRegistryConfig(t *testing.T, rc *registryConfig) []byte {
	t.Helper()
	type mirror struct {
		URL        string `toml:"url"`
		Insecure   bool   `toml:"insecure"`
		SkipVerify bool   `toml:"skip_verify"`
		CA         string `toml:"ca"`
		Override   bool   `toml:"override_path"`
	}
	type registry struct {
		Mirrors     []mirror `toml:"mirrors"`
		MirrorsOnly bool     `toml:"mirrors_only"`
		Insecure    bool     `toml:"insecure"`
		SkipVerify  bool     `toml:"skip_verify"`
		CA          string   `toml:"ca"`
	}
	out := struct {
		Registry map[string]registry `toml:"registry"`
	}{Registry: map[string]registry{}}
	for host, hc := range rc.hosts {
		r := registry{MirrorsOnly: hc.mirrorsOnly, Insecure: hc.upstream.insecure, SkipVerify: hc.upstream.skipVerify, CA: hc.upstream.ca}
		for _, m := range hc.mirrors {
			u := url.URL{Scheme: m.scheme, Host: m.host, Path: m.apiRoot}
			r.Mirrors = append(r.Mirrors, mirror{URL: u.String(), Insecure: m.insecure, SkipVerify: m.skipVerify, CA: m.ca, Override: true})
		}
		out.Registry[host] = r
	}
	b, err := toml.Marshal(out)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return b
}

// registryConfigView is rc without the entry names (which quote the file's keys).
func registryConfigView(rc *registryConfig) map[string]hostConfig {
	out := map[string]hostConfig{}
	for host, hc := range rc.hosts {
		hc.mirrors = slices.Clone(hc.mirrors)
		for i := range hc.mirrors {
			hc.mirrors[i].entry = ""
		}
		hc.upstream.entry = ""
		out[host] = hc
	}
	return out
}
