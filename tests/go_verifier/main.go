// Command dl-go-verifier checks disclosure-ledger proof bundles, chain checkpoints and
// manifests with code the project did not write: golang.org/x/mod/sumdb/note opens the C2SP
// signed notes, and both golang.org/x/mod/sumdb/tlog and github.com/transparency-dev/merkle
// check the RFC 9162 inclusion and consistency proofs (both must accept).
//
// It imports nothing from the disclosure-ledger project; the leaf encoding is written here
// from its specification (leaf.go). See docs/proofs-go.md.
//
//	dl-go-verifier bundle     -key KEYFILE BUNDLE.json
//	dl-go-verifier checkpoint -key KEYFILE [-origin ORIGIN] CHECKPOINT
//	dl-go-verifier manifest   -key KEYFILE MANIFEST [CHECKPOINT...]
//
// KEYFILE holds the ledger's public key: one or more note verifier keys
// (<name>+<8 hex>+<base64>, one a line), a PEM public key, or the raw key as 64 hex digits.
//
// Each step that holds prints "ok <step>: ..." on standard output. The first that fails
// prints "FAIL <step>: <why>" on standard error and the command exits 1. Bad usage or an
// unreadable key exits 2.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const (
	bundleFormat  = "disclosure-ledger-proof/1"
	manifestMagic = "disclosure-ledger-manifest/1"
)

// failure is a check that did not hold, named by its step.
type failure struct {
	step   string
	detail string
}

func (f *failure) Error() string { return f.step + ": " + f.detail }

func fail(step, format string, args ...any) *failure {
	return &failure{step, fmt.Sprintf(format, args...)}
}

var stdout io.Writer = os.Stdout

func ok(step, format string, args ...any) {
	fmt.Fprintf(stdout, "ok %s: %s\n", step, fmt.Sprintf(format, args...))
}

// -- keys ----------------------------------------------------------------------------------

// keys are what the reader trusts: either note verifier keys, each with its own name, or
// one raw Ed25519 key, which signs under every chain's origin (the key name is then taken
// from the note being checked, and the key ID derived by note.NewEd25519VerifierKey).
type keys struct {
	vkeys []string
	raw   ed25519.PublicKey
}

func loadKeys(path string) (*keys, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the key file: %v", err)
	}
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		block, _ := pem.Decode(trimmed)
		if block == nil {
			return nil, fmt.Errorf("%s is not a PEM file", path)
		}
		parsed, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s is not a PEM public key: %v", path, err)
		}
		key, isEd := parsed.(ed25519.PublicKey)
		if !isEd {
			return nil, fmt.Errorf("%s is not an Ed25519 public key", path)
		}
		return &keys{raw: key}, nil
	}
	if raw, err := hex.DecodeString(string(trimmed)); err == nil && len(raw) == ed25519.PublicKeySize {
		return &keys{raw: ed25519.PublicKey(raw)}, nil
	}
	var vkeys []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if _, err := note.NewVerifier(line); err != nil {
			return nil, fmt.Errorf(
				"%s: %q is not a note verifier key (<name>+<8 hex>+<base64>): %v; the file "+
					"holds verifier keys one a line, a PEM public key, or 64 hex digits",
				path, line, err)
		}
		vkeys = append(vkeys, line)
	}
	if len(vkeys) == 0 {
		return nil, fmt.Errorf("%s holds no key", path)
	}
	return &keys{vkeys: vkeys}, nil
}

// verifiers for a note signed under name.
func (k *keys) verifiers(name string) (note.Verifiers, []string, error) {
	vkeys := k.vkeys
	if k.raw != nil {
		vkey, err := note.NewEd25519VerifierKey(name, k.raw)
		if err != nil {
			return nil, nil, fmt.Errorf("%q cannot name a note key: %v", name, err)
		}
		vkeys = []string{vkey}
	}
	list := make([]note.Verifier, 0, len(vkeys))
	for _, vkey := range vkeys {
		v, err := note.NewVerifier(vkey)
		if err != nil {
			return nil, nil, err
		}
		list = append(list, v)
	}
	return note.VerifierList(list...), vkeys, nil
}

