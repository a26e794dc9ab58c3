package shipper

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	testCID = "5f8e3d2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e"
	testUID = "8f14e45f-ceea-467f-a8f5-d5c2b3a1e9f0"
)

func TestParseContainerLogName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want PathMeta
	}{
		{"deployment pod", "web-7d4b9c8f6d-x2k9p_shop_nginx-" + testCID + ".log",
			PathMeta{Namespace: "shop", Pod: "web-7d4b9c8f6d-x2k9p", Container: "nginx", ContainerID: testCID}},
		{"daemonset pod", "weave-scope-agent-56dfr_weave_scope-agent-" + testCID + ".log",
			PathMeta{Namespace: "weave", Pod: "weave-scope-agent-56dfr", Container: "scope-agent", ContainerID: testCID}},
		{"static pod with dotted node name", "kube-apiserver-node-1.example.com_kube-system_kube-apiserver-" + testCID + ".log",
			PathMeta{Namespace: "kube-system", Pod: "kube-apiserver-node-1.example.com", Container: "kube-apiserver", ContainerID: testCID}},
		{"statefulset pod", "kafka-0_data_kafka-" + testCID + ".log",
			PathMeta{Namespace: "data", Pod: "kafka-0", Container: "kafka", ContainerID: testCID}},
		{"one-letter names", "a_b_c-" + testCID + ".log",
			PathMeta{Namespace: "b", Pod: "a", Container: "c", ContainerID: testCID}},
		{"container name with digits", "job-28391-abcde_batch_step-2-" + testCID + ".log",
			PathMeta{Namespace: "batch", Pod: "job-28391-abcde", Container: "step-2", ContainerID: testCID}},
		{"full path", "/var/log/containers/web-0_shop_nginx-" + testCID + ".log",
			PathMeta{Namespace: "shop", Pod: "web-0", Container: "nginx", ContainerID: testCID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseContainerLogName(tt.in)
			if err != nil {
				t.Fatalf("ParseContainerLogName(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseContainerLogName(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseContainerLogNameErrors(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"no suffix", "web-0_shop_nginx-" + testCID},
		{"gz suffix", "web-0_shop_nginx-" + testCID + ".log.gz"},
		{"short id", "web-0_shop_nginx-" + testCID[:63] + ".log"},
		{"id without dash", "web-0_shop_nginx" + testCID + ".log"},
		{"upper-case id", "web-0_shop_nginx-" + strings.ToUpper(testCID) + ".log"},
		{"non-hex id", "web-0_shop_nginx-" + strings.Repeat("g", 64) + ".log"},
		{"only an id", "-" + testCID + ".log"},
		{"two parts", "web-0_nginx-" + testCID + ".log"},
		{"four parts", "web-0_shop_x_nginx-" + testCID + ".log"},
		{"empty pod", "_shop_nginx-" + testCID + ".log"},
		{"empty namespace", "web-0__nginx-" + testCID + ".log"},
		{"empty container", "web-0_shop_-" + testCID + ".log"},
		{"pods layout file", "0.log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseContainerLogName(tt.in)
			if !errors.Is(err, ErrUnknownLayout) {
				t.Fatalf("ParseContainerLogName(%q) = %+v, %v; want error wrapping ErrUnknownLayout", tt.in, m, err)
			}
		})
	}
}

func TestParsePodLogPath(t *testing.T) {
	want := PathMeta{Namespace: "shop", Pod: "web-7d4b9c8f6d-x2k9p", PodUID: testUID, Container: "nginx"}
	dir := "/var/log/pods/shop_web-7d4b9c8f6d-x2k9p_" + testUID + "/nginx/"
	tests := []struct {
		name string
		in   string
		want PathMeta
	}{
		{"current file", dir + "0.log", want},
		{"after restarts", dir + "12.log", want},
		{"rotated", dir + "0.log.20240301-120000", want},
		{"rotated and compressed", dir + "0.log.20240301-120000.gz", want},
		{"other root", "/host/var/log/pods/shop_web-7d4b9c8f6d-x2k9p_" + testUID + "/nginx/0.log", want},
		{"relative", "shop_web-7d4b9c8f6d-x2k9p_" + testUID + "/nginx/0.log", want},
		{"static pod with config-hash uid", "/var/log/pods/kube-system_etcd-node-1_3a1f0e4b5c6d7e8f9a0b1c2d3e4f5a6b/etcd/0.log",
			PathMeta{Namespace: "kube-system", Pod: "etcd-node-1", PodUID: "3a1f0e4b5c6d7e8f9a0b1c2d3e4f5a6b", Container: "etcd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePodLogPath(tt.in)
			if err != nil {
				t.Fatalf("ParsePodLogPath(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParsePodLogPath(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParsePodLogPathErrors(t *testing.T) {
	dir := "/var/log/pods/shop_web-0_" + testUID + "/nginx/"
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"file only", "0.log"},
		{"no container dir", "/var/log/pods/shop_web-0_" + testUID + "/0.log"},
		{"containers layout", "/var/log/containers/web-0_shop_nginx-" + testCID + ".log"},
		{"not numbered", dir + "app.log"},
		{"no .log", dir + "0.txt"},
		{"trailing dot", dir + "0.log."},
		{"directory", dir},
		{"pod dir with two parts", "/var/log/pods/shop_web-0/nginx/0.log"},
		{"pod dir with four parts", "/var/log/pods/shop_web_0_" + testUID + "/nginx/0.log"},
		{"empty uid", "/var/log/pods/shop_web-0_/nginx/0.log"},
		{"docker file", "/var/lib/docker/containers/" + testCID + "/" + testCID + "-json.log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParsePodLogPath(tt.in)
			if !errors.Is(err, ErrUnknownLayout) {
				t.Fatalf("ParsePodLogPath(%q) = %+v, %v; want error wrapping ErrUnknownLayout", tt.in, m, err)
			}
		})
	}
}

// kubeletLayout builds the kubelet's log layout under a temporary root: a pods
// directory with one container log and a containers symlink to it, with the
// absolute target the kubelet uses. It returns the root, the symlink and the
// log file.
func kubeletLayout(t *testing.T, namespace, pod, uid, container, cid string) (root, link, file string) {
	t.Helper()
	root = t.TempDir()
	dir := filepath.Join(root, "pods", namespace+"_"+pod+"_"+uid, container)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(dir, "0.log")
	if err := os.WriteFile(file, []byte("2024-03-01T12:00:00Z stdout F hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "containers"), 0o755); err != nil {
		t.Fatal(err)
	}
	link = filepath.Join(root, "containers", pod+"_"+namespace+"_"+container+"-"+cid+".log")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	return root, link, file
}

func TestResolveLogPath(t *testing.T) {
	root, link, file := kubeletLayout(t, "shop", "web-7d4b9c8f6d-x2k9p", testUID, "nginx", testCID)
	// EvalSymlinks also resolves links in the temporary directory itself (macOS /var).
	realFile, err := filepath.EvalSymlinks(file)
	if err != nil {
		t.Fatal(err)
	}
	full := PathMeta{Namespace: "shop", Pod: "web-7d4b9c8f6d-x2k9p", PodUID: testUID, Container: "nginx", ContainerID: testCID}

	t.Run("containers symlink", func(t *testing.T) {
		meta, target, err := ResolveLogPath(link)
		if err != nil {
			t.Fatal(err)
		}
		if meta != full || target != realFile {
			t.Errorf("ResolveLogPath(%s) = %+v, %s; want %+v, %s", link, meta, target, full, realFile)
		}
	})

	t.Run("pods file", func(t *testing.T) {
		meta, target, err := ResolveLogPath(file)
		if err != nil {
			t.Fatal(err)
		}
		want := full
		want.ContainerID = ""
		if meta != want || target != realFile {
			t.Errorf("ResolveLogPath(%s) = %+v, %s; want %+v, %s", file, meta, target, want, realFile)
		}
	})

	t.Run("relative symlink chain", func(t *testing.T) {
		// An intermediate link, as dockershim once made through /var/log/pods.
		mid := filepath.Join(root, "mid.log")
		rel, err := filepath.Rel(root, file)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(rel, mid); err != nil {
			t.Fatal(err)
		}
		link2 := filepath.Join(root, "containers", "web-7d4b9c8f6d-x2k9p_shop_nginx-"+strings.Repeat("a", 64)+".log")
		if err := os.Symlink(mid, link2); err != nil {
			t.Fatal(err)
		}
		meta, target, err := ResolveLogPath(link2)
		if err != nil {
			t.Fatal(err)
		}
		want := full
		want.ContainerID = strings.Repeat("a", 64)
		if meta != want || target != realFile {
			t.Errorf("ResolveLogPath(%s) = %+v, %s; want %+v, %s", link2, meta, target, want, realFile)
		}
	})

	t.Run("containers symlink to a docker file", func(t *testing.T) {
		dockerFile := filepath.Join(root, "docker", testCID, testCID+"-json.log")
		if err := os.MkdirAll(filepath.Dir(dockerFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dockerFile, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		link3 := filepath.Join(root, "containers", "api-0_shop_api-"+testCID+".log")
		if err := os.Symlink(dockerFile, link3); err != nil {
			t.Fatal(err)
		}
		meta, _, err := ResolveLogPath(link3)
		if err != nil {
			t.Fatal(err)
		}
		want := PathMeta{Namespace: "shop", Pod: "api-0", Container: "api", ContainerID: testCID}
		if meta != want {
			t.Errorf("ResolveLogPath(%s) = %+v, want %+v", link3, meta, want)
		}
	})

	t.Run("cri-dockerd: containers link to a pods link to a docker file", func(t *testing.T) {
		// cri-dockerd: /var/log/containers/x.log -> /var/log/pods/<ns>_<pod>_<uid>/<c>/0.log
		// -> /var/lib/docker/containers/<id>/<id>-json.log. The pod uid is
		// on the way, not at the end.
		const cid = "bbbb" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab"
		dockerFile := filepath.Join(root, "docker", cid, cid+"-json.log")
		if err := os.MkdirAll(filepath.Dir(dockerFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dockerFile, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		podsLink := filepath.Join(root, "pods", "shop_db-0_5e2b1c3a-0000-4000-8000-000000000001", "db", "0.log")
		if err := os.MkdirAll(filepath.Dir(podsLink), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(dockerFile, podsLink); err != nil {
			t.Fatal(err)
		}
		rel, err := filepath.Rel(filepath.Join(root, "containers"), podsLink)
		if err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(root, "containers", "db-0_shop_db-"+cid+".log")
		if err := os.Symlink(rel, link); err != nil {
			t.Fatal(err)
		}
		meta, target, err := ResolveLogPath(link)
		if err != nil {
			t.Fatal(err)
		}
		want := PathMeta{Namespace: "shop", Pod: "db-0", PodUID: "5e2b1c3a-0000-4000-8000-000000000001", Container: "db", ContainerID: cid}
		if meta != want || target != dockerFile {
			t.Errorf("ResolveLogPath(%s) = %+v, %s; want %+v, %s", link, meta, target, want, dockerFile)
		}
	})

	t.Run("symlink to another container", func(t *testing.T) {
		link4 := filepath.Join(root, "containers", "other-0_shop_nginx-"+testCID+".log")
		if err := os.Symlink(file, link4); err != nil {
			t.Fatal(err)
		}
		_, _, err := ResolveLogPath(link4)
		if !errors.Is(err, ErrUnknownLayout) {
			t.Errorf("ResolveLogPath(%s) error = %v, want ErrUnknownLayout", link4, err)
		}
	})

	t.Run("plain file of no layout", func(t *testing.T) {
		plain := filepath.Join(root, "app.log")
		if err := os.WriteFile(plain, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		meta, target, err := ResolveLogPath(plain)
		if !errors.Is(err, ErrUnknownLayout) || meta != (PathMeta{}) || target != "" {
			t.Errorf("ResolveLogPath(%s) = %+v, %q, %v; want zero values and ErrUnknownLayout", plain, meta, target, err)
		}
	})

	t.Run("dangling symlink", func(t *testing.T) {
		gone := filepath.Join(root, "containers", "gone-0_shop_nginx-"+testCID+".log")
		if err := os.Symlink(filepath.Join(root, "pods", "shop_gone-0_x", "nginx", "0.log"), gone); err != nil {
			t.Fatal(err)
		}
		_, _, err := ResolveLogPath(gone)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ResolveLogPath(%s) error = %v, want fs.ErrNotExist", gone, err)
		}
	})
}

func FuzzParseContainerLogName(f *testing.F) {
	for _, s := range []string{
		"web-7d4b9c8f6d-x2k9p_shop_nginx-" + testCID + ".log",
		"a_b_c-" + testCID + ".log",
		"/var/log/containers/a_b_c-" + testCID + ".log",
		"a_b_c_d-" + testCID + ".log",
		"-" + testCID + ".log",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		m, err := ParseContainerLogName(name)
		if err != nil {
			if !errors.Is(err, ErrUnknownLayout) {
				t.Fatalf("error %v does not wrap ErrUnknownLayout", err)
			}
			return
		}
		if m.Namespace == "" || m.Pod == "" || m.Container == "" || m.PodUID != "" ||
			len(m.ContainerID) != containerIDLen || !isLowerHex(m.ContainerID) {
			t.Fatalf("ParseContainerLogName(%q) = %+v", name, m)
		}
		for _, s := range []string{m.Namespace, m.Pod, m.Container} {
			if strings.ContainsAny(s, "_/") {
				t.Fatalf("ParseContainerLogName(%q) = %+v: a part holds '_' or '/'", name, m)
			}
		}
		// Rebuilding the name from the parts gives the base name back.
		base := name[strings.LastIndexByte(name, '/')+1:]
		if got := m.Pod + "_" + m.Namespace + "_" + m.Container + "-" + m.ContainerID + ".log"; got != base {
			t.Fatalf("ParseContainerLogName(%q) = %+v, which rebuilds to %q", name, m, got)
		}
	})
}
