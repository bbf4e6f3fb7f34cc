package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/wasmbed/wasmbed/internal/pki"
)

// Token files and limits.
const (
	// TokensFile holds the registered tokens, hashed, in the tokens directory.
	TokensFile = "tokens.json"
	// SpentFile holds one line per spent token, appended and synced before the
	// certificate the token paid for is returned.
	SpentFile = "spent"
	// MinTokenLength is the shortest bootstrap token accepted: tokens are stored as a
	// plain SHA-256, which is only safe for random tokens.
	MinTokenLength = 16
	// DefaultTokenTTL is how long a token registered without an expiry stays valid,
	// counted from when the gateway first registered it.
	DefaultTokenTTL = 24 * time.Hour
	tokenHashPrefix = "sha256:"
)

// Errors of Tokens.Approve, wrapped in the error of the Signer (and pki.ErrDenied).
var (
	// ErrTokenRefused: the token is unknown, spent, expired or bound to another device.
	ErrTokenRefused = errors.New("unknown, spent or expired bootstrap token")
	// ErrTokenStore: the token could not be marked spent on disk, so it was not spent.
	ErrTokenStore = errors.New("bootstrap token store")
)

// Token is a bootstrap token to register: a secret a device presents once to enroll
// as Identity, until Expires.
type Token struct {
	// Secret is the token as the device sends it. Leave it empty and set Hash instead
	// to keep the token itself off the gateway.
	Secret string
	// Hash is "sha256:<hex>" of the token; computed from Secret when empty.
	Hash string
	// Identity is the only device the token enrolls.
	Identity pki.Identity
	// Expires ends the token; zero means the Tokens' TTL after it is first registered.
	Expires time.Time
}

// HashToken returns the stored form of a token, "sha256:<hex>".
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return tokenHashPrefix + hex.EncodeToString(sum[:])
}

// tokenRecord is one registered token as stored in TokensFile.
type tokenRecord struct {
	Hash    string    `json:"hash"`
	Device  string    `json:"device"`
	Expires time.Time `json:"expires"`

	id    pki.Identity
	spent bool
}

type tokenFile struct {
	Tokens []*tokenRecord `json:"tokens"`
}

// Tokens is the gateway's durable set of one-time bootstrap tokens, each bound to one
// device identity and valid until it expires. It is the pki.Approver of local
// enrollment: a request is approved when it carries a live token bound to the identity
// it asks for, and the token is then spent, on disk, before the certificate is
// returned. Only hashes are stored: in TokensFile (registered tokens) and SpentFile
// (spent ones), in a directory of the gateway's state, so that a spent token stays
// spent when the gateway restarts.
type Tokens struct {
	dir string
	ttl time.Duration
	now func() time.Time

	mu        sync.Mutex
	byHash    map[string]*tokenRecord
	spent     *os.File
	spentSize int64 // bytes of whole lines in the spent log
}

// OpenTokens opens (creating it) the token directory dir, loading the tokens and spent
// marks it holds. Tokens registered without an expiry expire ttl after registration
// (DefaultTokenTTL when zero). Close releases it.
func OpenTokens(dir string, ttl time.Duration) (*Tokens, error) {
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open tokens: %w", err)
	}
	t := &Tokens{dir: dir, ttl: ttl, now: time.Now, byHash: map[string]*tokenRecord{}}
	data, err := os.ReadFile(filepath.Join(dir, TokensFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("open tokens: %w", err)
	default:
		var f tokenFile
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("open tokens: %s: %w", TokensFile, err)
		}
		for _, r := range f.Tokens {
			if err := r.parse(); err != nil {
				return nil, fmt.Errorf("open tokens: %s: %w", TokensFile, err)
			}
			t.byHash[r.Hash] = r
		}
	}
	if err := t.loadSpent(); err != nil {
		return nil, fmt.Errorf("open tokens: %w", err)
	}
	t.spent, err = os.OpenFile(filepath.Join(dir, SpentFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open tokens: %w", err)
	}
	// Drop a line a crash cut short, so that the next one starts on a line of its own.
	if err := t.spent.Truncate(t.spentSize); err != nil {
		t.spent.Close()
		return nil, fmt.Errorf("open tokens: %w", err)
	}
	return t, nil
}