// openNote checks the signature of an encoded note with note.Open, unmodified.
func openNote(encoded []byte, name string, k *keys, what string) (*note.Note, error) {
	known, vkeys, err := k.verifiers(name)
	if err != nil {
		return nil, fail("signature", "%s: %v", what, err)
	}
	n, err := note.Open(encoded, known)
	if err == nil {
		return n, nil
	}
	var unverified *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case errors.As(err, &unverified):
		var by []string
		for _, sig := range unverified.Note.UnverifiedSigs {
			by = append(by, fmt.Sprintf("%s+%08x", sig.Name, sig.Hash))
		}
		return nil, fail("signature",
			"%s has no signature by the key given (it is signed by %s; the key given verifies "+
				"%s): a wrong key, or a note of another log",
			what, strings.Join(by, ", "), strings.Join(names(vkeys), ", "))
	case errors.As(err, &invalid):
		return nil, fail("signature",
			"%s: the signature by %s+%08x does not match the note's text: the note was altered",
			what, invalid.Name, invalid.Hash)
	}
	return nil, fail("signature", "%s is not a valid signed note: %v", what, err)
}

func names(vkeys []string) []string {
	out := make([]string, len(vkeys))
	for i, vkey := range vkeys {
		parts := strings.SplitN(vkey, "+", 3)
		out[i] = parts[0] + "+" + parts[1]
	}
	return out
}

// firstLine is the name a checkpoint or manifest is signed under: its origin, the first line.
func firstLine(encoded []byte) string {
	line, _, _ := strings.Cut(string(encoded), "\n")
	return line
}

// -- tlog-checkpoint -----------------------------------------------------------------------

type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
}

// parseCheckpoint reads a C2SP tlog-checkpoint's text: the origin, the tree size in decimal,
// the base64 root hash. This log writes no extension lines, so none are accepted.
// (tlog.ParseTree reads only the go.sum database's own origin line, so it is not used.)
func parseCheckpoint(text string) (checkpoint, error) {
	lines := strings.Split(text, "\n")
	if len(lines) != 4 || lines[3] != "" {
		return checkpoint{}, errors.New(
			"a checkpoint's text is three lines: origin, tree size, base64 root hash")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] || lines[0] == "" {
		return checkpoint{}, fmt.Errorf("origin %q or tree size %q is malformed", lines[0], lines[1])
	}
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return checkpoint{}, fmt.Errorf("root hash %q is not 32 bytes of base64", lines[2])
	}
	var hash tlog.Hash
	copy(hash[:], root)
	return checkpoint{lines[0], size, hash}, nil
}

// -- bundles -------------------------------------------------------------------------------

type bundle map[string]json.RawMessage

func (b bundle) str(name string) (string, error) {
	var s string
	if err := json.Unmarshal(b[name], &s); err != nil {
		return "", fail("bundle", "the bundle's %q is missing or not a text", name)
	}
	return s, nil
}

func (b bundle) integer(name string) (int64, error) {
	raw, present := b[name]
	if !present {
		return 0, fail("bundle", "the bundle's %q is missing", name)
	}
	value, err := decodeInteger(raw)
	if err != nil || value < 0 {
		return 0, fail("bundle", "the bundle's %q is not a non-negative integer", name)
	}
	return value, nil
}

func decodeHash(encoded, what string) (tlog.Hash, error) {
	raw, err := base64.StdEncoding.Strict().DecodeString(encoded)
	if err != nil {
		return tlog.Hash{}, fail("bundle", "%s is not base64: %v", what, err)
	}
	var hash tlog.Hash
	if len(raw) != tlog.HashSize {
		return hash, fmt.Errorf("%s is %d bytes, not %d", what, len(raw), tlog.HashSize)
	}
	copy(hash[:], raw)
	return hash, nil
}

