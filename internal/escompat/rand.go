package escompat

import (
	"math/rand/v2"
	"sync"
)

// Rand is a seeded source of fault decisions and random ids. It is safe for
// concurrent use; the same seed gives the same draws unless goroutines race
// for them.
type Rand struct {
	mu sync.Mutex
	r  *rand.Rand
}

// NewRand returns a Rand seeded with seed.
func NewRand(seed uint64) *Rand {
	return &Rand{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Chance draws true with probability p: never for p <= 0 and always for
// p >= 1, neither of which draws.
func (r *Rand) Chance(p float64) bool {
	if p <= 0 {
		return false
	}
	if p >= 1 {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.r.Float64() < p
}

// ID returns n random characters of the URL-safe base64 alphabet, as
// Elasticsearch's UUIDs are made of.
func (r *Rand) ID(n int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return randomID(n, r.r.IntN)
}

// Uint64 draws 64 random bits.
func (r *Rand) Uint64() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.r.Uint64()
}

// RandomID is Rand.ID from the unseeded global source: an id that differs
// from run to run.
func RandomID(n int) string { return randomID(n, rand.IntN) }

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func randomID(n int, intN func(int) int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = idAlphabet[intN(len(idAlphabet))]
	}
	return string(b)
}
