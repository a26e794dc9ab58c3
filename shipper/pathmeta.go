package shipper

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrUnknownLayout is returned (wrapped) for a log file path that follows
// neither the /var/log/containers nor the /var/log/pods naming of the kubelet.
var ErrUnknownLayout = errors.New("unknown log path layout")

// PathMeta is the Kubernetes metadata of a container log file, taken from its
// path alone: the shipper never asks the API server, whose load a DaemonSet
// of per-node lookups would multiply by the number of nodes.
// Fields the path does not carry are empty.
type PathMeta struct {
	Namespace, Pod, PodUID, Container, ContainerID string
}

// containerIDLen is the length of a container id in hex: a SHA-256 digest,
// the id containerd, CRI-O and docker use.
const containerIDLen = 64

// ParseContainerLogName parses a /var/log/containers base name:
//
//	<pod>_<namespace>_<container>-<64 hex container id>.log
//
// A name with a directory part is parsed by its base name. Pod names,
// namespaces and container names are DNS names that never hold '_', so the
// underscores split them unambiguously, and the container id is the last 64
// lower-case hex digits before ".log", after a '-'. The parts are not checked
// further. PodUID is always empty. An error wraps ErrUnknownLayout.
func ParseContainerLogName(name string) (PathMeta, error) {
	base := name
	if i := strings.LastIndexByte(base, '/'); i >= 0 {
		base = base[i+1:]
	}
	rest, ok := strings.CutSuffix(base, ".log")
	if !ok {
		return PathMeta{}, fmt.Errorf("container log name %q: no .log suffix: %w", name, ErrUnknownLayout)
	}
	if len(rest) < containerIDLen+1 || rest[len(rest)-containerIDLen-1] != '-' {
		return PathMeta{}, fmt.Errorf("container log name %q: no container id: %w", name, ErrUnknownLayout)
	}
	id := rest[len(rest)-containerIDLen:]
	if !isLowerHex(id) {
		return PathMeta{}, fmt.Errorf("container log name %q: container id is not %d hex digits: %w", name, containerIDLen, ErrUnknownLayout)
	}
	pod, namespace, container, ok := splitUnderscore3(rest[:len(rest)-containerIDLen-1])
	if !ok {
		return PathMeta{}, fmt.Errorf("container log name %q: want <pod>_<namespace>_<container>-<id>.log: %w", name, ErrUnknownLayout)
	}
	return PathMeta{Namespace: namespace, Pod: pod, Container: container, ContainerID: id}, nil
}

// ParsePodLogPath parses the kubelet's pods layout,
//
//	.../<namespace>_<pod>_<uid>/<container>/<n>.log
//
// by the last three elements of p, so it works whatever the root
// (/var/log/pods, a host mount such as /host/var/log/pods, or the kubelet's
// podLogsDirectory). Rotated files are accepted too: <n>.log.<timestamp> and
// <n>.log.<timestamp>.gz, or any <n>.log.<suffix>. ContainerID is always
// empty. An error wraps ErrUnknownLayout.
func ParsePodLogPath(p string) (PathMeta, error) {
	p = filepath.ToSlash(p)
	file, dir, ok := cutLastElem(p)
	if !ok {
		return PathMeta{}, fmt.Errorf("pod log path %q: %w", p, ErrUnknownLayout)
	}
	container, dir, ok := cutLastElem(dir)
	if !ok || container == "" {
		return PathMeta{}, fmt.Errorf("pod log path %q: no container directory: %w", p, ErrUnknownLayout)
	}
	podDir, _, _ := cutLastElem(dir)
	if !isPodLogFileName(file) {
		return PathMeta{}, fmt.Errorf("pod log path %q: file name is not <n>.log: %w", p, ErrUnknownLayout)
	}
	namespace, pod, uid, ok := splitUnderscore3(podDir)
	if !ok {
		return PathMeta{}, fmt.Errorf("pod log path %q: directory is not <namespace>_<pod>_<uid>: %w", p, ErrUnknownLayout)
	}
	return PathMeta{Namespace: namespace, Pod: pod, PodUID: uid, Container: container}, nil
}