// hash is a 32-byte base64 field of the bundle; a wrong length fails the step given.
func (b bundle) hash(name, step string) (tlog.Hash, error) {
	encoded, err := b.str(name)
	if err != nil {
		return tlog.Hash{}, err
	}
	hash, err := decodeHash(encoded, name)
	var f *failure
	if err != nil && !errors.As(err, &f) {
		return hash, fail(step, "%v", err)
	}
	return hash, err
}

func (b bundle) path(name string) ([]tlog.Hash, error) {
	var encoded []string
	if err := json.Unmarshal(b[name], &encoded); err != nil {
		return nil, fail("bundle", "the bundle's %q is missing or not a list of texts", name)
	}
	hashes := make([]tlog.Hash, len(encoded))
	for i, item := range encoded {
		hash, err := decodeHash(item, fmt.Sprintf("%s item %d", name, i))
		var f *failure
		if err != nil && !errors.As(err, &f) {
			return nil, fail("path", "%v", err)
		}
		if err != nil {
			return nil, err
		}
		hashes[i] = hash
	}
	return hashes, nil
}

func asSlices(hashes []tlog.Hash) [][]byte {
	out := make([][]byte, len(hashes))
	for i := range hashes {
		out[i] = hashes[i][:]
	}
	return out
}

// signedHead checks that a verified checkpoint states the origin, size and root the bundle
// claims.
func signedHead(n *note.Note, origin string, size int64, root tlog.Hash) error {
	head, err := parseCheckpoint(n.Text)
	if err != nil {
		return fail("root", "the signed checkpoint is not a tlog-checkpoint: %v", err)
	}
	if head.origin != origin {
		return fail("root", "the checkpoint is of %q, not %q", head.origin, origin)
	}
	if head.size != size || head.root != root {
		return fail("root",
			"the signed checkpoint states size %d and root %s; the bundle claims size %d and root %s",
			head.size, head.root, size, root)
	}
	return nil
}

func verifyBundle(data []byte, k *keys) error {
	var b bundle
	if err := json.Unmarshal(data, &b); err != nil {
		return fail("bundle", "not a JSON object: %v", err)
	}
	format, _ := b.str("format")
	kind, _ := b.str("kind")
	if format != bundleFormat || (kind != "inclusion" && kind != "consistency") {
		return fail("bundle", "not a %s bundle (format or kind missing)", bundleFormat)
	}
	chain, err := b.str("chain")
	if err != nil {
		return err
	}
	origin, err := b.str("origin")
	if err != nil {
		return err
	}
	if !strings.HasSuffix(origin, "/"+chain) {
		return fail("bundle", "the origin %q is not that of the chain %q (<log origin>/<chain>)",
			origin, chain)
	}
	if kind == "inclusion" {
		return verifyInclusion(b, chain, origin, k)
	}
	return verifyConsistency(b, origin, k)
}

