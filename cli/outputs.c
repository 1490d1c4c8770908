/* opl command line — outputs never destroy inputs (cli/outputs.h). */
#include "cli/outputs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/files.h"

static int given(const cli_file *f) { return f->path && f->path[0]; }

int cli_outputs_check(const char *verb, const cli_file *outs, int nout, const cli_file *ins, int nin) {
  for (int i = 0; i < nout; i++) {
    if (!given(&outs[i])) continue;
    for (int j = 0; j < nin; j++) {
      /* an input that does not exist is reported by the verb when it reads it */
      if (!given(&ins[j]) || access(ins[j].path, F_OK) != 0 || !opl_same_file(outs[i].path, ins[j].path)) continue;
      fprintf(stderr,
              "opl %s: %s '%s' is the same file as %s '%s' (writing it would destroy the input); choose another "
              "output name\n",
              verb, outs[i].what, outs[i].path, ins[j].what, ins[j].path);
      return 2;
    }
    for (int j = 0; j < i; j++) {
      if (!given(&outs[j]) || !opl_same_file(outs[i].path, outs[j].path)) continue;
      fprintf(stderr, "opl %s: %s '%s' and %s '%s' are the same file (one output would overwrite the other)\n", verb,
              outs[j].what, outs[j].path, outs[i].what, outs[i].path);
      return 2;
    }
  }
  for (int i = 0; i < nout; i++) {
    if (!given(&outs[i])) continue;
    int removed = 0;
    opl_err e = {0};
    if (opl_tmp_cleanup(outs[i].path, &removed, &e))
      fprintf(stderr, "opl %s: note: %s\n", verb, strncmp(e.msg, "files: ", 7) ? e.msg : e.msg + 7);
    if (removed > 0)
      fprintf(stderr, "opl %s: note: removed %d stale temporary file%s '%s.tmp.<pid>' left by a process that no longer "
                      "runs\n", verb, removed, removed == 1 ? "" : "s", outs[i].path);
  }
  return 0;
}

void cli_file_state_get(const char *path, cli_file_state *s) {
  struct stat sb;
  memset(s, 0, sizeof *s);
  if (!path || stat(path, &sb) != 0) return;
  s->exists = 1;
  s->dev = sb.st_dev;
  s->ino = sb.st_ino;
  s->mtime = sb.st_mtim;
}

int cli_drop_orphan_log(const char *verb, const char *model, const cli_file_state *before, const char *csv) {
  if (!csv || !*csv) return 0;
  cli_file_state now;
  cli_file_state_get(model, &now);
  int unchanged = now.exists == before->exists &&
                  (!now.exists || (now.dev == before->dev && now.ino == before->ino &&
                                   now.mtime.tv_sec == before->mtime.tv_sec && now.mtime.tv_nsec == before->mtime.tv_nsec));
  if (!unchanged) return 0;
  if (unlink(csv) != 0) {
    if (errno != ENOENT) fprintf(stderr, "opl %s: note: cannot remove '%s': %s\n", verb, csv, strerror(errno));
    return 0;
  }
  fprintf(stderr, "opl %s: removed the metrics log '%s': this run wrote no checkpoint for it to describe\n", verb, csv);
  return 1;
}
