// tlogverify: checks a Palisade evidence log with Go's golang.org/x/mod/sumdb/note and
// golang.org/x/mod/sumdb/tlog (code nobody at Palisade wrote): the checkpoint's
// signature, the inclusion of every entry in the checkpointed tree (tiles read from the
// C2SP tlog-tiles layout and authenticated by tlog's TileHashReader), and, given an older
// checkpoint, the consistency of the two trees.
//
// With -proof, it checks a C2SP tlog-proof file for an entry instead: the checkpoint's
// signature and the entry's inclusion proof against the signed root.
//
// Usage: tlogverify DIR VERIFIER-KEY [OLD-CHECKPOINT-FILE]
//        tlogverify -proof PROOF-FILE ENTRY-FILE VERIFIER-KEY
package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "tlogverify: "+format+"\n", args...)
	os.Exit(1)
}

// C2SP tile paths: no height component, entries under tile/entries.
func indexPath(n int64) string {
	parts := []string{fmt.Sprintf("%03d", n%1000)}
	for n /= 1000; n > 0; n /= 1000 {
		parts = append([]string{fmt.Sprintf("x%03d", n%1000)}, parts...)
	}
	return strings.Join(parts, "/")
}

func tilePath(level, index, width int64) string {
	p := fmt.Sprintf("tile/%d/%s", level, indexPath(index))
	if width < 256 {
		p += fmt.Sprintf(".p/%d", width)
	}
	return p
}

func bundlePath(index, width int64) string {
	p := "tile/entries/" + indexPath(index)
	if width < 256 {
		p += fmt.Sprintf(".p/%d", width)
	}
	return p
}

type tiles struct{ dir string }

func (t tiles) Height() int { return 8 }

func (t tiles) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	for i, tile := range ts {
		b, err := os.ReadFile(filepath.Join(t.dir, tilePath(int64(tile.L), tile.N, int64(tile.W))))
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func (t tiles) SaveTiles([]tlog.Tile, [][]byte) {}

func open(text []byte, v note.Verifier) tlog.Tree {
	n, err := note.Open(text, note.VerifierList(v))
	if err != nil {
		die("checkpoint signature: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) != 3 || lines[0] != v.Name() {
		die("checkpoint body: %q", n.Text)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size <= 0 {
		die("checkpoint size %q", lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		die("checkpoint root %q", lines[2])
	}
	var h tlog.Hash
	copy(h[:], root)
	return tlog.Tree{N: size, Hash: h}
}

// checkProof verifies a tlog-proof file (c2sp.org/tlog-proof@v1, optional extra line,
// index line, inclusion proof lines, a blank line, the signed checkpoint) for an entry.
func checkProof(file, entryFile, key string) {
	v, err := note.NewVerifier(key)
	if err != nil {
		die("verifier key: %v", err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		die("%v", err)
	}
	entry, err := os.ReadFile(entryFile)
	if err != nil {
		die("%v", err)
	}
	head, cp, ok := strings.Cut(string(data), "\n\n")
	if !ok {
		die("proof: no blank line before the checkpoint")
	}
	lines := strings.Split(head, "\n")
	if lines[0] != "c2sp.org/tlog-proof@v1" {
		die("proof: first line %q", lines[0])
	}
	index := int64(-1)
	var proof tlog.RecordProof
	for _, l := range lines[1:] {
		switch {
		case strings.HasPrefix(l, "extra "):
		case strings.HasPrefix(l, "index "):
			index, err = strconv.ParseInt(strings.TrimPrefix(l, "index "), 10, 64)
			if err != nil {
				die("proof: index %q", l)
			}
		default:
			b, err := base64.StdEncoding.DecodeString(l)
			if err != nil || len(b) != tlog.HashSize {
				die("proof: hash line %q", l)
			}
			var h tlog.Hash
			copy(h[:], b)
			proof = append(proof, h)
		}
	}
	if index < 0 {
		die("proof: no index line")
	}
	tree := open([]byte(cp), v)
	if err := tlog.CheckRecord(proof, tree.N, tree.Hash, index, tlog.RecordHash(entry)); err != nil {
		die("entry %d: %v", index, err)
	}
	fmt.Printf("ok: entry %d is in the tree of size %d (%s)\n", index, tree.N, v.Name())
}

func main() {
	if len(os.Args) == 5 && os.Args[1] == "-proof" {
		checkProof(os.Args[2], os.Args[3], os.Args[4])
		return
	}
	if len(os.Args) < 3 {
		die("usage: tlogverify DIR VERIFIER-KEY [OLD-CHECKPOINT-FILE]")
	}
	dir := os.Args[1]
	v, err := note.NewVerifier(os.Args[2])
	if err != nil {
		die("verifier key: %v", err)
	}
	text, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		die("%v", err)
	}
	tree := open(text, v)
	hr := tlog.TileHashReader(tree, tiles{dir})
	// Every entry: read from its bundle, proved included, proof checked.
	var index int64
	for b := int64(0); index < tree.N; b++ {
		w := tree.N - b*256
		if w > 256 {
			w = 256
		}
		data, err := os.ReadFile(filepath.Join(dir, bundlePath(b, w)))
		if err != nil {
			die("%v", err)
		}
		for r := bytes.NewReader(data); r.Len() > 0; index++ {
			var l [2]byte
			if _, err := r.Read(l[:]); err != nil {
				die("bundle %d: %v", b, err)
			}
			e := make([]byte, int(l[0])<<8|int(l[1]))
			if n, _ := r.Read(e); n != len(e) {
				die("bundle %d: truncated entry %d", b, index)
			}
			proof, err := tlog.ProveRecord(tree.N, index, hr)
			if err != nil {
				die("entry %d: %v", index, err)
			}
			if err := tlog.CheckRecord(proof, tree.N, tree.Hash, index, tlog.RecordHash(e)); err != nil {
				die("entry %d: %v", index, err)
			}
		}
	}
	if index != tree.N {
		die("%d entries in the bundles, the checkpoint says %d", index, tree.N)
	}
	// The tree hash recomputed from the tiles equals the signed one.
	th, err := tlog.TreeHash(tree.N, hr)
	if err != nil || th != tree.Hash {
		die("tree hash: %v", err)
	}
	if len(os.Args) > 3 {
		oldText, err := os.ReadFile(os.Args[3])
		if err != nil {
			die("%v", err)
		}
		old := open(oldText, v)
		p, err := tlog.ProveTree(tree.N, old.N, hr)
		if err != nil {
			die("consistency proof: %v", err)
		}
		if err := tlog.CheckTree(p, tree.N, tree.Hash, old.N, old.Hash); err != nil {
			die("consistency %d -> %d: %v", old.N, tree.N, err)
		}
		fmt.Printf("consistent with the tree of size %d\n", old.N)
	}
	fmt.Printf("ok: %d entries verified in %s (%s)\n", tree.N, v.Name(), base64.StdEncoding.EncodeToString(tree.Hash[:]))
}
