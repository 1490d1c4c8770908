/* Files as outputs (core/files.h): the same-file test on device and inode (hard links, symbolic
 * links, other spellings, names that do not exist yet), atomic writes (the final name never holds
 * a partial file; an unwritable directory leaves nothing), the cleanup of temporaries of dead
 * processes only, and the free space of a file system. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/files.h"
#include "tests/tap.h"
#include "tests/tmpdir.h"

static char dir[64];

#define LOCAL_PATH(var, name) \
  char var[256];              \
  snprintf(var, sizeof var, "%s/%s", dir, name)

static int exists(const char *p) {
  struct stat sb;
  return lstat(p, &sb) == 0;
}

static int write_text(const char *p, const char *text) {
  FILE *f = fopen(p, "w");
  if (!f) return -1;
  fputs(text, f);
  return fclose(f);
}

static int read_text(const char *p, char *buf, size_t cap) {
  FILE *f = fopen(p, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, cap - 1, f);
  buf[n] = 0;
  fclose(f);
  return 0;
}

/* A pid that no longer runs: a child that exited and was reaped. */
static long dead_pid(void) {
  pid_t p = fork();
  if (p == 0) _exit(0);
  if (p < 0) return -1;
  waitpid(p, NULL, 0);
  return (long)p;
}

static void test_same_file(void) {
  LOCAL_PATH(a, "a.h5");
  LOCAL_PATH(b, "b.h5");
  LOCAL_PATH(hard, "hard.h5");
  LOCAL_PATH(soft, "soft.h5");
  LOCAL_PATH(other_spelling, "sub/../a.h5");
  LOCAL_PATH(sub, "sub");
  LOCAL_PATH(new1, "new.h5");
  LOCAL_PATH(new2, "sub/../new.h5");
  LOCAL_PATH(new3, "sub/new.h5");
  mkdir(sub, 0755);
  write_text(a, "a");
  write_text(b, "b");
  ok(link(a, hard) == 0, "hard link made");
  ok(symlink("a.h5", soft) == 0, "symbolic link made");
  ok(opl_same_file(a, a), "a file is itself");
  ok(!opl_same_file(a, b), "two files are different");
  ok(opl_same_file(a, hard), "a hard link of a file is the same file");
  ok(opl_same_file(soft, a), "a symbolic link of a file is the same file");
  ok(opl_same_file(other_spelling, a), "another spelling of the name (sub/../a.h5) is the same file");
  char cwd[4096];
  if (getcwd(cwd, sizeof cwd) && chdir(dir) == 0) {
    ok(opl_same_file("a.h5", "./hard.h5"), "relative names: a.h5 and ./hard.h5 are the same file");
    ok(opl_same_file("new.h5", "./new.h5"), "relative names that do not exist: new.h5 and ./new.h5 are the same");
    if (chdir(cwd) != 0) diag("cannot go back to %s", cwd);
  }
  ok(!opl_same_file(a, new1), "an existing file is not a name that does not exist");
  ok(opl_same_file(new1, new2), "two spellings of one name that does not exist yet are the same");
  ok(!opl_same_file(new1, new3), "the same last name in two directories is not the same");
  ok(!opl_same_file(a, NULL) && !opl_same_file("", a), "NULL and empty names are never the same");
  unlink(hard);
  unlink(soft);
  unlink(a);
  unlink(b);
  rmdir(sub);
}