// ResolveLogPath returns the metadata of the log file at p, usually a
// /var/log/containers symlink, and target, p with every symlink resolved by
// filepath.EvalSymlinks: the file to open.
//
// The names on both sides are merged: ContainerID from a containers-layout
// name of p, PodUID from a pods-layout target. When both parse, they must
// agree on namespace, pod and container. When only one parses, its metadata
// is returned: a pods-layout file that is no symlink has no ContainerID. A
// containers symlink whose target is elsewhere (docker's
// /var/lib/docker/containers) takes PodUID from a pods-layout link on the
// way there (cri-dockerd links /var/log/pods/.../<n>.log into docker's
// directory), else has none. When neither parses, or they
// disagree, the error wraps ErrUnknownLayout. An error from EvalSymlinks (for
// example a dangling symlink of a deleted pod, errors.Is fs.ErrNotExist) is
// returned wrapped. On error meta and target are zero.
func ResolveLogPath(p string) (meta PathMeta, target string, err error) {
	target, err = filepath.EvalSymlinks(p)
	if err != nil {
		return PathMeta{}, "", fmt.Errorf("resolve log path %s: %w", p, err)
	}
	cm, cerr := ParseContainerLogName(filepath.Base(p))
	pm, perr := ParsePodLogPath(target)
	if perr != nil {
		// On cri-dockerd nodes the pods entry is itself a symlink, into
		// /var/lib/docker/containers: the pod uid is on the way, not at the
		// end.
		pm, perr = podLogOnTheWay(p, pm, perr)
	}
	switch {
	case cerr == nil && perr == nil:
		if cm.Namespace != pm.Namespace || cm.Pod != pm.Pod || cm.Container != pm.Container {
			return PathMeta{}, "", fmt.Errorf("resolve log path %s: target %s names another container: %w", p, target, ErrUnknownLayout)
		}
		cm.PodUID = pm.PodUID
		return cm, target, nil
	case cerr == nil:
		return cm, target, nil
	case perr == nil:
		return pm, target, nil
	}
	return PathMeta{}, "", fmt.Errorf("resolve log path %s (target %s): neither <pod>_<namespace>_<container>-<id>.log nor <namespace>_<pod>_<uid>/<container>/<n>.log: %w", p, target, ErrUnknownLayout)
}

// podLogOnTheWay follows the symlinks from p one at a time and parses the
// first one in the pods layout; without one it returns pm and perr as given.
func podLogOnTheWay(p string, pm PathMeta, perr error) (PathMeta, error) {
	hop := p
	for range 8 {
		next, err := os.Readlink(hop)
		if err != nil {
			break
		}
		if !filepath.IsAbs(next) {
			next = filepath.Join(filepath.Dir(hop), next)
		}
		if m, err := ParsePodLogPath(next); err == nil {
			return m, nil
		}
		hop = next
	}
	return pm, perr
}

// splitUnderscore3 splits s at its two '_' into three non-empty parts.
func splitUnderscore3(s string) (a, b, c string, ok bool) {
	a, rest, ok1 := strings.Cut(s, "_")
	b, c, ok2 := strings.Cut(rest, "_")
	if !ok1 || !ok2 || a == "" || b == "" || c == "" || strings.IndexByte(c, '_') >= 0 {
		return "", "", "", false
	}
	return a, b, c, true
}

// cutLastElem splits a slash-separated path into its last element and the
// rest. ok is false when the last element is empty.
func cutLastElem(p string) (elem, dir string, ok bool) {
	i := strings.LastIndexByte(p, '/')
	elem, dir = p[i+1:], p[:max(i, 0)]
	return elem, dir, elem != ""
}

// isPodLogFileName reports whether name is <n>.log or <n>.log.<suffix>, n
// decimal digits (the container's restart count).
func isPodLogFileName(name string) bool {
	i := 0
	for i < len(name) && isASCIIDigit(name[i]) {
		i++
	}
	if i == 0 {
		return false
	}
	rest, ok := strings.CutPrefix(name[i:], ".log")
	return ok && (rest == "" || (rest[0] == '.' && len(rest) > 1))
}

// isLowerHex reports whether s is all lower-case hex digits.
func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isASCIIDigit(c) && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
