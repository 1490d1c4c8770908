/* opl tests — a scratch directory for tests that write files. */
#ifndef OPL_TEST_TMPDIR_H
#define OPL_TEST_TMPDIR_H

/* Make a fresh directory /tmp/opl_<tag>_XXXXXX, its name into dir[64]. Returns 1, or 0 after
 * reporting a failing TAP case. */
int test_tmpdir_make(char *dir, const char *tag);
/* Remove dir with the files and empty directories directly inside it. */
void test_tmpdir_remove(const char *dir);

#endif
