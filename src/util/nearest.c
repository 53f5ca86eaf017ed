// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * "Did you mean": how many edits apart two short words are (optimal string
 * alignment: the typo of two swapped letters is one edit, as people make
 * it), and how near is near enough to name the known word in a message.
 */
#include "util/nearest.h"

#include <string.h>

#define WORD_MAX 64

size_t dsfs_nearest_distance(const char *a, const char *b)
{
	return dsfs_nearest_distance_n(a, strlen(a), b, strlen(b));
}

size_t dsfs_nearest_distance_n(const char *a, size_t la, const char *b, size_t lb)
{
	size_t d[WORD_MAX + 1][WORD_MAX + 1];

	if (la >= WORD_MAX || lb >= WORD_MAX)
		return (size_t)-1;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

bool dsfs_nearest_close(const char *word, size_t d)
{
	return d <= (strlen(word) > 6 ? 3 : 2);
}

void dsfs_nearest_offer(struct dsfs_nearest *n, const char *cand, size_t len)
{
	size_t d = dsfs_nearest_distance_n(n->typed, n->len, cand, len);

	if (d < n->d) {
		n->best = cand;
		n->best_len = len;
		n->d = d;
	}
}
