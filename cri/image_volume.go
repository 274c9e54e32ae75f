package cri

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/image"
)

// Image volumes (KEP-4639): a CRI mount whose image names an image the kubelet
// pulled, with no host_path, mounts that image's filesystem, optionally only
// the directory image_sub_path of it, read-only at container_path.
//
// CreateContainer mounts the image's layers read-only (an overlay of them as
// lower directories only, or a read-only bind of an image's single layer) at
// image-volumes/<i> under the container's state directory, where i is the
// mount's index in config.mounts, and the OCI spec binds that mount point, or
// the sub path's directory in it, read-only and private into the container.
// The mount goes when the container exits (Server.release) and, at the latest,
// when it is removed (teardownContainer, which finds the mount points on disk
// rather than in the record, so a container that was never completely created
// loses them too). A created container whose image volume is no longer mounted
// (the node's mounts went away under a state directory that survived) gets it
// mounted again by StartContainer, or fails to start saying why.
//
// While a container exists, the images it mounts as volumes cannot be removed:
// RemoveImage fails with FailedPrecondition (see RemoveImage).

// imageVolume is what a container record keeps of one image volume.
type imageVolume struct {
	Mount   int      `json:"mount"`   // index in config.mounts
	ImageID string   `json:"imageId"` // the image the reference resolved to
	Layers  []string `json:"layers"`  // its layers' diffIDs, base first
	// Source is the host path bound into the container: the mount point, or
	// the directory image_sub_path resolved to in it.
	Source string `json:"source"`
}

// checkImageVolume validates the image volume fields of config.mounts[i]
// before anything is looked up or mounted.
func checkImageVolume(i int, m *runtime.Mount) error {
	field := fmt.Sprintf("config.mounts[%d]", i)
	if m.GetImage().GetImage() == "" {
		if m.GetImageSubPath() != "" {
			return invalid(field+".image_sub_path", "%q is set on a mount that names no image (%s.image)", m.GetImageSubPath(), field)
		}
		return nil
	}
	if m.GetHostPath() != "" {
		return invalid(field+".host_path", "%q is set on a mount of an image (%s.image); an image volume has no host path", m.GetHostPath(), field)
	}
	if _, err := cleanSubPath(m.GetImageSubPath()); err != nil {
		return invalid(field+".image_sub_path", "%v", err)
	}
	return nil
}

// cleanSubPath returns image_sub_path cleaned, "." for none. It must be
// relative and have no ".." element: it names a directory inside the image.
func cleanSubPath(p string) (string, error) {
	if p == "" {
		return ".", nil
	}
	if filepath.IsAbs(p) {
		return "", fmt.Errorf("%q is an absolute path; it must be relative to the image's root", p)
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return "", fmt.Errorf("%q has a %q element; it must stay inside the image", p, "..")
		}
	}
	if strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("%q contains a NUL byte", p)
	}
	return filepath.Clean(p), nil
}

// volumeImage is an image volume of a request with its image looked up.
type volumeImage struct {
	mount int
	img   image.Image
}

// lookupImageVolumes resolves the images of cfg's image volumes as
// CreateContainer resolves config.image: by id, digest reference or tag.
func (s *Server) lookupImageVolumes(cfg *runtime.ContainerConfig) ([]volumeImage, error) {
	var out []volumeImage
	for i, m := range cfg.GetMounts() {
		ref := m.GetImage().GetImage()
		if ref == "" {
			continue
		}
		img, err := s.images.Get(ref)
		if errors.Is(err, image.ErrNotFound) {
			return nil, status.Errorf(codes.NotFound, "config.mounts[%d].image: image %q not found", i, ref)
		}
		if err != nil {
			return nil, grpcError(codes.Internal, err, "config.mounts[%d].image: look up image %q", i, ref)
		}
		out = append(out, volumeImage{mount: i, img: img})
	}
	return out, nil
}

// mountImageVolumes mounts the image volumes of container id (see the top of
// this file), registering their unmounting with undo, and returns what the
// record keeps of them. usernsPath is the pod's user namespace, "" for the
// host's.
func (s *Server) mountImageVolumes(id string, cfg *runtime.ContainerConfig, vols []volumeImage, usernsPath string, undo *cleanups) ([]imageVolume, error) {
	out := make([]imageVolume, 0, len(vols))
	for _, v := range vols {
		field := fmt.Sprintf("config.mounts[%d]", v.mount)
		target := s.paths.imageVolume(id, v.mount)
		undo.add(func() error { return unmount(target) })
		if err := s.mountImageVolume(v.img.ID, v.img.Layers, target, usernsPath); err != nil {
			return nil, grpcError(codes.Internal, err, "%s.image: mount image %s", field, v.img.ID)
		}
		src, err := resolveImageSubPath(target, cfg.GetMounts()[v.mount].GetImageSubPath())
		if err != nil {
			return nil, invalid(field+".image_sub_path", "%v", err)
		}
		out = append(out, imageVolume{Mount: v.mount, ImageID: v.img.ID, Layers: v.img.Layers, Source: src})
	}
	return out, nil
}

