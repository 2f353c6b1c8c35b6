//go:build !irmv_node_only

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/irmv/irmv/call/media"
)

// checkPlay checks that --play names a readable Ogg/Opus or 8 kHz WAV
// file, before anyone is searched for or rung.
func checkPlay(path string) error {
	if path == "" {
		return nil
	}
	if _, err := media.CheckPlayFile(path); err != nil {
		switch {
		case errors.Is(err, media.ErrNotOpus):
			return cli.Exit(fmt.Sprintf("--play %s: neither an Ogg/Opus nor a WAV file (convert it, e.g. ffmpeg -i IN -c:a libopus OUT.ogg, or sox IN -r 8000 -b 16 OUT.wav)", path), exitError)
		case errors.Is(err, media.ErrPlayFormat):
			return cli.Exit(fmt.Sprintf("--play %s: %v", path, err), exitError)
		}
		return cli.Exit(fmt.Sprintf("--play: %v", err), exitError)
	}
	return nil
}

// checkRecordDir checks that --record names a directory that exists or
// can be made, and that files can be written in it.
func checkRecordDir(dir string) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return cli.Exit(fmt.Sprintf("--record: %v", err), exitError)
	}
	return checkWritable("--record", dir)
}

// checkRecordFile checks that --record FILE can be created.
func checkRecordFile(file string) error {
	if file == "" {
		return nil
	}
	if strings.HasSuffix(file, string(os.PathSeparator)) {
		return cli.Exit(fmt.Sprintf("--record %s: want a file name, not a directory", file), exitError)
	}
	if fi, err := os.Stat(file); err == nil && fi.IsDir() {
		return cli.Exit(fmt.Sprintf("--record %s: is a directory; want a file name", file), exitError)
	}
	dir := filepath.Dir(file)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return cli.Exit(fmt.Sprintf("--record %s: directory %s does not exist", file, dir), exitError)
	}
	return checkWritable("--record", dir)
}

func checkWritable(flag, dir string) error {
	f, err := os.CreateTemp(dir, ".irmv-write-check-*")
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s %s: cannot write there: %v", flag, dir, errors.Unwrap(err)), exitError)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}