func (r *tokenRecord) parse() error {
	if err := checkTokenHash(r.Hash); err != nil {
		return err
	}
	ns, name, _ := strings.Cut(r.Device, "/")
	id, err := pki.NewIdentity(ns, name)
	if err != nil {
		return fmt.Errorf("token %s: %w", r.Hash, err)
	}
	r.id = id
	return nil
}

func checkTokenHash(h string) error {
	hx, ok := strings.CutPrefix(h, tokenHashPrefix)
	if _, err := hex.DecodeString(hx); !ok || err != nil || len(hx) != 2*sha256.Size || strings.ToLower(hx) != hx {
		return fmt.Errorf("token hash %.80q is not sha256:<64 lower-case hex digits>", h)
	}
	return nil
}

// loadSpent reads SpentFile: one "<hash> <time>" line per spent token. A last line
// without its newline is a write that a crash cut short: its token was never used.
func (t *Tokens) loadSpent() error {
	data, err := os.ReadFile(filepath.Join(t.dir, SpentFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	data = data[:bytes.LastIndexByte(data, '\n')+1]
	t.spentSize = int64(len(data))
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		h, _, _ := strings.Cut(sc.Text(), " ")
		if err := checkTokenHash(h); err != nil {
			return fmt.Errorf("%s line %d: %w", SpentFile, n, err)
		}
		if r := t.byHash[h]; r != nil {
			r.spent = true
		} else {
			// Spent before its registration was lost: keep it spent all the same.
			t.byHash[h] = &tokenRecord{Hash: h, spent: true}
		}
	}
	return sc.Err()
}

// Close closes the spent log.
func (t *Tokens) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.spent == nil {
		return nil
	}
	err := t.spent.Close()
	t.spent = nil
	return err
}

// Add registers tokens and stores them. A token registered before keeps what it had:
// a spent token stays spent and an expiry is never extended, so the same token file
// can be given at every start. A token already bound to another device is an error.
func (t *Tokens) Add(tokens ...Token) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	added := map[string]*tokenRecord{}
	for _, tok := range tokens {
		h := tok.Hash
		switch {
		case tok.Secret != "" && h != "":
			return errors.New("add token: set Secret or Hash, not both")
		case tok.Secret != "":
			if len(tok.Secret) < MinTokenLength {
				return fmt.Errorf("add token for %s: shorter than %d characters", tok.Identity, MinTokenLength)
			}
			h = HashToken(tok.Secret)
		}
		if err := checkTokenHash(h); err != nil {
			return fmt.Errorf("add token for %s: %w", tok.Identity, err)
		}
		if err := tok.Identity.Validate(); err != nil {
			return fmt.Errorf("add token: %w", err)
		}
		prev := t.byHash[h]
		if prev == nil {
			prev = added[h]
		}
		switch {
		case prev != nil && prev.Device == "": // spent, registration lost
			continue
		case prev != nil && prev.id != tok.Identity:
			return fmt.Errorf("add token: a token for %s is already registered for %s", tok.Identity, prev.id)
		case prev != nil:
			continue
		}
		exp := tok.Expires
		if exp.IsZero() {
			exp = now.Add(t.ttl)
		}
		added[h] = &tokenRecord{Hash: h, Device: tok.Identity.String(), Expires: exp.UTC().Truncate(time.Second), id: tok.Identity}
	}
	if len(added) == 0 {
		return nil
	}
	f := tokenFile{}
	for _, r := range t.byHash {
		if r.Device != "" {
			f.Tokens = append(f.Tokens, r)
		}
	}
	for _, r := range added {
		f.Tokens = append(f.Tokens, r)
	}
	data, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		return fmt.Errorf("add tokens: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(t.dir, TokensFile), data); err != nil {
		return fmt.Errorf("add tokens: %w", err)
	}
	for h, r := range added {
		t.byHash[h] = r
	}
	return nil
}