func verifyInclusion(b bundle, chain, origin string, k *keys) error {
	// 1. leaf: the fields, encoded here, hash to the bundle's leaf hash.
	var leaf map[string]json.RawMessage
	if err := json.Unmarshal(b["leaf"], &leaf); err != nil || leaf == nil {
		return fail("bundle", "the bundle's \"leaf\" is missing or not an object")
	}
	encoding, err := encodeLeaf(leaf)
	if err != nil {
		return fail("leaf", "%v", err)
	}
	claimed, err := b.hash("leaf_hash", "leaf")
	if err != nil {
		return err
	}
	leafHash := tlog.RecordHash(encoding)
	if leafHash != claimed {
		return fail("leaf",
			"the leaf fields hash to %s, not to the bundle's leaf hash %s: a field was changed",
			leafHash, claimed)
	}
	ok("leaf", "the %d leaf fields hash to %s", len(leafFields), leafHash)

	// 2. signature: the checkpoint is signed by the key given, under the chain's origin.
	encoded, err := b.str("checkpoint")
	if err != nil {
		return err
	}
	n, err := openNote([]byte(encoded), origin, k, "the checkpoint")
	if err != nil {
		return err
	}
	ok("signature", "the checkpoint is signed by %s", sigNames(n))

	// 3. root: the signed checkpoint states the bundle's size and root.
	size, err := b.integer("tree_size")
	if err != nil {
		return err
	}
	index, err := b.integer("leaf_index")
	if err != nil {
		return err
	}
	root, err := b.hash("root", "root")
	if err != nil {
		return err
	}
	if err := signedHead(n, origin, size, root); err != nil {
		return err
	}
	ok("root", "the signed checkpoint of %s states size %d and root %s", origin, size, root)

	// The leaf is the row the bundle says: chain and seq (= index + 1) are leaf fields.
	var seq int64 = -1
	if !isNull(leaf["seq"]) {
		seq, _ = decodeInteger(leaf["seq"])
	}
	var leafChain string
	_ = json.Unmarshal(leaf["chain_id"], &leafChain)
	if seq != index+1 || leafChain != chain {
		return fail("leaf", "the leaf's chain_id %q and seq %d are not the bundle's chain %q and "+
			"leaf_index + 1 = %d", leafChain, seq, chain, index+1)
	}

	// 4. path: the inclusion proof leads from the leaf hash to the signed root.
	path, err := b.path("inclusion_path")
	if err != nil {
		return err
	}
	if index >= size {
		return fail("path", "leaf %d is not in a tree of %d leaves", index, size)
	}
	tlogErr := tlog.CheckRecord(tlog.RecordProof(path), size, root, index, leafHash)
	merkleErr := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(index), uint64(size),
		leafHash[:], asSlices(path), root[:])
	if err := agree("inclusion", tlogErr, merkleErr); err != nil {
		return err
	}
	ok("path", "the inclusion path of %d hashes leads from leaf %d to the root of size %d "+
		"(tlog.CheckRecord and merkle proof.VerifyInclusion)", len(path), index, size)
	fmt.Fprintf(stdout, "VERIFIED: row %d of %s is leaf %d of the log of %d rows signed under %s\n",
		index+1, chain, index, size, origin)
	return nil
}

func verifyConsistency(b bundle, origin string, k *keys) error {
	notes := map[string]*note.Note{}
	for _, name := range []string{"old_checkpoint", "new_checkpoint"} {
		encoded, err := b.str(name)
		if err != nil {
			return err
		}
		n, err := openNote([]byte(encoded), origin, k, "the "+strings.ReplaceAll(name, "_", " "))
		if err != nil {
			return err
		}
		notes[name] = n
	}
	ok("signature", "both checkpoints are signed by %s", sigNames(notes["new_checkpoint"]))
	oldSize, err := b.integer("old_size")
	if err != nil {
		return err
	}
	newSize, err := b.integer("new_size")
	if err != nil {
		return err
	}
	oldRoot, err := b.hash("old_root", "root")
	if err != nil {
		return err
	}
	newRoot, err := b.hash("new_root", "root")
	if err != nil {
		return err
	}
	if err := signedHead(notes["old_checkpoint"], origin, oldSize, oldRoot); err != nil {
		return err
	}
	if err := signedHead(notes["new_checkpoint"], origin, newSize, newRoot); err != nil {
		return err
	}
	ok("root", "the signed checkpoints of %s state size %d root %s and size %d root %s",
		origin, oldSize, oldRoot, newSize, newRoot)
	path, err := b.path("consistency_path")
	if err != nil {
		return err
	}
	if oldSize < 1 || oldSize > newSize {
		return fail("path", "a consistency proof joins sizes 0 < old <= new, not %d and %d",
			oldSize, newSize)
	}
	tlogErr := tlog.CheckTree(tlog.TreeProof(path), newSize, newRoot, oldSize, oldRoot)
	merkleErr := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(oldSize), uint64(newSize),
		asSlices(path), oldRoot[:], newRoot[:])
	if err := agree("consistency", tlogErr, merkleErr); err != nil {
		return err
	}
	ok("path", "the consistency proof of %d hashes leads from the root of size %d to the root "+
		"of size %d (tlog.CheckTree and merkle proof.VerifyConsistency)", len(path), oldSize, newSize)
	fmt.Fprintf(stdout, "VERIFIED: the log of %d rows extends the log of %d rows, both signed under %s\n",
		newSize, oldSize, origin)
	return nil
}