// mountImageVolume mounts the layers of image imageID read-only at target.
func (s *Server) mountImageVolume(imageID string, layers []string, target, usernsPath string) error {
	lowers, err := s.images.LayerDirs(image.Image{ID: imageID, Layers: layers})
	if err != nil {
		return err
	}
	return mountImageLayers(lowers, target, usernsPath)
}

// resolveImageSubPath returns the host path of directory sub inside the image
// mounted at root: root itself for "". sub is resolved within root, symbolic
// links included, and must not leave it (os.Root refuses a link that leads out,
// and absolute links), must exist and must be a directory (as in containerd: an
// image volume mounts directories only). The path returned has no symbolic
// link below root, so binding it cannot be steered out of the image; the image
// is mounted read-only, so it cannot change meanwhile.
func resolveImageSubPath(root, sub string) (string, error) {
	clean, err := cleanSubPath(sub)
	if err != nil {
		return "", err
	}
	if clean == "." {
		return root, nil
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return "", fmt.Errorf("open the image's root: %w", err)
	}
	defer r.Close()
	f, err := r.Open(clean)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%q does not exist in the image", sub)
	}
	if err != nil {
		return "", fmt.Errorf("%q cannot be resolved inside the image: %w", sub, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("%q: %w", sub, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%q is not a directory in the image (an image volume mounts a directory)", sub)
	}
	// Where the kernel says the two are, relative to each other: the path of
	// the directory without the links that led to it.
	rf, err := r.Open(".")
	if err != nil {
		return "", fmt.Errorf("open the image's root: %w", err)
	}
	defer rf.Close()
	rootDir, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", rf.Fd()))
	if err != nil {
		return "", fmt.Errorf("locate the image's root: %w", err)
	}
	dir, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		return "", fmt.Errorf("locate %q in the image: %w", sub, err)
	}
	rel, err := filepath.Rel(rootDir, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
		return "", fmt.Errorf("%q resolves to %s, outside the image at %s", sub, dir, rootDir)
	}
	return filepath.Join(root, rel), nil
}

// ensureImageVolumes mounts again, before a created container starts, the
// image volumes whose mount is gone, and checks that each still leads where
// the container's spec binds it from.
func (s *Server) ensureImageVolumes(rec *containerRecord, usernsPath string) error {
	for _, v := range rec.ImageVolumes {
		field := fmt.Sprintf("config.mounts[%d]", v.Mount)
		target := s.paths.imageVolume(rec.ID, v.Mount)
		mounted, err := isMountPoint(target)
		if err != nil {
			return fmt.Errorf("%s.image: check the mount of image %s at %s: %w", field, v.ImageID, target, err)
		}
		if mounted {
			continue
		}
		s.log.Warn("an image volume of a created container is not mounted; mounting it again", "container", rec.ID, "mount", v.Mount, "image", v.ImageID)
		if err := s.mountImageVolume(v.ImageID, v.Layers, target, usernsPath); err != nil {
			return fmt.Errorf("%s.image: mount image %s again: %w", field, v.ImageID, err)
		}
		src, err := resolveImageSubPath(target, rec.Config.GetMounts()[v.Mount].GetImageSubPath())
		if err == nil && src != v.Source {
			err = fmt.Errorf("it now resolves to %s, not %s", src, v.Source)
		}
		if err != nil {
			if uerr := unmount(target); uerr != nil {
				s.log.Warn("unmount an image volume", "container", rec.ID, "mount", v.Mount, "err", uerr)
			}
			return fmt.Errorf("%s.image_sub_path: %w", field, err)
		}
	}
	return nil
}

// unmountImageVolumes unmounts and removes the image volume mount points of
// container id that are on disk, recorded or not. It is safe to repeat.
func (s *Server) unmountImageVolumes(id string) error {
	dir := s.paths.imageVolumes(id)
	names, err := listDir(dir)
	if err != nil {
		return fmt.Errorf("list image volumes: %w", err)
	}
	var errs []error
	for _, name := range names {
		p := filepath.Join(dir, name)
		if err := unmount(p); err != nil {
			errs = append(errs, fmt.Errorf("image volume: %w", err))
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("image volume: %w", err))
		}
	}
	return errors.Join(errs...)
}

// imageVolumeUsers returns the containers that mount image imageID as a volume.
func (s *Server) imageVolumeUsers(imageID string) []string {
	var ids []string
	for _, c := range s.objs.listContainers() {
		rec := c.snapshot()
		for _, v := range rec.ImageVolumes {
			if v.ImageID == imageID {
				ids = append(ids, rec.ID)
				break
			}
		}
	}
	return ids
}