static void test_atomic(void) {
  LOCAL_PATH(p, "plot.png");
  opl_err e = {0};
  write_text(p, "old contents");
  opl_atomic *a = opl_atomic_open(p, &e);
  ok(a != NULL, "atomic open (%s)", a ? "ok" : e.msg);
  if (!a) return;
  char tmp[512];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid());
  ok(!strcmp(opl_atomic_tmp_path(a), tmp), "the temporary name is <path>.tmp.<pid>");
  fputs("new contents", opl_atomic_stream(a));
  fflush(opl_atomic_stream(a));
  char buf[64];
  read_text(p, buf, sizeof buf);
  ok(!strcmp(buf, "old contents"), "while writing, the final name keeps the old file");
  ok(opl_atomic_commit(&a, &e) == OPL_OK && a == NULL, "commit");
  read_text(p, buf, sizeof buf);
  ok(!strcmp(buf, "new contents"), "after commit the final name holds the new file");
  ok(!exists(tmp), "no temporary file is left");

  a = opl_atomic_open(p, &e);
  if (a) fputs("abandoned", opl_atomic_stream(a));
  opl_atomic_abort(&a);
  read_text(p, buf, sizeof buf);
  ok(a == NULL && !strcmp(buf, "new contents") && !exists(tmp), "abort leaves the old file and no temporary");

  LOCAL_PATH(ro, "readonly");
  LOCAL_PATH(inro, "readonly/x.png");
  mkdir(ro, 0555);
  e = (opl_err){0};
  a = opl_atomic_open(inro, &e);
  if (a) { /* running as root: permissions do not apply */
    skip("permissions do not apply to this user", "an unwritable directory: error, no file");
    opl_atomic_abort(&a);
  } else {
    ok(e.status == OPL_ERR_IO && strstr(e.msg, "x.png") && !exists(inro),
       "an unwritable directory: OPL_ERR_IO naming the file, no file (%s)", e.msg);
  }
  rmdir(ro);
  LOCAL_PATH(nodir, "no/such/dir/x.png");
  a = opl_atomic_open(nodir, &e);
  ok(!a && e.status == OPL_ERR_IO, "a missing directory: OPL_ERR_IO");
  LOCAL_PATH(file, "file.txt");
  LOCAL_PATH(under_file, "file.txt/x.png");
  write_text(file, "a file, not a directory");
  e = (opl_err){0};
  a = opl_atomic_open(under_file, &e);
  ok(!a && e.status == OPL_ERR_IO && !exists(under_file), "a path under a regular file: OPL_ERR_IO, no file (%s)",
     e.msg);
  opl_atomic_abort(&a);
  unlink(file);
  ok(opl_atomic_open("", &e) == NULL && e.status == OPL_ERR_ARG, "an empty path: OPL_ERR_ARG");
  unlink(p);
}

static void test_cleanup(void) {
  LOCAL_PATH(p, "m.h5");
  long dead = dead_pid();
  char stale[512], live[512], self[512], other[512], notpid[512], stale_other[512];
  snprintf(stale, sizeof stale, "%s.tmp.%ld", p, dead);
  snprintf(live, sizeof live, "%s.tmp.%ld", p, (long)getppid());
  snprintf(self, sizeof self, "%s.tmp.%ld", p, (long)getpid());
  snprintf(notpid, sizeof notpid, "%s.tmp.%ldx", p, dead);
  snprintf(other, sizeof other, "%s/m.h5x.tmp.%ld", dir, dead);
  snprintf(stale_other, sizeof stale_other, "%s/d.h5.tmp.%ld", dir, dead);
  const char *all[] = {p, stale, live, self, notpid, other, stale_other};
  for (int i = 0; i < 7; i++) write_text(all[i], "x");
  int removed = -1;
  opl_err e = {0};
  int rc = opl_tmp_cleanup(p, &removed, &e);
  ok(rc == OPL_OK && removed == 1, "cleanup: one stale temporary removed (rc %d, removed %d)", rc, removed);
  ok(!exists(stale), "the temporary of a dead process (pid %ld) is gone", dead);
  ok(exists(live), "the temporary of a running process (the parent) is kept");
  ok(exists(self), "this process's own temporary is kept");
  ok(exists(p) && exists(notpid) && exists(other) && exists(stale_other),
     "the output itself, names that are not <path>.tmp.<pid>, and other outputs' temporaries are kept");
  for (int i = 0; i < 7; i++) unlink(all[i]);
  LOCAL_PATH(missing, "no/such/m.h5");
  ok(opl_tmp_cleanup(missing, &removed, &e) == OPL_OK && removed == 0, "a missing directory holds no temporaries");
}

static void test_free_space(void) {
  uint64_t b = 0, b2 = 0;
  opl_err e = {0};
  LOCAL_PATH(p, "not_yet.h5");
  int rc = opl_fs_free_bytes(dir, &b, &e);
  ok(rc == OPL_OK && b > 0, "free space of the scratch directory: %llu bytes", (unsigned long long)b);
  ok(opl_fs_free_bytes(p, &b2, &e) == OPL_OK && b2 > 0, "free space for a name that does not exist yet");
  ok(opl_fs_free_bytes("/no/such/dir/x", &b, &e) == OPL_ERR_IO && strstr(e.msg, "/no/such/dir"),
     "a missing directory: OPL_ERR_IO naming it");
}

int main(void) {
  tap_begin();
  if (!test_tmpdir_make(dir, "files")) return tap_end();
  test_same_file();
  test_atomic();
  test_cleanup();
  test_free_space();
  test_tmpdir_remove(dir);
  return tap_end();
}