// live returns the identity a token enrolls, or why it enrolls none.
func (t *Tokens) live(secret string) (pki.Identity, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, err := t.liveLocked(secret)
	if err != nil {
		return pki.Identity{}, err
	}
	return r.id, nil
}

func (t *Tokens) liveLocked(secret string) (*tokenRecord, error) {
	r := t.byHash[HashToken(secret)]
	switch {
	case r == nil || r.Device == "":
		return nil, fmt.Errorf("%w: unknown token", ErrTokenRefused)
	case r.spent:
		return nil, fmt.Errorf("%w: token for %s already spent", ErrTokenRefused, r.id)
	case !t.now().Before(r.Expires):
		return nil, fmt.Errorf("%w: token for %s expired at %s", ErrTokenRefused, r.id, r.Expires.Format(time.RFC3339))
	}
	return r, nil
}

type tokenKey struct{}

// Approve spends the request's token (from the context, see Enroller) if it is live
// and bound to the requested identity. The spent mark is on disk before it returns.
func (t *Tokens) Approve(ctx context.Context, req pki.SignRequest) error {
	secret, _ := ctx.Value(tokenKey{}).(string)
	t.mu.Lock()
	defer t.mu.Unlock()
	r, err := t.liveLocked(secret)
	if err != nil {
		return err
	}
	if r.id != req.Identity {
		return fmt.Errorf("%w: token is for %s, not %s", ErrTokenRefused, r.id, req.Identity)
	}
	if t.spent == nil {
		return fmt.Errorf("%w: closed", ErrTokenStore)
	}
	line := r.Hash + " " + t.now().UTC().Format(time.RFC3339) + "\n"
	_, err = t.spent.WriteString(line)
	if err == nil {
		err = t.spent.Sync()
	}
	if err != nil {
		// Not spent: take back what may have been written, so the log stays whole.
		_ = t.spent.Truncate(t.spentSize)
		return fmt.Errorf("%w: record spent token: %w", ErrTokenStore, err)
	}
	t.spentSize += int64(len(line))
	r.spent = true
	return nil
}

// ParseTokenFile parses the token file format: one "<token> <namespace>/<name>
// [<expiry, RFC 3339>]" per line, "#" starting a comment. A token written
// "sha256:<hex>" is the hash of the token, so that the token itself need not reach the
// gateway.
func ParseTokenFile(data []byte) ([]Token, error) {
	var out []Token
	for n, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 && len(f) != 3 {
			return nil, fmt.Errorf("tokens line %d: want <token> <namespace>/<name> [<expiry>]", n+1)
		}
		ns, name, _ := strings.Cut(f[1], "/")
		id, err := pki.NewIdentity(ns, name)
		if err != nil {
			return nil, fmt.Errorf("tokens line %d: %w", n+1, err)
		}
		tok := Token{Identity: id}
		if strings.HasPrefix(f[0], tokenHashPrefix) {
			if err := checkTokenHash(f[0]); err != nil {
				return nil, fmt.Errorf("tokens line %d: %w", n+1, err)
			}
			tok.Hash = f[0]
		} else if len(f[0]) < MinTokenLength {
			return nil, fmt.Errorf("tokens line %d: token shorter than %d characters", n+1, MinTokenLength)
		} else {
			tok.Secret = f[0]
		}
		if len(f) == 3 {
			if tok.Expires, err = time.Parse(time.RFC3339, f[2]); err != nil {
				return nil, fmt.Errorf("tokens line %d: expiry: %w", n+1, err)
			}
		}
		out = append(out, tok)
	}
	return out, nil
}
