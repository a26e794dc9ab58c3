package cli

import "strings"

// Suggest returns the candidate closest to word for a "did you mean"
// hint: within a Levenshtein distance of 2 (and less than the candidate's
// length, so that one-letter names are not suggested for anything), or
// one that word is a prefix of. It returns "" when none is close, and
// the first of equally close candidates.
func Suggest(word string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		d := Levenshtein(word, c)
		if len(word) >= 2 && strings.HasPrefix(c, word) && d > 1 {
			d = 1 // an abbreviation is as good as a typo
		}
		if d < bestDist && d < len(c) && c != word {
			best, bestDist = c, d
		}
	}
	return best
}

// Levenshtein returns the edit distance between a and b: the fewest
// single-character insertions, deletions and substitutions that turn one
// into the other, counted in runes.
func Levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