// agree: both libraries must accept the proof. If only one does, the proof format is at
// fault (or a library is), and that is said.
func agree(what string, tlogErr, merkleErr error) error {
	switch {
	case tlogErr == nil && merkleErr == nil:
		return nil
	case tlogErr != nil && merkleErr != nil:
		return fail("path", "the %s proof does not lead to the signed root (tlog: %s; merkle: %s)",
			what, errText(tlogErr), errText(merkleErr))
	}
	return fail("path", "the two libraries disagree on the %s proof (tlog: %v; merkle: %v): "+
		"the proof is not in RFC 9162's form; report this", what, errText(tlogErr), errText(merkleErr))
}

func errText(err error) string {
	var mismatch proof.RootMismatchError
	switch {
	case err == nil:
		return "accepted"
	case errors.As(err, &mismatch):
		return fmt.Sprintf("it leads to %s, not to %s",
			base64.StdEncoding.EncodeToString(mismatch.CalculatedRoot),
			base64.StdEncoding.EncodeToString(mismatch.ExpectedRoot))
	}
	return err.Error()
}

func sigNames(n *note.Note) string {
	var by []string
	for _, sig := range n.Sigs {
		by = append(by, fmt.Sprintf("%s+%08x", sig.Name, sig.Hash))
	}
	return strings.Join(by, ", ")
}

// -- checkpoint and manifest files ---------------------------------------------------------

func verifyCheckpointFile(path string, k *keys, wantOrigin string) (checkpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return checkpoint{}, fail("input", "cannot read %s: %v", path, err)
	}
	name := firstLine(data)
	if wantOrigin != "" {
		name = wantOrigin
	}
	n, err := openNote(data, name, k, path)
	if err != nil {
		return checkpoint{}, err
	}
	ok("signature", "%s is signed by %s", path, sigNames(n))
	head, err := parseCheckpoint(n.Text)
	if err != nil {
		return checkpoint{}, fail("checkpoint", "%s is not a tlog-checkpoint: %v", path, err)
	}
	if wantOrigin != "" && head.origin != wantOrigin {
		return checkpoint{}, fail("checkpoint", "%s is of %q, not %q", path, head.origin, wantOrigin)
	}
	ok("checkpoint", "%s: origin %s, size %d, root %s", path, head.origin, head.size, head.root)
	return head, nil
}

type manifestEntry struct {
	kind string
	size int64
	hash tlog.Hash
}

