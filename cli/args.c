/* opl command line — table-driven long options with --config FILE.ini. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli/cli.h"

static const cli_opt *find(const cli_opt *opts, int n, const char *name, size_t len) {
  for (int i = 0; i < n; i++)
    if (strlen(opts[i].name) == len && !strncmp(opts[i].name, name, len)) return &opts[i];
  return NULL;
}

/* 1 if the option's help text documents the -1 sentinel ("(-1: what it means)"). */
static int has_sentinel(const cli_opt *o) { return o->help && strstr(o->help, "-1:") != NULL; }

/* Store text into the option's destination; 0 on success, else prints an error. Integers are
 * counts, sizes, indices, seeds or thread numbers: negative values are refused, except -1 for an
 * option whose help says what -1 means. */
static int set_value(const char *verb, const char *where, const cli_opt *o, const char *text) {
  char *end = NULL;
  errno = 0;
  switch (o->type) {
    case CLI_INT: {
      long long v = strtoll(text, &end, 10);
      if (errno || end == text || *end) {
        fprintf(stderr, "opl %s: %s--%s expects an integer, got '%s'\n", verb, where, o->name, text);
        return 2;
      }
      if (v < 0 && !(v == -1 && has_sentinel(o))) {
        fprintf(stderr, "opl %s: %s--%s is %lld, expected an integer >= 0%s\n", verb, where, o->name, v,
                has_sentinel(o) ? " (or -1, see --help)" : "");
        return 2;
      }
      *(int64_t *)o->dst = v;
      return 0;
    }
    case CLI_DOUBLE: {
      double v = strtod(text, &end);
      if (errno || end == text || *end || !isfinite(v)) {
        fprintf(stderr, "opl %s: %s--%s expects a finite number, got '%s'\n", verb, where, o->name, text);
        return 2;
      }
      *(double *)o->dst = v;
      return 0;
    }
    case CLI_STRING: {
      /* Copies live until exit, like argv; one replaced by a later value (a command-line flag
       * overriding --config) is freed. The table keeps them reachable. */
      static char *owned[256];
      static int nowned;
      char *copy = strdup(text);
      if (!copy) return 2;
      const char *old = *(const char **)o->dst;
      for (int i = 0; i < nowned; i++)
        if (owned[i] == old) {
          free(owned[i]);
          owned[i] = owned[--nowned];
          break;
        }
      if (nowned < 256) owned[nowned++] = copy;
      *(const char **)o->dst = copy;
      return 0;
    }
    case CLI_FLAG: {
      if (!strcmp(text, "1") || !strcmp(text, "true") || !strcmp(text, "yes")) *(int *)o->dst = 1;
      else if (!strcmp(text, "0") || !strcmp(text, "false") || !strcmp(text, "no")) *(int *)o->dst = 0;
      else {
        fprintf(stderr, "opl %s: %s--%s expects true or false, got '%s'\n", verb, where, o->name, text);
        return 2;
      }
      return 0;
    }
  }
  return 2;
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  char *e = s + strlen(s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) *--e = 0;
  return s;
}

/* Read the config file: a regular file (a directory, a device such as /dev/zero or a FIFO is
 * refused: opened without blocking, checked with fstat), lines of any length. */
static int read_config(const char *verb, const char *path, const cli_opt *opts, int n) {
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb) != 0) {
    fprintf(stderr, "opl %s: cannot open config file '%s': %s\n", verb, path, strerror(errno));
    if (fd >= 0) close(fd);
    return 2;
  }
  if (!S_ISREG(sb.st_mode)) {
    fprintf(stderr, "opl %s: config file '%s' is %s, expected a regular file of 'key = value' lines\n", verb, path,
            S_ISDIR(sb.st_mode) ? "a directory" : S_ISCHR(sb.st_mode) || S_ISBLK(sb.st_mode) ? "a device"
            : S_ISFIFO(sb.st_mode) ? "a pipe" : S_ISSOCK(sb.st_mode) ? "a socket" : "not a regular file");
    close(fd);
    return 2;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  FILE *f = fdopen(fd, "r");
  if (!f) {
    fprintf(stderr, "opl %s: cannot read config file '%s': %s\n", verb, path, strerror(errno));
    close(fd);
    return 2;
  }
  char *line = NULL;
  size_t cap = 0;
  int lineno = 0, rc = 0;
  while (!rc && getline(&line, &cap, f) >= 0) {
    lineno++;
    char *s = trim(line);
    if (!*s || *s == '#' || *s == ';' || *s == '[') continue;
    char *eq = strchr(s, '=');
    if (!eq) {
      fprintf(stderr, "opl %s: %s:%d: expected 'key = value', got '%s'\n", verb, path, lineno, s);
      rc = 2;
      break;
    }
    *eq = 0;
    char *key = trim(s), *val = trim(eq + 1);
    const cli_opt *o = find(opts, n, key, strlen(key));
    if (!o) {
      fprintf(stderr, "opl %s: %s:%d: unknown key '%s' (keys are the long options of 'opl %s --help')\n",
              verb, path, lineno, key, verb);
      rc = 2;
      break;
    }
    char where[600];
    snprintf(where, sizeof where, "%s:%d: ", path, lineno);
    rc = set_value(verb, where, o, val);
  }
  if (!rc && ferror(f)) {
    fprintf(stderr, "opl %s: cannot read config file '%s': %s\n", verb, path, strerror(errno));
    rc = 2;
  }
  free(line);
  fclose(f);
  return rc;
}

