/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `dsfs wait TASK...`: waits for tasks of a mounted dsfs from outside the
 * daemon, through the mount's own files, so a script that started many
 * tasks waits for all of them at once (docs/control.md, "Waiting for many
 * tasks").
 */
#ifndef DSFS_WAITCMD_H
#define DSFS_WAITCMD_H

/* How a task ended, as `dsfs wait` reports it. */
enum dsfs_wait_end {
	DSFS_WAIT_UNKNOWN = 0, /* a word of no known ending (or still running) */
	DSFS_WAIT_SUCCEEDED,
	DSFS_WAIT_FAILED,
	DSFS_WAIT_CANCELLED,
	DSFS_WAIT_TIMEDOUT,
};

/*
 * The ending the first word of line names, in any dialect's spelling
 * (SUCCEEDED, succeeded, DONE; FAILED, failed, error; CANCELLED, canceled,
 * ABORTED; TIMEDOUT), case aside; DSFS_WAIT_UNKNOWN for any other word.
 * *rest, when not NULL, points past the word and the ':' and blanks after it.
 */
enum dsfs_wait_end dsfs_waitcmd_word(const char *line, const char **rest);

/* The word `dsfs wait` prints for an ending ("SUCCEEDED"). */
const char *dsfs_waitcmd_name(enum dsfs_wait_end end);

/*
 * Runs `dsfs wait` with argv[0] == "wait": 0 when every task succeeded,
 * 1 when one failed, was cancelled or timed out, 2 on a usage error (a path
 * that is not a task is named). Prints on stdout and stderr.
 */
int dsfs_waitcmd_main(int argc, char *argv[]);

#endif
