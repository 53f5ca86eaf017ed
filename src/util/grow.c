// SPDX-License-Identifier: GPL-2.0-or-later
/* Growing an array by doubling (grow.h). */
#include "util/grow.h"

#include <stdint.h>
#include <stdlib.h>

void *dsfs_grow(void *p, size_t *cap, size_t need, size_t elem, size_t first, size_t max)
{
	size_t n = *cap ? *cap : (first ? first : 1);
	void *q;

	if (need <= *cap)
		return p;
	if (max && need > max)
		return NULL;
	while (n < need) {
		if (n > SIZE_MAX / 2)
			return NULL;
		n *= 2;
	}
	if (max && n > max)
		n = max;
	if (elem && n > SIZE_MAX / elem)
		return NULL;
	q = realloc(p, n * elem);
	if (!q)
		return NULL;
	*cap = n;
	return q;
}