static void help(const char *verb, const char *usage, const cli_opt *opts, int n) {
  printf("usage: opl %s %s\n\noptions:\n", verb, usage);
  for (int i = 0; i < n; i++) {
    char left[64];
    const char *mv = opts[i].type == CLI_INT ? " N" : opts[i].type == CLI_DOUBLE ? " X"
                     : opts[i].type == CLI_STRING ? " S" : "";
    snprintf(left, sizeof left, "--%s%s", opts[i].name, mv);
    printf("  %-22s %s", left, opts[i].help);
    /* Help text that says "required", or names its own default, gets no default printed. */
    int required = strstr(opts[i].help, "required") != NULL || strstr(opts[i].help, "(default") != NULL;
    switch (required ? CLI_FLAG : opts[i].type) {
      case CLI_INT: printf(" (default %lld)", (long long)*(int64_t *)opts[i].dst); break;
      case CLI_DOUBLE: printf(" (default %g)", *(double *)opts[i].dst); break;
      case CLI_STRING:
        if (*(const char **)opts[i].dst) printf(" (default %s)", *(const char **)opts[i].dst);
        break;
      default: break;
    }
    printf("\n");
  }
  printf("  %-22s %s\n  %-22s %s\n", "--config FILE.ini", "read options from a file (keys = option names)",
         "--help", "this text");
}

int cli_parse(const char *verb, const char *usage, int argc, char **argv, const cli_opt *opts,
              int nopts, char **pos, int maxpos, int *npos) {
  *npos = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      help(verb, usage, opts, nopts);
      return 1;
    }
    if (!strncmp(argv[i], "--config", 8) && (argv[i][8] == 0 || argv[i][8] == '=')) {
      const char *path = argv[i][8] == '=' ? argv[i] + 9 : (i + 1 < argc ? argv[++i] : NULL);
      if (!path) {
        fprintf(stderr, "opl %s: --config needs a file name\n", verb);
        return 2;
      }
      int rc = read_config(verb, path, opts, nopts);
      if (rc) return rc;
    }
  }
  for (int i = 1; i < argc; i++) {
    char *a = argv[i];
    if (!strncmp(a, "--config", 8) && (a[8] == 0 || a[8] == '=')) {
      if (a[8] == 0) i++;
      continue;
    }
    if (a[0] == '-' && a[1] == '-') {
      const char *name = a + 2, *eq = strchr(name, '=');
      size_t len = eq ? (size_t)(eq - name) : strlen(name);
      const cli_opt *o = find(opts, nopts, name, len);
      if (!o) {
        fprintf(stderr, "opl %s: unknown option '%.*s' (see opl %s --help)\n", verb, (int)len + 2, a, verb);
        return 2;
      }
      const char *val;
      if (o->type == CLI_FLAG && !eq) val = "1";
      else if (eq) val = eq + 1;
      else if (i + 1 < argc) val = argv[++i];
      else {
        fprintf(stderr, "opl %s: option --%s needs a value\n", verb, o->name);
        return 2;
      }
      int rc = set_value(verb, "", o, val);
      if (rc) return rc;
    } else {
      if (*npos >= maxpos) {
        fprintf(stderr, "opl %s: unexpected argument '%s'\n", verb, a);
        return 2;
      }
      pos[(*npos)++] = a;
    }
  }
  return 0;
}