func verifyManifestFile(path string, k *keys, checkpoints []string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fail("input", "cannot read %s: %v", path, err)
	}
	origin := firstLine(data)
	n, err := openNote(data, origin, k, path)
	if err != nil {
		return err
	}
	ok("signature", "%s is signed by %s", path, sigNames(n))
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) < 4 || lines[1] != manifestMagic ||
		!strings.HasPrefix(lines[2], "time ") || !strings.HasPrefix(lines[3], "reference ") {
		return fail("manifest", "%s is not a %s note (origin, magic, time, reference, entries)",
			path, manifestMagic)
	}
	entries := map[string]manifestEntry{}
	for _, line := range lines[4:] {
		fields := strings.Split(line, " ")
		if len(fields) != 4 || (fields[0] != "tree" && fields[0] != "chain") {
			return fail("manifest", "%s: the line %q is not '<tree|chain> <chain> <size> <hash>'",
				path, line)
		}
		size, sizeErr := strconv.ParseInt(fields[2], 10, 64)
		hash, hashErr := decodeHash(fields[3], "the hash")
		if sizeErr != nil || hashErr != nil {
			return fail("manifest", "%s: the line %q has a malformed size or hash", path, line)
		}
		entries[fields[1]] = manifestEntry{fields[0], size, hash}
	}
	ok("manifest", "%s: origin %s, %s, %s, %d chains", path, origin, lines[2], lines[3], len(entries))
	for _, line := range lines[4:] {
		fmt.Fprintf(stdout, "  %s\n", line)
	}
	matched := map[string]bool{}
	for _, file := range checkpoints {
		head, err := verifyCheckpointFile(file, k, "")
		if err != nil {
			return err
		}
		chain, isOurs := strings.CutPrefix(head.origin, origin+"/")
		entry, listed := entries[chain]
		if !isOurs || !listed || entry.kind != "tree" {
			return fail("manifest", "the manifest lists no tree %q (checkpoint %s)", head.origin, file)
		}
		if entry.size != head.size || entry.hash != head.root {
			return fail("manifest", "the manifest states size %d root %s for %s; %s states size "+
				"%d root %s (a checkpoint of another time?)", entry.size, entry.hash, chain, file,
				head.size, head.root)
		}
		ok("manifest", "%s matches the manifest's entry for %s", file, chain)
		matched[chain] = true
	}
	if len(checkpoints) > 0 {
		for _, line := range lines[4:] {
			fields := strings.Split(line, " ")
			if fields[0] == "tree" && !matched[fields[1]] {
				fmt.Fprintf(stdout, "not checked: no checkpoint of %s was given\n", fields[1])
			}
		}
	}
	return nil
}

// -- command line --------------------------------------------------------------------------

const usage = `usage:
  dl-go-verifier bundle     -key KEYFILE BUNDLE.json
  dl-go-verifier checkpoint -key KEYFILE [-origin ORIGIN] CHECKPOINT
  dl-go-verifier manifest   -key KEYFILE MANIFEST [CHECKPOINT...]
KEYFILE: note verifier keys (<name>+<8 hex>+<base64>, one a line), a PEM public key, or the
raw Ed25519 public key as 64 hex digits. A bundle of "-" is read from standard input.
`

func run(args []string) int {
	if len(args) < 1 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	flags := flag.NewFlagSet(args[0], flag.ContinueOnError)
	keyFile := flags.String("key", "", "the ledger's public key (see usage)")
	origin := flags.String("origin", "", "checkpoint: the origin it must have")
	flags.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	if err := flags.Parse(args[1:]); err != nil {
		return 2
	}
	rest := flags.Args()
	if *keyFile == "" || len(rest) < 1 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	k, err := loadKeys(*keyFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 2
	}
	switch args[0] {
	case "bundle":
		if len(rest) != 1 {
			fmt.Fprint(os.Stderr, usage)
			return 2
		}
		var data []byte
		if rest[0] == "-" {
			data, err = io.ReadAll(os.Stdin)
		} else {
			data, err = os.ReadFile(rest[0])
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "error: cannot read the bundle: %v\n", err)
			return 2
		}
		err = verifyBundle(data, k)
	case "checkpoint":
		if len(rest) != 1 {
			fmt.Fprint(os.Stderr, usage)
			return 2
		}
		_, err = verifyCheckpointFile(rest[0], k, *origin)
	case "manifest":
		err = verifyManifestFile(rest[0], k, rest[1:])
	default:
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL %v\n", err)
		return 1
	}
	return 0
}

func main() {
	os.Exit(run(os.Args[1:]))
}
