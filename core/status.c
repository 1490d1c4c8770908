/* opl — status codes, error reports and the always-on assert. */
#include <stdio.h>
#include <stdlib.h>
#include "core/opl.h"

static const struct {
  int code;
  const char *name, *desc;
} status_table[] = {
#define OPL_X(name, val, desc) {val, #name, desc},
    OPL_STATUS_TABLE(OPL_X)
#undef OPL_X
};

const char *opl_status_name(int status) {
  for (size_t i = 0; i < sizeof status_table / sizeof status_table[0]; i++)
    if (status_table[i].code == status) return status_table[i].name;
  return "UNKNOWN";
}

const char *opl_status_desc(int status) {
  for (size_t i = 0; i < sizeof status_table / sizeof status_table[0]; i++)
    if (status_table[i].code == status) return status_table[i].desc;
  return "unknown status";
}

int opl_err_set(opl_err *err, int status, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    err->status = status;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return status;
}

const char *opl_err_text(const opl_err *e) {
  const char *m = e->msg, *p = m;
  if (!(*p >= 'a' && *p <= 'z')) return m;
  while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_') p++;
  return (p[0] == ':' && p[1] == ' ') ? p + 2 : m;
}

void opl_assert_fail(const char *file, int line, const char *cond, const char *fmt, ...) {
  fprintf(stderr, "opl: assertion failed at %s:%d: %s", file, line, cond);
  if (fmt && *fmt) {
    va_list ap;
    va_start(ap, fmt);
    fputs(": ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
  }
  fputc('\n', stderr);
  abort();
}
