/* opl tests — scratch directories (see tmpdir.h). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tests/tap.h"
#include "tests/tmpdir.h"

int test_tmpdir_make(char *dir, const char *tag) {
  snprintf(dir, 64, "/tmp/opl_%s_XXXXXX", tag);
  if (!mkdtemp(dir)) {
    ok(0, "mkdtemp %s", dir);
    return 0;
  }
  return 1;
}

void test_tmpdir_remove(const char *dir) {
  DIR *d = opendir(dir);
  char p[512];
  for (struct dirent *e; d && (e = readdir(d));) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (unlink(p) != 0) rmdir(p);
  }
  if (d) closedir(d);
  rmdir(dir);
}
