package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// findXvsd returns the xvsd binary to run: flag, else a build of
// ./cmd/xvsd of the module around the working directory (so `go run
// ./cmd/xvs` works from a checkout), else xvsd next to this program, else
// xvsd in $PATH.
func findXvsd(flag string) (string, error) {
	if flag != "" {
		p, err := filepath.Abs(flag)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("--xvsd: %w", err)
		}
		return p, nil
	}
	if root := moduleRoot(); root != "" {
		return buildXvsd(root)
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "xvsd")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("xvsd"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("no xvsd: run from the xvs source tree, or pass --xvsd PATH")
}

// moduleRoot returns the directory of the enclosing go.mod if it declares
// module xvs, else "".
func moduleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			first, _, _ := bytes.Cut(b, []byte("\n"))
			if string(bytes.TrimSpace(first)) == "module xvs" {
				return dir
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// buildXvsd runs `go build` into the user cache directory; the go build
// cache makes repeated builds quick.
func buildXvsd(root string) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	out := filepath.Join(cache, "xvs", "xvsd")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	gobin := "go"
	if _, err := exec.LookPath("go"); err != nil {
		// sudo often drops the Go directory from PATH.
		for _, p := range []string{filepath.Join(os.Getenv("GOROOT"), "bin", "go"), "/usr/local/go/bin/go"} {
			if _, err := os.Stat(p); err == nil {
				gobin = p
				break
			}
		}
	}
	cmd := exec.Command(gobin, "build", "-o", out, "./cmd/xvsd")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		err = fmt.Errorf("building xvsd in %s: %w: %s", root, err, bytes.TrimSpace(b))
		// A tree in the middle of an edit should not stop a demo: fall back
		// to the previous build, loudly.
		if st, serr := os.Stat(out); serr == nil {
			fmt.Fprintf(os.Stderr, "xvs: WARNING: %v\nxvs: WARNING: using the previous build %s of %s\n",
				err, out, st.ModTime().Format(time.DateTime))
			return out, nil
		}
		return "", err
	}
	return out, nil
}
