// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests for src/mount/waitcmd.c: the words of a task's end, in every dialect's spelling. */
#include "tap.h"
#include "mount/waitcmd.h"

static void word(const char *line, enum dsfs_wait_end want, const char *rest)
{
	const char *got_rest = NULL;

	is_int(dsfs_waitcmd_word(line, &got_rest), want, line);
	if (rest)
		is_str(got_rest, rest, "what follows the word");
}

int main(void)
{
	/* every dialect's words of an end, in its case */
	word("SUCCEEDED\n", DSFS_WAIT_SUCCEEDED, "\n");
	word("succeeded", DSFS_WAIT_SUCCEEDED, "");
	word("DONE", DSFS_WAIT_SUCCEEDED, NULL);
	word("FAILED: the array said no", DSFS_WAIT_FAILED, "the array said no");
	word("failed", DSFS_WAIT_FAILED, NULL);
	word("error: disk full", DSFS_WAIT_FAILED, "disk full");
	word("CANCELLED", DSFS_WAIT_CANCELLED, NULL);
	word("canceled", DSFS_WAIT_CANCELLED, NULL);
	word("ABORTED", DSFS_WAIT_CANCELLED, NULL);
	word("TIMEDOUT after 3600 s", DSFS_WAIT_TIMEDOUT, "after 3600 s");
	/* a word that only starts like one is no end */
	word("FAILEDX", DSFS_WAIT_UNKNOWN, NULL);
	word("RUNNING", DSFS_WAIT_UNKNOWN, NULL);
	word("", DSFS_WAIT_UNKNOWN, NULL);
	is_str(dsfs_waitcmd_name(DSFS_WAIT_CANCELLED), "CANCELLED", "the printed word");

	return done_testing();
}
