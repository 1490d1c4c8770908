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
      fprintf(stderr, "opl %s: note: %s\n", verb, opl_err_text(&e));
    if (removed > 0)
      fprintf(stderr, "opl %s: note: removed %d stale temporary file%s '%s.tmp.<pid>' left by a process that no longer "
                      "runs\n", verb, removed, removed == 1 ? "" : "s", outs[i].path);
  }
  return 0;
}
